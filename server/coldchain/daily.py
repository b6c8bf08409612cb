"""Daily records: a device's figures for one site-local day (analysis.day_figures over the
stored readings), provisional while the day is open and recorded (chained) once it closed
`day_close_after` past midnight. A recorded day that later readings changed (marked stale
by the recorder) is computed again and saved as an update, or a correction once signed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.site import ColdChain
from server.coldchain import corrections, records
from server.coldchain.analysis import DayFigures, Point, day_figures
from server.coldchain.devices import ColdDevice
from server.coldchain.model import ColdReading, DailyRecord

MAX_DAYS_PER_TICK = 62  # a server back after a long stop catches up over a few ticks


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def points(
    s: Session, dev: ColdDevice, start: datetime, end: datetime, late_after: timedelta
) -> list[Point]:
    """The readings of [start, end), with the one before and the one after (the edges)."""
    inside = records.day_readings(s, dev.id, start, end)
    before = s.execute(
        select(*records.READING_COLUMNS)
        .where(ColdReading.device_id == dev.id, ColdReading.measured_at < start)
        .order_by(ColdReading.measured_at.desc())
        .limit(1)
    ).first()
    after = s.execute(
        select(*records.READING_COLUMNS)
        .where(ColdReading.device_id == dev.id, ColdReading.measured_at >= end)
        .order_by(ColdReading.measured_at)
        .limit(1)
    ).first()
    rows = [r for r in (before, *inside, after) if r is not None]
    return [
        Point(
            r.measured_at,
            r.value,
            r.seq,
            max(r.received_at, r.arrived_at) - r.measured_at > late_after,
        )
        for r in rows
    ]


def figures(
    s: Session, dev: ColdDevice, day: date, tz: ZoneInfo, cfg: ColdChain, now: datetime
) -> DayFigures:
    """The day's figures as the readings say now; an open day counts up to `now`."""
    start, end = day_bounds(day, tz)
    pts = points(s, dev, start, end, cfg.late_after)
    inside = [p for p in pts if start <= p.at < end]
    digest = records.readings_digest([(p.at, p.value) for p in inside])
    stop = min(end, max(now, start))
    return day_figures(
        pts if now >= end else [p for p in pts if p.at < stop], dev.judged, start, stop, digest
    )


def closed(day: date, tz: ZoneInfo, cfg: ColdChain, now: datetime) -> bool:
    return day_bounds(day, tz)[1] + cfg.day_close_after <= now


def close_due(
    s: Session,
    devices: dict[str, ColdDevice],
    tz: ZoneInfo,
    cfg: ColdChain,
    now: datetime,
    next_day: dict[str, date] | None = None,
) -> list[DailyRecord]:
    """Record every closed day not recorded yet, and recompute stale ones; returns the
    records written.

    `next_day` (kept by the caller from tick to tick): each device's first day not yet closed
    when last looked at. While that day is still open the device costs no query: with
    5,000 fridges, asking each one's last day at every tick was a third of a core. When it
    closes, the database is asked again (another worker may have recorded it meanwhile)."""
    written: list[DailyRecord] = []
    for dev in devices.values():
        known = next_day.get(dev.id) if next_day is not None else None
        if known is not None and not closed(known, tz, cfg, now):
            continue
        last = s.scalar(select(func.max(DailyRecord.day)).where(DailyRecord.device_id == dev.id))
        if last is not None:
            day = last + timedelta(days=1)
        else:
            first = s.scalar(
                select(func.min(ColdReading.measured_at)).where(ColdReading.device_id == dev.id)
            )
            if first is None:
                continue  # no reading yet: asked again next tick (a backlog may be on its way)
            day = first.astimezone(tz).date()
        for _ in range(MAX_DAYS_PER_TICK):
            if not closed(day, tz, cfg, now):
                break
            written.append(save(s, dev, day, tz, cfg, now))
            day += timedelta(days=1)
        if next_day is not None:
            next_day[dev.id] = day
    # Days whose readings came in after they were recorded: few, one query for all devices.
    for rec in s.scalars(select(DailyRecord).where(DailyRecord.stale.is_(True))):
        stale_dev = devices.get(rec.device_id)
        if stale_dev is not None:
            written.append(save(s, stale_dev, rec.day, tz, cfg, now))
    return written


def save(
    s: Session, dev: ColdDevice, day: date, tz: ZoneInfo, cfg: ColdChain, now: datetime
) -> DailyRecord:
    """Compute and keep the day's record (chained; a correction if the day was signed)."""
    f = figures(s, dev, day, tz, cfg, now)
    rec = s.scalar(
        select(DailyRecord).where(DailyRecord.device_id == dev.id, DailyRecord.day == day)
    )
    if rec is None:
        rec = DailyRecord(device_id=dev.id, building=dev.building, day=day, closed_at=now)
        s.add(rec)
    rec.stale = False
    new = f.as_dict()
    if rec.figures != new:
        rec.figures = new
    corrections.save(s, rec, building=dev.building, day=day, actor="system", at=now)
    return rec
