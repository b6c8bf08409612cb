"""Each record's audited form (what the hash chain keeps), and the verifier's check that a
record in the database still matches its last chained form. One function per record type,
so the chain, the sign-off content and the verifier agree on what a record is."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit import chain
from server.audit.canonical import canonical, sha256_hex
from server.audit.model import AuditEntry
from server.coldchain.model import ColdReading, CorrectiveAction, DailyRecord, Excursion
from server.coldchain.records_model import (
    Calibration,
    Correction,
    Finding,
    Menu,
    Sample,
    SignOff,
)

Row = Excursion | CorrectiveAction | DailyRecord | SignOff | Correction | Calibration
Row_ = Row | Sample | Menu | Finding

KINDS: dict[type[Any], str] = {
    Excursion: "excursion",
    CorrectiveAction: "action",
    DailyRecord: "daily",
    SignOff: "signoff",
    Correction: "correction",
    Calibration: "calibration",
    Sample: "sample",
    Menu: "menu",
    Finding: "finding",
}
BY_KIND = {v: k for k, v in KINDS.items()}
SKIP = {"stale", "notified_at"}  # bookkeeping, not part of the record


def ref_of(row: Row_) -> str:
    return f"{KINDS[type(row)]}:{row.id}"


def payload(row: Row_) -> dict[str, Any]:
    cols = row.__table__.columns.keys()
    return {c: getattr(row, c) for c in cols if c not in SKIP}


def put(s: Session, row: Row_, *, actor: str, at: datetime, op: str | None = None) -> None:
    """Chain the row's current form (after a flush gave it an id)."""
    s.flush()
    chain.record(
        s, kind=KINDS[type(row)], ref=ref_of(row), payload=payload(row), actor=actor, at=at, op=op
    )


def load(s: Session, ref: str) -> Row_ | None:
    kind, _, ident = ref.partition(":")
    model = BY_KIND.get(kind)
    if model is None or not ident.isdigit():
        return None
    row: Row_ | None = s.get(model, int(ident))
    return row


def readings_digest(values: list[tuple[datetime, float]]) -> str:
    """SHA-256 of a day's readings, one "<epoch ms> <value>" line each, so an edited, added
    or removed reading shows."""
    return sha256_hex("\n".join(f"{round(t.timestamp() * 1000)} {v!r}" for t, v in values))


READING_COLUMNS = (
    ColdReading.measured_at,
    ColdReading.value,
    ColdReading.seq,
    ColdReading.received_at,
    ColdReading.arrived_at,
)


def day_readings(s: Session, device_id: str, start: datetime, end: datetime) -> list[Any]:
    """Rows (measured_at, value, seq, received_at, arrived_at) of [start, end), in order:
    plain rows, not objects (a month of minute readings is 300,000 of them)."""
    return list(
        s.execute(
            select(*READING_COLUMNS)
            .where(
                ColdReading.device_id == device_id,
                ColdReading.measured_at >= start,
                ColdReading.measured_at < end,
            )
            .order_by(ColdReading.measured_at, ColdReading.id)
        ).all()
    )


def record_checker(tz: ZoneInfo) -> Callable[[Session, AuditEntry], str | None]:
    def check(s: Session, entry: AuditEntry) -> str | None:
        row = load(s, entry.ref)
        if row is None:
            return "the record is gone from the database"
        now = canonical(payload(row))
        if now != entry.payload:
            return f"stored record differs from the chained one: {_diff(now, entry.payload)}"
        if isinstance(row, DailyRecord):
            return _readings_problem(s, row, tz)
        return None

    return check


def _readings_problem(s: Session, row: DailyRecord, tz: ZoneInfo) -> str | None:
    start = datetime.combine(row.day, time(0), tz).astimezone(UTC)
    rows = s.execute(
        select(ColdReading.measured_at, ColdReading.value)
        .where(
            ColdReading.device_id == row.device_id,
            ColdReading.measured_at >= start,
            ColdReading.measured_at < start + timedelta(days=1),
        )
        .order_by(ColdReading.measured_at, ColdReading.id)
    ).all()
    if not rows:
        return None  # raw readings past their retention: the chained figures stand
    got = readings_digest([(r.measured_at, r.value) for r in rows])
    if got != row.figures.get("digest"):
        return f"the stored readings of {row.device_id} on {row.day} differ from the recorded day"
    return None


def _diff(a: str, b: str) -> str:
    import json

    da, db = json.loads(a), json.loads(b)
    fields = sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))
    return ", ".join(fields) or "(encoding)"
