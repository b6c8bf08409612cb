"""What people write into the record besides samples: corrective actions, calibrations,
and the two ways to change a record afterwards: a correction (fields, with a reason) and a
void (kept, marked, with a reason). Each is chained; nothing is edited silently."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from server.coldchain import corrections
from server.coldchain.model import CorrectiveAction, Excursion
from server.coldchain.records_model import Calibration, Sample

ACTION_FIELDS = (
    "cause",
    "impact",
    "disposition",
    "moved_to",
    "quantity",
    "preventive_action",
    "note",
)
CALIBRATION_FIELDS = ("calibrated_on", "reference", "offset_c", "result", "next_due", "note")
SAMPLE_FIELDS = ("dish", "weight_g", "taken_at", "person", "fridge", "meal")


def add_action(
    s: Session, e: Excursion, data: dict[str, Any], *, actor: str, now: datetime, tz: ZoneInfo
) -> CorrectiveAction:
    row = CorrectiveAction(
        excursion_id=e.id,
        recorded_by=actor,
        recorded_at=now,
        **{k: data.get(k) or ("" if k in ("note",) else data.get(k)) for k in ACTION_FIELDS},
    )
    s.add(row)
    corrections.save(s, row, building=e.building, day=_day(e.started_at, tz), actor=actor, at=now)
    return row


def add_calibration(
    s: Session, data: dict[str, Any], *, building: str, actor: str, now: datetime
) -> Calibration:
    row = Calibration(
        device_id=data["device_id"],
        by=actor,
        recorded_at=now,
        void_reason="",
        **{k: data[k] for k in CALIBRATION_FIELDS if k != "note"},
        note=data.get("note") or "",
    )
    s.add(row)
    corrections.save(s, row, building=building, day=row.calibrated_on, actor=actor, at=now)
    return row


def correct(
    s: Session,
    row: CorrectiveAction | Calibration | Sample,
    changes: dict[str, Any],
    *,
    reason: str,
    building: str,
    day: date,
    actor: str,
    now: datetime,
) -> None:
    for k, v in changes.items():
        setattr(row, k, v)
    corrections.save(s, row, building=building, day=day, actor=actor, at=now, reason=reason)


def void(
    s: Session,
    row: Calibration | Sample,
    *,
    reason: str,
    building: str,
    day: date,
    actor: str,
    now: datetime,
) -> None:
    row.void, row.void_reason = True, reason
    corrections.save(
        s, row, building=building, day=day, actor=actor, at=now, reason=reason, op="void"
    )


def _day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()
