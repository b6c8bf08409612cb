"""Sign-off: the officer signs a canteen's day or week after review. The signature holds
who, when, and the hash of what was signed: every record of the period (daily records,
excursions and their actions, samples, menus, findings) by the hash of its chained form.
A record changed later no longer matches (`changed_since`) and its change is listed as a
correction after the signature."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.site import ColdChain
from server.audit import chain
from server.audit.canonical import canonical, sha256_hex
from server.coldchain import daily, records
from server.coldchain.devices import ColdDevice
from server.coldchain.model import CorrectiveAction, DailyRecord, Excursion
from server.coldchain.records_model import Correction, Finding, Menu, Sample, SignOff


def period(kind: str, day: date) -> tuple[date, date]:
    return (day, day) if kind == "day" else (day, day + timedelta(days=6))


def content(s: Session, building: str, start: date, end: date, tz: ZoneInfo) -> dict[str, str]:
    """{ref: content hash of its last chained form} of every record of the period."""
    lo, _ = daily.day_bounds(start, tz)
    _, hi = daily.day_bounds(end, tz)
    rows: list[records.Row_] = []
    rows += s.scalars(
        select(DailyRecord).where(
            DailyRecord.building == building, DailyRecord.day >= start, DailyRecord.day <= end
        )
    ).all()
    exc = s.scalars(
        select(Excursion).where(
            Excursion.building == building,
            Excursion.started_at < hi,
            (Excursion.ended_at.is_(None)) | (Excursion.ended_at >= lo),
        )
    ).all()
    rows += exc
    rows += s.scalars(
        select(CorrectiveAction).where(CorrectiveAction.excursion_id.in_([e.id for e in exc]))
    ).all()
    rows += s.scalars(
        select(Sample).where(Sample.building == building, Sample.day >= start, Sample.day <= end)
    ).all()
    rows += s.scalars(
        select(Menu).where(Menu.building == building, Menu.day >= start, Menu.day <= end)
    ).all()
    rows += s.scalars(
        select(Finding).where(
            Finding.building == building, Finding.day >= start, Finding.day <= end
        )
    ).all()
    out: dict[str, str] = {}
    for row in rows:
        entry = chain.latest_for(s, records.ref_of(row))
        out[records.ref_of(row)] = entry.content_hash if entry else ""
    return out


def sign(
    s: Session,
    *,
    building: str,
    kind: str,
    day: date,
    comment: str,
    actor: str,
    now: datetime,
    tz: ZoneInfo,
    cfg: ColdChain,
    devices: dict[str, ColdDevice],
) -> SignOff:
    start, end = period(kind, day)
    d = start
    while d <= end and daily.day_bounds(d, tz)[0] <= now:
        for dev in devices.values():
            if dev.building == building:
                daily.save(s, dev, d, tz, cfg, now)  # the figures as they stand, chained
        d += timedelta(days=1)
    signed = content(s, building, start, end, tz)
    row = SignOff(
        building=building,
        period=kind,
        start=start,
        end=end,
        signed_by=actor,
        signed_at=now,
        comment=comment,
        content=signed,
        content_hash=sha256_hex(canonical(signed)),
    )
    s.add(row)
    records.put(s, row, actor=actor, at=now)
    return row


def status(s: Session, row: SignOff, tz: ZoneInfo) -> dict[str, Any]:
    now = content(s, row.building, row.start, row.end, tz)
    changed = sorted(r for r in set(now) | set(row.content) if now.get(r) != row.content.get(r))
    fixes = s.scalars(
        select(Correction).where(Correction.after_signoff_id == row.id).order_by(Correction.at)
    ).all()
    return {
        "intact": not changed,
        "changed_since": changed,
        "corrections": [correction_out(c) for c in fixes],
    }


def correction_out(c: Correction) -> dict[str, Any]:
    return {
        "id": c.id,
        "ref": c.ref,
        "changes": c.changes,
        "reason": c.reason,
        "by": c.by,
        "at": c.at.isoformat(),
        "after_signoff_id": c.after_signoff_id,
    }
