"""Keeping the stored excursions equal to what the readings say: after new readings of a
device, its excursions from the earliest new reading (or the start of one still open, or
one those readings touch) are computed again and matched to the stored ones by overlap.
A reading delivered late from a gateway's buffer can so move an end, lift a peak or split
an excursion; each change is chained (a correction once the day is signed off)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.coldchain import corrections
from server.coldchain.analysis import ExcursionFacts, Point, excursions
from server.coldchain.devices import ColdDevice
from server.coldchain.model import ColdReading, Excursion
from server.db.bulk import among

FAR = datetime.max.replace(tzinfo=UTC)


def to_reconcile(s: Session, devs: list[ColdDevice], since: dict[str, datetime]) -> set[str]:
    """The devices among `devs` whose `reconcile(since[device])` could change anything, in
    two queries for them all: those with a stored excursion it would look at, and those with
    a reading out of their limits from `since` on. For the others it would compute no
    excursion and find none stored: nothing to do."""
    if not devs:
        return set()
    earliest = min(since.values())
    due: set[str] = set()
    ids = [d.id for d in devs]
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for device_id, started, ended in s.execute(
            select(Excursion.device_id, Excursion.started_at, Excursion.ended_at).where(
                among(s, Excursion.device_id, chunk),
                Excursion.void.is_(False),
                or_(
                    Excursion.ended_at.is_(None),
                    Excursion.ended_at >= earliest,
                    Excursion.started_at >= earliest,
                ),
            )
        ):
            t = since[device_id]
            if ended is None or ended >= t or started >= t:
                due.add(device_id)
    by_limits: dict[tuple[float | None, float | None], list[str]] = {}
    for d in devs:
        if d.id not in due:
            by_limits.setdefault((d.judged.min, d.judged.max), []).append(d.id)
    for (low, high), group in by_limits.items():
        outside = [
            c
            for c in (
                ColdReading.value < low if low is not None else None,
                ColdReading.value > high if high is not None else None,
            )
            if c is not None
        ]
        if not outside:
            continue  # no limits: nothing is ever out of range
        for start in range(0, len(group), 1000):
            chunk = group[start : start + 1000]
            for device_id, at in s.execute(
                select(ColdReading.device_id, ColdReading.measured_at).where(
                    among(s, ColdReading.device_id, chunk),
                    ColdReading.measured_at >= earliest,
                    or_(*outside),
                )
            ):
                if at >= since[device_id]:
                    due.add(device_id)
    return due


def reconcile(s: Session, dev: ColdDevice, since: datetime, now: datetime, tz: ZoneInfo) -> None:
    stored = list(
        s.scalars(
            select(Excursion)
            .where(
                Excursion.device_id == dev.id,
                Excursion.void.is_(False),
                or_(
                    Excursion.ended_at.is_(None),
                    Excursion.ended_at >= since,
                    Excursion.started_at >= since,
                ),
            )
            .order_by(Excursion.started_at)
        )
    )
    start = min([since, *(e.started_at for e in stored)])
    rows = s.execute(
        select(ColdReading.measured_at, ColdReading.value)
        .where(ColdReading.device_id == dev.id, ColdReading.measured_at >= start)
        .order_by(ColdReading.measured_at, ColdReading.id)
    ).all()
    computed = excursions([Point(r.measured_at, r.value) for r in rows], dev.judged)
    unmatched = list(stored)
    for facts in computed:
        row = next((e for e in unmatched if _overlaps(e, facts)), None)
        if row is None:
            row = Excursion(device_id=dev.id, building=dev.building, metric=dev.limits.metric)
            s.add(row)
        else:
            unmatched.remove(row)
        _apply(row, facts, dev)
        _save(s, row, now, tz)
    for row in unmatched:
        row.void = True
        _save(s, row, now, tz, op="void")


def _overlaps(e: Excursion, f: ExcursionFacts) -> bool:
    e_end = e.ended_at or FAR
    f_end = f.ended_at or FAR
    return e.started_at < f_end and f.started_at < e_end


def _apply(row: Excursion, f: ExcursionFacts, dev: ColdDevice) -> None:
    row.kind = f.kind
    row.started_at = f.started_at
    row.ended_at = f.ended_at
    row.last_out_at = f.last_out_at
    row.peak = f.peak
    row.readings = f.readings
    row.above_s = round(f.above_s, 3)
    row.below_s = round(f.below_s, 3)
    row.unknown_s = round(f.unknown_s, 3)
    row.limit_min = dev.limits.min
    row.limit_max = dev.limits.max
    row.void = False


def _save(s: Session, row: Excursion, now: datetime, tz: ZoneInfo, op: str | None = None) -> None:
    day = row.started_at.astimezone(tz).date()
    corrections.save(s, row, building=row.building, day=day, actor="system", at=now, op=op)
