"""Devices with live state, and their history from the time-series store."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from server.alerts.model import Alert
from server.api.deps import Ctx, PageDep, SessionDep, ViewerDep
from server.api.security import redact
from server.auth.scope import can_see
from server.events.types import MaintenanceWindowChanged
from server.history.reader import HistoryUnavailable
from server.ingest.completeness import completeness_pct
from server.ingest.model import Device
from server.maintenance import service as maintenance
from server.maintenance.model import MaintenanceWindow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/devices", tags=["devices"])


def _category(ctx: Ctx, profile: str, metric: str) -> str:
    p = ctx.profiles.get(profile)
    spec = p.metric(metric) if p is not None else None
    return spec.category if spec is not None else "primary"


def _device_out(
    ctx: Ctx, d: Device, active: list[dict[str, Any]], window: MaintenanceWindow | None
) -> dict[str, Any]:
    cfg = ctx.site.device(d.id)
    completeness = completeness_pct(d)
    return {
        "id": d.id,
        "device_class": d.device_class,
        "profile": d.profile,
        "building": d.building,
        "location": d.location,
        "room": d.room,
        "gateway_id": d.gateway_id,
        "online": d.online,
        "last_seen": d.last_seen.isoformat() if d.last_seen else None,
        "status": "online" if d.online else ("no_data_yet" if d.last_seen is None else "offline"),
        "values": {
            k: {
                "value": v["v"],
                "unit": v.get("u"),
                "at": datetime.fromtimestamp(v["t"] / 1000).astimezone().isoformat(),
                # primary (what the device is for) or diagnostic (battery, signal, ...)
                "category": _category(ctx, d.profile, k),
            }
            for k, v in d.values.items()
        },
        "active_alerts": active,
        # A declared maintenance window covering now: the device's rules raise nothing.
        "maintenance": None
        if window is None
        else {
            "until": (window.ends_at if window.ended_at is None else window.ended_at).isoformat(),
            "by": window.declared_by,
            "comment": window.comment,
        },
        # Messages received and missed, and received / expected in % (None: unknown, the
        # device neither numbers its messages nor is polled on a cadence).
        "received": d.received,
        "gaps": d.seq_gaps,
        "completeness": completeness,
        "completeness_pct": completeness,  # the same; the web UI's name
        "cadence_s": d.cadence_ms / 1000 if d.cadence_ms else None,
        "transport": ctx.profiles[d.profile].transport.kind if cfg else None,
    }


@router.get("")
def list_devices(ctx: Ctx, session: SessionDep, viewer: ViewerDep) -> list[dict[str, Any]]:
    devices = [
        d
        for d in session.scalars(select(Device).order_by(Device.id))
        if can_see(viewer, building=d.building, device_class=d.device_class)
    ]
    open_alerts: dict[str, list[dict[str, Any]]] = {}
    for a in session.scalars(select(Alert).where(Alert.open_key.is_not(None))):
        open_alerts.setdefault(a.device_id, []).append(
            {
                "id": a.id,
                "rule": a.rule,
                "severity": a.severity,
                "state": a.state,
                "raised_at": a.raised_at.isoformat(),
                "condition_unknown": a.condition_unknown,
            }
        )
    windows = maintenance.current(session, [d.id for d in devices], ctx.clock.now())
    return [_device_out(ctx, d, open_alerts.get(d.id, []), windows.get(d.id)) for d in devices]


def _visible_device(session: SessionDep, viewer: ViewerDep, device_id: str) -> Device:
    d = session.get(Device, device_id)
    if d is None or not can_see(viewer, building=d.building, device_class=d.device_class):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
    return d


@router.get("/{device_id}")
def get_device(ctx: Ctx, session: SessionDep, viewer: ViewerDep, device_id: str) -> dict[str, Any]:
    d = _visible_device(session, viewer, device_id)
    active = [
        {
            "id": a.id,
            "rule": a.rule,
            "severity": a.severity,
            "state": a.state,
            "raised_at": a.raised_at.isoformat(),
        }
        for a in session.scalars(
            select(Alert).where(Alert.device_id == d.id, Alert.open_key.is_not(None))
        )
    ]
    window = maintenance.covering(session, d.id, ctx.clock.now())
    return _device_out(ctx, d, active, window)


@router.get("/{device_id}/readings")
def readings(
    ctx: Ctx,
    session: SessionDep,
    viewer: ViewerDep,
    device_id: str,
    metric: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = Query(default=10000, ge=1, le=100000),
) -> dict[str, Any]:
    _visible_device(session, viewer, device_id)
    end = end or ctx.clock.now()
    start = start or end - timedelta(hours=24)
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(
            422,
            "start and end need a time zone, e.g. 2026-11-25T08:00:00Z",
        )
    if start > end:
        raise HTTPException(422, "start is after end")
    try:
        points = ctx.history.read(device_id, metric, start, end, limit)
    except HistoryUnavailable as exc:
        # The cause may name the store's URL: it goes to the log, not to the client.
        log.warning("history of %s unavailable: %s", device_id, redact(str(exc)))
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "time-series store unavailable; try again later"
        ) from None
    return {
        "device_id": device_id,
        "metric": metric,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "points": [
            {"metric": p.metric, "ts": p.ts.isoformat(), "value": p.value, "unit": p.unit}
            for p in points
        ],
    }


class MaintenanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Until when the device's rules raise nothing (at most FACILITY_SERVER_MAINTENANCE_MAX
    # ahead, 72 h by default). null ends the open window now, as DELETE does.
    until: datetime | None
    comment: str = Field(default="", max_length=2000)


class MaintenanceWindowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    device_id: str
    starts_at: datetime
    ends_at: datetime
    declared_by: str
    comment: str
    ended_at: datetime | None  # ended early
    ended_by: str | None


def _window_event(
    d: Device, w: MaintenanceWindow, action: str, actor: str, at: datetime
) -> MaintenanceWindowChanged:
    return MaintenanceWindowChanged(
        at=at,
        device_id=d.id,
        building=d.building,
        device_class=d.device_class,
        action=action,
        window_id=w.id,
        starts_at=w.starts_at,
        ends_at=w.ends_at if w.ended_at is None else w.ended_at,
        actor=actor,
        comment=w.comment,
    )


def _end_windows(ctx: Ctx, session: SessionDep, viewer: ViewerDep, d: Device) -> dict[str, Any]:
    now = ctx.clock.now()
    ended = maintenance.end(session, device_id=d.id, by=viewer.username, now=now)
    session.commit()
    ctx.bus.publish_all([_window_event(d, w, "ended", viewer.username, now) for w in ended])
    log.info("maintenance of %s ended by %s (%d window(s))", d.id, viewer.username, len(ended))
    return {"device_id": d.id, "maintenance_until": None, "by": viewer.username}


@router.get("/{device_id}/maintenance")
def maintenance_history(
    session: SessionDep, viewer: ViewerDep, device_id: str, page: PageDep
) -> list[MaintenanceWindowOut]:
    """The device's maintenance windows, newest first, with who declared and who ended them."""
    _visible_device(session, viewer, device_id)
    rows = maintenance.history(session, device_id, page.limit, page.offset)
    return [MaintenanceWindowOut.model_validate(w) for w in rows]


@router.post("/{device_id}/maintenance", responses={403: {}, 404: {}, 422: {}})
def declare_maintenance(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, device_id: str, body: MaintenanceIn
) -> dict[str, Any]:
    """Declared maintenance: the device's rules raise nothing until `until`. Admins and
    maintenance anywhere, dorm and canteen managers on their buildings' devices."""
    d = _visible_device(session, viewer, device_id)
    if body.until is None:
        return _end_windows(ctx, session, viewer, d)
    if body.until.tzinfo is None:
        raise HTTPException(422, "until needs a time zone")
    now = ctx.clock.now()
    try:
        window = maintenance.declare(
            session,
            device_id=device_id,
            until=body.until,
            by=viewer.username,
            comment=body.comment,
            now=now,
            max_length=ctx.settings.maintenance_max,
        )
    except maintenance.MaintenanceError as exc:
        raise HTTPException(422, f"until: {exc}") from exc
    session.commit()
    ctx.bus.publish(_window_event(d, window, "declared", viewer.username, now))
    log.info("maintenance of %s declared by %s until %s", d.id, viewer.username, body.until)
    return {"device_id": device_id, "maintenance_until": body.until, "by": viewer.username}


@router.delete("/{device_id}/maintenance", responses={404: {}})
def end_maintenance(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, device_id: str
) -> dict[str, Any]:
    """Ends the device's maintenance early (its rules watch again): anyone who sees it."""
    return _end_windows(ctx, session, viewer, _visible_device(session, viewer, device_id))
