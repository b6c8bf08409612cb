"""Reads shared by the API and the report: daily figures (recorded, or provisional from the
readings), excursions of a period, calibration status per device."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.site import ColdChain
from server.coldchain import daily
from server.coldchain.analysis import DayFigures
from server.coldchain.devices import ColdDevice
from server.coldchain.findings import latest_calibration
from server.coldchain.model import DailyRecord, Excursion


@dataclass
class DayRow:
    dev: ColdDevice
    day: date
    figures: DayFigures
    status: str  # provisional | recorded
    excursion_ids: list[int]
    calibration_overdue: bool


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def excursions_between(
    s: Session, start: datetime, end: datetime, devices: list[str] | None = None
) -> list[Excursion]:
    q = select(Excursion).where(
        Excursion.void.is_(False),
        Excursion.started_at < end,
        (Excursion.ended_at.is_(None)) | (Excursion.ended_at >= start),
    )
    if devices is not None:
        q = q.where(Excursion.device_id.in_(devices))
    return list(s.scalars(q.order_by(Excursion.started_at)))


def daily_rows(
    s: Session,
    devices: list[ColdDevice],
    start: date,
    end: date,
    tz: ZoneInfo,
    cfg: ColdChain,
    now: datetime,
) -> list[DayRow]:
    ids = [d.id for d in devices]
    recorded = {
        (r.device_id, r.day): r
        for r in s.scalars(
            select(DailyRecord).where(
                DailyRecord.device_id.in_(ids), DailyRecord.day >= start, DailyRecord.day <= end
            )
        )
    }
    lo, _ = daily.day_bounds(start, tz)
    _, hi = daily.day_bounds(end, tz)
    exc = excursions_between(s, lo, hi, ids)
    out: list[DayRow] = []
    for dev in devices:
        for day in days(start, end):
            d0, d1 = daily.day_bounds(day, tz)
            if d0 > now:
                break
            rec = recorded.get((dev.id, day))
            if rec is not None and not rec.stale:
                f, status = DayFigures.from_dict(rec.figures), "recorded"
            else:
                f, status = daily.figures(s, dev, day, tz, cfg, now), "provisional"
            touching = [
                e.id
                for e in exc
                if e.device_id == dev.id and e.started_at < d1 and (e.ended_at or now) >= d0
            ]
            cal = latest_calibration(s, dev.id)
            overdue = cal is not None and day > cal.next_due
            out.append(DayRow(dev, day, f, status, touching, overdue))
    return out


def calibration_status(
    s: Session, dev: ColdDevice, today: date, cfg: ColdChain
) -> dict[str, str | None]:
    cal = latest_calibration(s, dev.id)
    if cal is None:
        return {"status": "none", "next_due": None, "last": None}
    if today >= cal.next_due:
        status = "overdue"
    elif today >= cal.next_due - cfg.calibration_warn_before:
        status = "due_soon"
    else:
        status = "ok"
    return {
        "status": status,
        "next_due": cal.next_due.isoformat(),
        "last": cal.calibrated_on.isoformat(),
    }
