"""The JSON forms the API returns (docs/cold-chain.md): one function per record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.site import ColdChain
from server.coldchain.analysis import DayFigures
from server.coldchain.devices import ColdDevice
from server.coldchain.model import AlertLink, CorrectiveAction, Excursion
from server.coldchain.records_model import Calibration, Finding, Sample, SignOff


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def action_out(a: CorrectiveAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "excursion_id": a.excursion_id,
        "recorded_by": a.recorded_by,
        "recorded_at": iso(a.recorded_at),
        "cause": a.cause,
        "impact": a.impact,
        "disposition": a.disposition,
        "moved_to": a.moved_to,
        "quantity": a.quantity,
        "preventive_action": a.preventive_action,
        "note": a.note,
    }


def excursion_out(
    s: Session, e: Excursion, devices: dict[str, ColdDevice], cfg: ColdChain, now: datetime
) -> dict[str, Any]:
    actions = s.scalars(
        select(CorrectiveAction)
        .where(CorrectiveAction.excursion_id == e.id)
        .order_by(CorrectiveAction.recorded_at)
    ).all()
    end = e.ended_at or now
    links = s.scalars(
        select(AlertLink)
        .where(AlertLink.device_id == e.device_id, AlertLink.raised_at <= end)
        .order_by(AlertLink.raised_at)
    ).all()
    # The alarms on the temperature itself; offline alerts belong to gaps, not excursions.
    alerts = [
        a
        for a in links
        if (a.resolved_at is None or a.resolved_at >= e.started_at) and "offline" not in a.rule
    ]
    due = e.started_at + cfg.action_due
    dev = devices.get(e.device_id)
    return {
        "id": e.id,
        "device_id": e.device_id,
        "device_name": dev.name if dev else e.device_id,
        "building": e.building,
        "kind": e.kind,
        "started_at": iso(e.started_at),
        "ended_at": iso(e.ended_at),
        "duration_s": (end - e.started_at).total_seconds(),
        "peak": e.peak,
        "limit_min": e.limit_min,
        "limit_max": e.limit_max,
        "above_s": e.above_s,
        "below_s": e.below_s,
        "unknown_s": e.unknown_s,
        "readings": e.readings,
        "status": "actioned" if actions else "open",
        "action_due_at": iso(due),
        "overdue": not actions and now >= due,
        "alerts": [
            {
                "id": a.alert_id,
                "rule": a.rule,
                "severity": a.severity,
                "raised_at": iso(a.raised_at),
                "resolved_at": iso(a.resolved_at),
                "work_order_id": a.work_order_id,
                "work_order_status": a.work_order_status,
            }
            for a in alerts
        ],
        "actions": [action_out(a) for a in actions],
    }


def daily_out(
    dev: ColdDevice, day: Any, f: DayFigures, status: str, excursion_ids: list[int], overdue: bool
) -> dict[str, Any]:
    return {
        "device_id": dev.id,
        "device_name": dev.name,
        "building": dev.building,
        "day": day.isoformat(),
        "status": status,
        "min": f.min,
        "max": f.max,
        "mean": f.mean,
        "readings": f.readings,
        "expected": f.expected,
        "completeness_pct": f.completeness_pct,
        "late": f.late,
        "in_range_s": round(f.in_range_s, 3),
        "out_of_range_s": round(f.out_of_range_s, 3),
        "above_s": round(f.above_s, 3),
        "below_s": round(f.below_s, 3),
        "unknown_s": round(f.unknown_s, 3),
        "day_s": f.day_s,
        "gaps": [
            {"start": iso(g.start), "end": iso(g.end), "duration_s": g.seconds} for g in f.gaps
        ],
        "excursion_ids": excursion_ids,
        "calibration_overdue": overdue,
        "limit_min": f.limit_min,
        "limit_max": f.limit_max,
    }


def signoff_out(row: SignOff, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "building": row.building,
        "period": row.period,
        "start": row.start.isoformat(),
        "end": row.end.isoformat(),
        "signed_by": row.signed_by,
        "signed_at": iso(row.signed_at),
        "content_hash": row.content_hash,
        "comment": row.comment,
        **status,
    }


def calibration_out(c: Calibration) -> dict[str, Any]:
    return {
        "id": c.id,
        "device_id": c.device_id,
        "calibrated_on": c.calibrated_on.isoformat(),
        "reference": c.reference,
        "offset_c": c.offset_c,
        "result": c.result,
        "next_due": c.next_due.isoformat(),
        "by": c.by,
        "note": c.note,
        "void": c.void,
        "void_reason": c.void_reason,
    }


def sample_out(x: Sample) -> dict[str, Any]:
    held = (x.removed_at - x.taken_at).total_seconds() / 3600 if x.removed_at else None
    return {
        "id": x.id,
        "date": x.day.isoformat(),
        "meal": x.meal,
        "dish": x.dish,
        "weight_g": x.weight_g,
        "taken_at": iso(x.taken_at),
        "person": x.person,
        "fridge": x.fridge,
        "building": x.building,
        "recorded_by": x.recorded_by,
        "removed_at": iso(x.removed_at),
        "removed_by": x.removed_by,
        "removal_reason": x.removal_reason,
        "held_h": round(held, 2) if held is not None else None,
        "void": x.void,
        "void_reason": x.void_reason,
    }


def finding_out(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "kind": f.kind,
        "building": f.building,
        "device_id": f.device_id,
        "day": f.day.isoformat(),
        "at": iso(f.at),
        "detail": f.detail,
        "ref": f.ref,
        "notified_at": iso(f.notified_at),
    }
