"""Appending to the audit hash chain, in the caller's transaction.

`record()` is what the cold-chain services call after changing a row: it appends the row's
canonical form unless the chain's last entry for that record already says the same, so a
redelivered event or a repeated tick adds nothing. Appends take a process-wide lock and
`seq` is unique, so concurrent writers (uplink thread, ticker, requests) never fork the
chain; a writer in another process that loses the race gets an IntegrityError at flush and
its transaction is retried by the caller (`server.coldchain.store.write`).
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.audit.canonical import GENESIS, canonical, entry_hash, sha256_hex
from server.audit.model import AuditEntry

APPEND_LOCK = threading.RLock()


def head(s: Session) -> AuditEntry | None:
    last = s.scalar(select(func.max(AuditEntry.seq)))
    return None if last is None else s.get(AuditEntry, last)


def latest_for(s: Session, ref: str) -> AuditEntry | None:
    return s.scalar(
        select(AuditEntry).where(AuditEntry.ref == ref).order_by(AuditEntry.seq.desc()).limit(1)
    )


def append(
    s: Session, *, kind: str, op: str, ref: str, payload: Any, actor: str, at: datetime
) -> AuditEntry:
    text = canonical(payload)
    content = sha256_hex(text)
    with APPEND_LOCK:
        prev = head(s)
        seq = 1 if prev is None else prev.seq + 1
        prev_hash = GENESIS if prev is None else prev.entry_hash
        entry = AuditEntry(
            seq=seq,
            at=at,
            kind=kind,
            op=op,
            ref=ref,
            actor=actor,
            payload=text,
            content_hash=content,
            prev_hash=prev_hash,
            entry_hash=entry_hash(
                prev_hash=prev_hash, seq=seq, at=at, kind=kind, op=op, ref=ref, content_hash=content
            ),
        )
        s.add(entry)
        s.flush()
    return entry


def record(
    s: Session,
    *,
    kind: str,
    ref: str,
    payload: Any,
    actor: str,
    at: datetime,
    op: str | None = None,
) -> AuditEntry | None:
    """Chain the record's current form if it differs from its last chained one. `op`
    defaults to create (first time) or update; callers pass `correction` or `void`."""
    with APPEND_LOCK:
        last = latest_for(s, ref)
        if last is not None and last.payload == canonical(payload) and op is None:
            return None
        chosen = op or ("create" if last is None else "update")
        return append(s, kind=kind, op=chosen, ref=ref, payload=payload, actor=actor, at=at)
