"""Verifying the audit chain: every entry re-hashed and linked to the one before, every
record's last chained form compared with the row as it is now (the caller says how to read
a record and what else to check), every signed day head checked. Stops at the first entry
that does not match and names it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.audit.canonical import GENESIS, entry_hash, sha256_hex
from server.audit.heads import head_valid
from server.audit.model import AuditDayHead, AuditEntry

RecordCheck = Callable[[Session, AuditEntry], str | None]
"""(session, the last chained entry of a record) -> a problem, or None if the record in the
database still matches it."""

BATCH = 2000


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    kind: str
    ref: str
    detail: str

    def __str__(self) -> str:
        return f"entry #{self.seq} ({self.ref}, {self.kind}): {self.detail}"


@dataclass
class Verification:
    entries: int = 0
    records: int = 0
    heads: list[tuple[date, int, bool]] = field(default_factory=list)
    first_bad: Problem | None = None
    key_ids: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def _entries(s: Session, start_seq: int) -> Iterator[AuditEntry]:
    seq = start_seq
    while True:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.seq >= seq).order_by(AuditEntry.seq).limit(BATCH)
        ).all()
        if not rows:
            return
        yield from rows
        seq = rows[-1].seq + 1
        s.expunge_all()


def verify_chain(
    s: Session,
    check_record: RecordCheck,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    expected_key_id: str | None = None,
) -> Verification:
    out = Verification()
    latest = dict(
        s.execute(select(AuditEntry.ref, func.max(AuditEntry.seq)).group_by(AuditEntry.ref)).all()
    )
    start = 1
    if since is not None:
        first = s.scalar(select(func.min(AuditEntry.seq)).where(AuditEntry.at >= since))
        last = s.scalar(select(func.max(AuditEntry.seq))) or 0
        start = first if first is not None else last + 1
    prev_hash = GENESIS
    if start > 1:
        before = s.get(AuditEntry, start - 1)
        prev_hash = before.entry_hash if before is not None else "?"
    expected_seq = start
    for e in _entries(s, start):
        if until is not None and e.at >= until:
            break
        problem = _entry_problem(e, expected_seq, prev_hash)
        if problem is None and latest.get(e.ref) == e.seq:
            out.records += 1
            problem = check_record(s, e)
        if problem is not None:
            out.first_bad = Problem(e.seq, e.kind, e.ref, problem)
            return out
        out.entries += 1
        prev_hash, expected_seq = e.entry_hash, e.seq + 1
    _check_heads(s, out, since, until, expected_key_id)
    return out


def _entry_problem(e: AuditEntry, expected_seq: int, prev_hash: str) -> str | None:
    if e.seq != expected_seq:
        return f"entry #{expected_seq} is missing (next is #{e.seq})"
    if e.prev_hash != prev_hash:
        return "does not link to the entry before it (prev_hash differs)"
    if sha256_hex(e.payload) != e.content_hash:
        return "its chained record was changed (content hash differs)"
    h = entry_hash(
        prev_hash=e.prev_hash,
        seq=e.seq,
        at=e.at,
        kind=e.kind,
        op=e.op,
        ref=e.ref,
        content_hash=e.content_hash,
    )
    if h != e.entry_hash:
        return "the entry was changed (entry hash differs)"
    return None


def _check_heads(
    s: Session,
    out: Verification,
    since: datetime | None,
    until: datetime | None,
    expected_key_id: str | None,
) -> None:
    for head in s.scalars(select(AuditDayHead).order_by(AuditDayHead.day)):
        if since is not None and head.day < since.date():
            continue
        if until is not None and head.day > until.date():
            continue
        valid = head_valid(head)
        entry = s.get(AuditEntry, head.seq) if head.seq else None
        detail = None
        if not valid:
            detail = f"the signature of day {head.day} does not verify"
        elif head.seq and (entry is None or entry.entry_hash != head.entry_hash):
            detail = f"the chain no longer ends day {head.day} where its signed head says"
        elif expected_key_id is not None and head.key_id != expected_key_id:
            detail = f"day {head.day} was signed with key {head.key_id}, not this site's"
        out.heads.append((head.day, head.seq, detail is None))
        out.key_ids.add(head.key_id)
        if detail is not None and out.first_bad is None:
            kind, ref = (entry.kind, entry.ref) if entry is not None else ("head", str(head.day))
            out.first_bad = Problem(head.seq, kind, ref, detail)
