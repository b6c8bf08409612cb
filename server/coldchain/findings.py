"""What the record finds that a person must see, each kept once (by its key) and chained:
samples missing or under weight after a meal, samples removed before their time, a sample
fridge out of range while it held samples, excursions without an action past the
deadline, calibrations falling due, and gaps (listed, not notified: the offline alert
told people already). `due_checks` runs on the tick; notices go to the officer once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.site import SiteConfig
from server.coldchain import records
from server.coldchain.devices import ColdDevice
from server.coldchain.model import ColdReading, CorrectiveAction, Excursion
from server.coldchain.records_model import Calibration, Finding, Menu, Sample
from server.coldchain.samples import meals_of_day

RISK_LOOKBACK = timedelta(days=3)


def add(
    s: Session,
    *,
    key: str,
    kind: str,
    day: date,
    at: datetime,
    detail: str,
    building: str | None = None,
    device_id: str | None = None,
    ref: str | None = None,
    notify: bool = True,
) -> Finding | None:
    if s.scalar(select(Finding.id).where(Finding.key == key)) is not None:
        return None
    row = Finding(
        key=key,
        kind=kind,
        day=day,
        at=at,
        detail=detail,
        building=building,
        device_id=device_id,
        ref=ref,
        notify=notify,
    )
    s.add(row)
    records.put(s, row, actor="system", at=at)
    return row


def due_checks(s: Session, site: SiteConfig, devices: dict[str, ColdDevice], now: datetime) -> None:
    tz = site.tz
    today = now.astimezone(tz).date()
    since = tracking_since(s)
    for day in (today - timedelta(days=1), today):
        _meals(s, site, day, now, since)
    _overdue_actions(s, site, devices, now)
    _samples_at_risk(s, devices, tz, now)
    _calibrations(s, site, devices, today, now)


def tracking_since(s: Session) -> datetime | None:
    """When the record began: its first reading, sample or menu. Meals that ended before
    are not judged (a new installation does not flag yesterday's lunch)."""
    firsts = [
        s.scalar(select(func.min(ColdReading.arrived_at))),
        s.scalar(select(func.min(Sample.recorded_at))),
        s.scalar(select(func.min(Menu.set_at))),
    ]
    known = [t for t in firsts if t is not None]
    return min(known) if known else None


def _meals(s: Session, site: SiteConfig, day: date, now: datetime, since: datetime | None) -> None:
    cfg = site.cold_chain.samples
    for m in meals_of_day(s, site, day):
        if now < m.due_at or since is None or m.ends_at < since:
            continue
        for dish in m.dishes:
            got = [x for x in m.samples if x.dish == dish]
            where = f"{day} {m.name} ({m.building})"
            if not got:
                add(
                    s,
                    key=f"sample-missing:{m.building}:{day}:{m.meal}:{dish}",
                    kind="sample_missing",
                    day=day,
                    at=now,
                    building=m.building,
                    detail=f"{where}: no sample of {dish} logged within "
                    f"{_h(cfg.log_within)} after the meal",
                )
            elif all(x.weight_g < cfg.min_weight_g for x in got):
                add(
                    s,
                    key=f"sample-underweight:{m.building}:{day}:{m.meal}:{dish}",
                    kind="sample_underweight",
                    day=day,
                    at=now,
                    building=m.building,
                    ref=records.ref_of(got[0]),
                    detail=f"{where}: sample of {dish} weighs {max(x.weight_g for x in got):g} g, "
                    f"under {cfg.min_weight_g:g} g",
                )


def removed_early(s: Session, site: SiteConfig, sample: Sample, now: datetime) -> None:
    retain = site.cold_chain.samples.retain
    assert sample.removed_at is not None
    held = sample.removed_at - sample.taken_at
    if held < retain:
        add(
            s,
            key=f"sample-removed:{sample.id}",
            kind="sample_removed_early",
            day=sample.day,
            at=now,
            building=sample.building,
            device_id=sample.fridge,
            ref=records.ref_of(sample),
            detail=f"sample of {sample.dish} ({sample.day} {sample.meal}) removed after "
            f"{_h(held)}, before {_h(retain)}",
        )


def _overdue_actions(
    s: Session, site: SiteConfig, devices: dict[str, ColdDevice], now: datetime
) -> None:
    due = site.cold_chain.action_due
    acted = select(CorrectiveAction.excursion_id)
    told = {
        int(k.rsplit(":", 1)[1])
        for k in s.scalars(select(Finding.key).where(Finding.kind == "action_overdue"))
    }
    for e in s.scalars(
        select(Excursion).where(
            Excursion.void.is_(False),
            Excursion.started_at <= now - due,
            Excursion.id.not_in(acted),
        )
    ):
        if e.id in told:
            continue
        name = devices[e.device_id].name if e.device_id in devices else e.device_id
        add(
            s,
            key=f"action-overdue:{e.id}",
            kind="action_overdue",
            day=e.started_at.astimezone(site.tz).date(),
            at=now,
            building=e.building,
            device_id=e.device_id,
            ref=records.ref_of(e),
            detail=f"{name}: excursion since {_local(e.started_at, site.tz)} (peak {e.peak:g}) "
            f"has no corrective action after {_h(due)}",
        )


def _samples_at_risk(
    s: Session, devices: dict[str, ColdDevice], tz: ZoneInfo, now: datetime
) -> None:
    fridges = [d for d in devices.values() if d.device_class == "sample_fridge"]
    for dev in fridges:
        recent = now - RISK_LOOKBACK  # older excursions were judged when they happened
        for e in s.scalars(
            select(Excursion).where(
                Excursion.device_id == dev.id,
                Excursion.void.is_(False),
                (Excursion.ended_at.is_(None)) | (Excursion.ended_at >= recent),
            )
        ):
            end = e.ended_at or now
            held = s.scalars(
                select(Sample).where(
                    Sample.fridge == dev.id,
                    Sample.void.is_(False),
                    Sample.taken_at < end,
                    (Sample.removed_at.is_(None)) | (Sample.removed_at > e.started_at),
                )
            ).all()
            if held:
                add(
                    s,
                    key=f"samples-at-risk:{e.id}",
                    kind="samples_at_risk",
                    day=e.started_at.astimezone(tz).date(),
                    at=now,
                    building=dev.building,
                    device_id=dev.id,
                    ref=records.ref_of(e),
                    detail=f"{dev.name} out of range since {_local(e.started_at, tz)} "
                    f"(peak {e.peak:g}) while holding {len(held)} sample(s)",
                )


def _calibrations(
    s: Session, site: SiteConfig, devices: dict[str, ColdDevice], today: date, now: datetime
) -> None:
    warn = site.cold_chain.calibration_warn_before
    latest = latest_calibrations(s, list(devices))
    for dev in devices.values():
        cal = latest.get(dev.id)
        if cal is None:
            continue
        if today >= cal.next_due:
            add(
                s,
                key=f"calibration-overdue:{cal.id}",
                kind="calibration_overdue",
                day=today,
                at=now,
                building=dev.building,
                device_id=dev.id,
                ref=records.ref_of(cal),
                detail=f"{dev.name}: calibration was due {cal.next_due}",
            )
        elif today >= cal.next_due - warn:
            add(
                s,
                key=f"calibration-due:{cal.id}",
                kind="calibration_due",
                day=today,
                at=now,
                building=dev.building,
                device_id=dev.id,
                ref=records.ref_of(cal),
                detail=f"{dev.name}: calibration due {cal.next_due}",
            )


def latest_calibrations(s: Session, device_ids: list[str]) -> dict[str, Calibration]:
    """Each device's latest calibration in one query (the tick visits every cold device)."""
    out: dict[str, Calibration] = {}
    rows = s.scalars(
        select(Calibration)
        .where(Calibration.device_id.in_(device_ids), Calibration.void.is_(False))
        .order_by(Calibration.device_id, Calibration.calibrated_on, Calibration.id)
    )
    for cal in rows:
        out[cal.device_id] = cal  # the last of each device's rows is its latest
    return out


def latest_calibration(s: Session, device_id: str) -> Calibration | None:
    return s.scalar(
        select(Calibration)
        .where(Calibration.device_id == device_id, Calibration.void.is_(False))
        .order_by(Calibration.calibrated_on.desc(), Calibration.id.desc())
        .limit(1)
    )


def _h(d: timedelta) -> str:
    hours = d.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{d.total_seconds() / 60:g} min"


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
