"""The rules in force on the devices a viewer sees, and a dry run of a rule change against
recorded history (server/rules/replay.py: the real pipeline on a throw-away database)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from core.readings import Reading, reading_key
from core.roles import Role
from core.ruleset import device_class_of, effective_rules
from core.site import RuleOverride
from core.yamlfile import ConfigError
from server.alerts.model import Alert
from server.api.deps import Ctx, SessionDep, ViewerDep
from server.api.routes.ui import visible_devices
from server.history.reader import HistoryUnavailable
from server.rules.replay import ReplayError, replay

router = APIRouter(prefix="/api", tags=["rules"])

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
    devices = visible_devices(ctx.site, ctx, viewer)
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
