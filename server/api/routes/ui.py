"""Routes the web UI needs beyond the resources: the site's names for the viewer, KPIs broken
down by month, category or building, the rules in force and a dry run of a rule change
against recorded history, maintenance windows, and a repair's resolution photo."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from core.readings import Reading, reading_key
from core.roles import Role
from core.ruleset import device_class_of, effective_rules
from core.site import DeviceConfig, RuleOverride, SiteConfig
from core.yamlfile import ConfigError
from server.alerts.model import Alert
from server.api.deps import Ctx, SessionDep, ViewerDep
from server.auth.scope import Viewer, can_see
from server.history.reader import HistoryUnavailable
from server.maintenance.model import MaintenanceWindow
from server.rules.replay import ReplayError, replay
from server.work_orders import photos
from server.work_orders.kpi import compute
from server.work_orders.model import WorkOrder

router = APIRouter(prefix="/api", tags=["web ui"])

_STAFF = (Role.ADMIN, Role.MAINTENANCE)


def _visible_devices(site: SiteConfig, ctx: Ctx, viewer: Viewer) -> list[DeviceConfig]:
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
    devices = _visible_devices(site, ctx, viewer)
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


# -- rules: what is in force, and a dry run against history ----------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return value


@router.get("/rules")
def rules_in_force(
    ctx: Ctx, viewer: ViewerDep, device_id: str | None = None
) -> list[dict[str, Any]]:
    """Each visible device's effective rules (class defaults, profile, site overrides), as
    the rule engine runs them; durations in seconds."""
    devices = _visible_devices(ctx.site, ctx, viewer)
    if device_id is not None:
        devices = [d for d in devices if d.id == device_id]
        if not devices:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
    out = []
    for d in devices:
        profile = ctx.profiles[d.profile]
        specs = effective_rules(d, profile, ctx.site, ctx.class_rules)
        out.append(
            {
                "device_id": d.id,
                "device_class": device_class_of(d, profile).value,
                "rules": [_jsonable(s.model_dump(mode="python", by_alias=True)) for s in specs],
            }
        )
    return out


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: datetime
    end: datetime
    device_ids: list[str] = Field(default_factory=list, max_length=200)  # empty: every device
    # Changes to try, written as in the site file's rule_overrides.
    overrides: list[dict[str, Any]] = Field(default_factory=list, max_length=50)


DRY_RUN_MAX_SPAN = timedelta(days=7)
DRY_RUN_MAX_READINGS = 200_000


@router.post("/rules/dry-run")
def dry_run(ctx: Ctx, session: SessionDep, viewer: ViewerDep, body: DryRunIn) -> dict[str, Any]:
    """Replay the recorded readings of a period through the real rule engine, with the site's
    rules plus the given overrides, on a throw-away database: what would have been raised,
    next to what was raised. Device events (doors) are not in the history store's readings,
    so event rules are not replayed."""
    if viewer.role is not Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the rule dry run is for admin")
    if body.start.tzinfo is None or body.end.tzinfo is None:
        raise HTTPException(422, "start and end need a time zone, e.g. 2026-11-25T08:00:00Z")
    if body.end <= body.start:
        raise HTTPException(422, "end: must be after start")
    if body.end - body.start > DRY_RUN_MAX_SPAN:
        raise HTTPException(422, f"end: at most {DRY_RUN_MAX_SPAN.days} days after start")
    known = {d.id for d in ctx.site.devices}
    unknown = [d for d in body.device_ids if d not in known]
    if unknown:
        raise HTTPException(422, f"device_ids: unknown device {unknown[0]!r}")
    try:
        overrides = [RuleOverride.model_validate(o) for o in body.overrides]
    except ValidationError as exc:
        raise HTTPException(422, f"overrides: {exc.errors()[0]['msg']}") from exc
    device_ids = body.device_ids or sorted(known)
    items: list[Reading] = []
    for device_id in device_ids:
        try:
            points = ctx.history.read(
                device_id, None, body.start, body.end, DRY_RUN_MAX_READINGS - len(items)
            )
        except HistoryUnavailable as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"time-series store unavailable: {exc}"
            ) from exc
        for p in points:
            if p.value is None:
                continue
            at = p.ts.astimezone(UTC)
            items.append(
                Reading(
                    reading_id=reading_key(device_id, p.metric, at, None),
                    device_id=device_id,
                    metric=p.metric,
                    value=p.value,
                    unit=p.unit,
                    measured_at=at,
                    received_at=at,
                )
            )
        if len(items) >= DRY_RUN_MAX_READINGS:
            break
    raw = yaml.safe_load(Path(ctx.settings.site_file).read_text(encoding="utf-8"))
    raw["rule_overrides"] = [
        *(raw.get("rule_overrides") or []),
        *(o.model_dump(exclude_none=True) for o in overrides),
    ]
    try:
        with tempfile.TemporaryDirectory(prefix="cfm-dry-run-") as tmp:
            site_file = Path(tmp) / "site.yaml"
            site_file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
            would = replay(
                items, site_file=site_file, profiles_dir=ctx.settings.profiles_dir, burst=True
            )
    except (ConfigError, ReplayError) as exc:
        raise HTTPException(422, f"overrides: {exc}") from exc
    chosen = set(device_ids)
    actual = session.scalars(
        select(Alert)
        .where(Alert.raised_at >= body.start, Alert.raised_at <= body.end)
        .order_by(Alert.raised_at)
    )
    return {
        "start": body.start.isoformat(),
        "end": body.end.isoformat(),
        "readings": len(items),
        "truncated": len(items) >= DRY_RUN_MAX_READINGS,
        "would_raise": [a.as_dict() for a in would if a.device_id in chosen],
        "raised": [
            {
                "device_id": a.device_id,
                "rule": a.rule,
                "severity": a.severity,
                "raised_at": a.raised_at.isoformat(),
                "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
            }
            for a in actual
            if a.device_id in chosen
        ],
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
    visible = {d.id for d in _visible_devices(ctx.site, ctx, viewer)}
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


# -- the technician's photo of a repair ------------------------------------------------------


class PhotoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    photo: str = Field(max_length=3_000_000)  # data URL, JPEG or PNG, at most 2 MB


def _order_in_scope(session: SessionDep, viewer: Viewer, wo_id: int) -> WorkOrder:
    wo = session.get(WorkOrder, wo_id)
    if wo is None or not can_see(
        viewer, building=wo.building, device_class=wo.device_class, category=wo.category
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no work order {wo_id}")
    return wo


def _resolution_photos(ctx: Ctx) -> Path:
    return ctx.settings.data_dir / "photos" / "resolution"


@router.post("/work-orders/{wo_id}/resolution-photo", status_code=201)
def put_resolution_photo(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, wo_id: int, body: PhotoIn
) -> dict[str, Any]:
    """The technician's photo of the finished repair (one per order; a new one replaces it)."""
    if viewer.role not in _STAFF:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only maintenance adds repair photos")
    _order_in_scope(session, viewer, wo_id)
    try:
        raw, ext, media = photos.decode_photo(body.photo)
    except photos.PhotoError as exc:
        raise HTTPException(422, f"photo: {exc}") from exc
    folder = _resolution_photos(ctx)
    old = photos.find(folder, wo_id)
    if old is not None:
        old[0].unlink(missing_ok=True)
    photos.save(folder, wo_id, raw, ext)
    return {"work_order_id": wo_id, "media_type": media, "bytes": len(raw)}


@router.get("/work-orders/{wo_id}/resolution-photo")
def get_resolution_photo(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, wo_id: int
) -> FileResponse:
    _order_in_scope(session, viewer, wo_id)
    found = photos.find(_resolution_photos(ctx), wo_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"work order {wo_id} has no repair photo")
    return FileResponse(found[0], media_type=found[1])
