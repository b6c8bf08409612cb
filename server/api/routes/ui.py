"""Routes the web UI needs beyond the resources: the site's names for the viewer, KPIs broken
down by month, category or building, and maintenance windows. The rules in force and a dry
run are in rules.py, a repair's photo in repair_photos.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from core.roles import Role
from core.ruleset import device_class_of
from core.site import DeviceConfig, SiteConfig
from server.api.deps import Ctx, SessionDep, ViewerDep
from server.auth.scope import Viewer, can_see
from server.maintenance.model import MaintenanceWindow
from server.work_orders.kpi import compute
from server.work_orders.model import WorkOrder

router = APIRouter(prefix="/api", tags=["web ui"])

_STAFF = (Role.ADMIN, Role.MAINTENANCE)


def visible_devices(site: SiteConfig, ctx: Ctx, viewer: Viewer) -> list[DeviceConfig]:
    return [
        d
        for d in site.devices
        if can_see(
            viewer,
            building=d.building,
            device_class=device_class_of(d, ctx.profiles[d.profile]).value,
        )
    ]


def _device_names(ctx: Ctx, d: DeviceConfig) -> dict[str, Any]:
    profile = ctx.profiles[d.profile]
    return {
        "id": d.id,
        "name": d.name or d.id,
        "location": d.location,
        "room": d.room,
        "building": d.building,
        "device_class": device_class_of(d, profile).value,
        "profile": d.profile,
        "transport": profile.transport.kind,
        "translations": {k: v.model_dump(exclude_none=True) for k, v in d.translations.items()},
        "metrics": [
            {
                "key": m.key,
                "unit": m.resolved_unit,
                "type": m.resolved_type.value,
                "category": m.category,
            }
            for m in profile.metrics
        ],
    }


@router.get("/ui/site")
def ui_site(ctx: Ctx, viewer: ViewerDep) -> dict[str, Any]:
    """The site as the viewer may see it, with names in the site's language and translations:
    buildings and devices in the viewer's scope only."""
    site = ctx.site
    devices = visible_devices(site, ctx, viewer)
    in_scope = {d.building for d in devices}
    everything = viewer.role in _STAFF
    return {
        "site": {
            "id": site.site,
            "name": site.name,
            "language": site.language,
            "timezone": site.timezone,
            "translations": {
                k: {"name": v.name} if v.name else {} for k, v in site.translations.items()
            },
        },
        "buildings": [
            {
                "id": b.id,
                "name": b.name,
                "kind": b.kind,
                "curfew": b.curfew.strftime("%H:%M") if b.curfew else None,
                "translations": {
                    k: v.model_dump(exclude_none=True) for k, v in b.translations.items()
                },
            }
            for b in site.buildings
            if everything or b.id in in_scope or b.id in viewer.buildings
        ],
        "devices": [_device_names(ctx, d) for d in devices],
        "rule_names": {
            "": site.rule_names,
            **{k: v.rule_names for k, v in site.translations.items() if v.rule_names},
        },
        "note": site.note,
        "class_labels": class_labels(ctx.settings.profiles_dir / "classes"),
    }


def class_labels(folder: Path) -> dict[str, dict[str, str]]:
    """What each device class is called, where its class file says (`label:`, by language)."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        label = data.get("label")
        if isinstance(label, dict) and data.get("device_class"):
            out[str(data["device_class"])] = {str(k): str(v) for k, v in label.items()}
    return out


# -- KPIs by month, category or building -----------------------------------------------------


def _month(at: datetime, site: SiteConfig) -> str:
    return at.astimezone(site.tz).strftime("%Y-%m")


def _group_key(
    wo: WorkOrder, by: Literal["month", "category", "building"], site: SiteConfig
) -> str:
    if by == "month":
        return _month(wo.created_at, site)
    if by == "category":
        return wo.category
    return wo.building or ""


def grouped_kpis(
    orders: Iterable[WorkOrder],
    by: Literal["month", "category", "building"],
    site: SiteConfig,
    now: datetime,
) -> list[dict[str, Any]]:
    groups: dict[str, list[WorkOrder]] = defaultdict(list)
    for wo in orders:
        groups[_group_key(wo, by, site)].append(wo)
    return [{"key": k, **compute(v, now).as_dict()} for k, v in sorted(groups.items())]


@router.get("/ui/kpis")
def kpi_breakdown(
    ctx: Ctx,
    session: SessionDep,
    viewer: ViewerDep,
    by: Literal["month", "category", "building"] = "month",
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
) -> dict[str, Any]:
    """GET /api/kpis's figures for every month, category or building at once (the charts)."""
    if viewer.role not in _STAFF:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "KPIs are for admin and maintenance")
    tz = ctx.site.tz
    today = ctx.clock.now().astimezone(tz).date()
    from_ = from_ or (today.replace(day=1) - timedelta(days=335)).replace(day=1)
    to = to or today
    if to < from_:
        raise HTTPException(422, "to: before from")
    q = select(WorkOrder).where(
        WorkOrder.created_at >= datetime.combine(from_, time(), tz),
        WorkOrder.created_at < datetime.combine(to + timedelta(days=1), time(), tz),
    )
    orders = list(session.scalars(q))
    now = ctx.clock.now()
    return {
        "by": by,
        "from": from_.isoformat(),
        "to": to.isoformat(),
        "overall": compute(orders, now).as_dict(),
        "groups": grouped_kpis(orders, by, ctx.site, now),
    }


# -- maintenance windows ---------------------------------------------------------------------


@router.get("/maintenance-windows")
def maintenance_windows(
    ctx: Ctx,
    session: SessionDep,
    viewer: ViewerDep,
    limit: int = Query(default=200, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Current, coming and past maintenance windows of the devices the viewer sees, newest
    first."""
    visible = {d.id for d in visible_devices(ctx.site, ctx, viewer)}
    now = ctx.clock.now()
    rows = session.scalars(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.device_id.in_(visible))
        .order_by(MaintenanceWindow.starts_at.desc())
        .limit(limit)
    )
    return [
        {
            "id": w.id,
            "device_id": w.device_id,
            "starts_at": w.starts_at.isoformat(),
            "ends_at": w.ends_at.isoformat(),
            "ended_at": w.ended_at.isoformat() if w.ended_at else None,
            "ended_by": w.ended_by,
            "declared_by": w.declared_by,
            "comment": w.comment,
            "active": w.covers(now),
        }
        for w in rows
    ]
