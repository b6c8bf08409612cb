"""Declare, end and look up maintenance windows (event time decides what a window covers)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.maintenance.model import MaintenanceWindow


class MaintenanceError(ValueError):
    pass


def _open(s: Session, device_id: str, now: datetime) -> list[MaintenanceWindow]:
    rows = s.scalars(
        select(MaintenanceWindow).where(
            MaintenanceWindow.device_id == device_id,
            MaintenanceWindow.ended_at.is_(None),
            MaintenanceWindow.ends_at > now,
        )
    )
    return list(rows)


def declare(
    s: Session,
    *,
    device_id: str,
    until: datetime,
    by: str,
    comment: str,
    now: datetime,
    max_length: timedelta | None = None,
) -> MaintenanceWindow:
    """A window from now to `until` (at most `max_length`: a forgotten window must not
    silence a device for good); one already open on the device ends where this starts."""
    if until <= now:
        raise MaintenanceError("until must be in the future")
    if max_length is not None and until - now > max_length:
        hours = max_length.total_seconds() / 3600
        raise MaintenanceError(f"a maintenance window lasts at most {hours:g} h")
    for window in _open(s, device_id, now):
        window.ended_at, window.ended_by = now, by
    window = MaintenanceWindow(
        device_id=device_id, starts_at=now, ends_at=until, declared_by=by, comment=comment
    )
    s.add(window)
    s.flush()
    return window


def end(s: Session, *, device_id: str, by: str, now: datetime) -> list[MaintenanceWindow]:
    """End the device's open windows now; returns those it ended."""
    ended = _open(s, device_id, now)
    for window in ended:
        window.ended_at, window.ended_by = now, by
    return ended


def covering(s: Session, device_id: str, at: datetime) -> MaintenanceWindow | None:
    """The window that covers `at` on this device, if any."""
    candidates = s.scalars(
        select(MaintenanceWindow).where(
            MaintenanceWindow.device_id == device_id,
            MaintenanceWindow.starts_at <= at,
            MaintenanceWindow.ends_at > at,
        )
    )
    return next((w for w in candidates if w.covers(at)), None)


def current(s: Session, device_ids: list[str], now: datetime) -> dict[str, MaintenanceWindow]:
    """Each listed device's window covering `now` (for the device list)."""
    rows = s.scalars(
        select(MaintenanceWindow).where(
            MaintenanceWindow.device_id.in_(device_ids),
            MaintenanceWindow.starts_at <= now,
            MaintenanceWindow.ends_at > now,
        )
    )
    return {w.device_id: w for w in rows if w.covers(now)}


def history(s: Session, device_id: str, limit: int, offset: int) -> list[MaintenanceWindow]:
    """The device's windows, newest first, ended ones too (the audit trail)."""
    rows = s.scalars(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.device_id == device_id)
        .order_by(MaintenanceWindow.starts_at.desc(), MaintenanceWindow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows)
