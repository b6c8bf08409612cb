"""Public routes (no login): health, service commitments, the fault-report form."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from prometheus_client import generate_latest

from core.rules_spec import Priority
from server.api.deps import Ctx, SessionDep
from server.events.types import DomainEvent
from server.work_orders import photos, service
from server.work_orders.schemas import PublicFaultReport
from server.work_orders.sla import COMMITMENTS

log = logging.getLogger(__name__)
router = APIRouter(tags=["public"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics")
def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.registry), media_type="text/plain; version=0.0.4")


@router.get("/api/public/commitments")
def commitments(ctx: Ctx) -> dict[str, Any]:
    def fmt(td: Any) -> str | None:
        if td is None:
            return None
        minutes = int(td.total_seconds() // 60)
        return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"

    return {
        "site": ctx.site.name,
        "commitments": [
            {
                "priority": c.priority.value,
                "name": c.name,
                "examples": c.examples,
                "respond": fmt(c.respond),
                "on_site": fmt(c.on_site),
                "repair": fmt(c.repair) if c.repair else f"{c.repair_working_days} working days",
            }
            for c in COMMITMENTS.values()
        ],
        "targets": {"on_time_rate": 0.95, "pass_rate": 0.80, "satisfaction_4_or_5": 0.90},
    }


@router.get("/api/public/form-token")
def form_token(ctx: Ctx) -> dict[str, Any]:
    """Fetched by the report page when it opens; sent back with the report."""
    return {
        "form_token": ctx.form_tokens.issue(ctx.clock.now()),
        "min_fill_seconds": ctx.form_tokens.min_fill.total_seconds(),
    }


@router.post("/api/public/fault-reports", status_code=201)
def fault_report(
    ctx: Ctx, session: SessionDep, request: Request, body: PublicFaultReport
) -> dict[str, Any]:
    if body.website:  # honeypot filled: a bot. Look accepted, store nothing.
        log.info("public fault report dropped: honeypot filled")
        return {"id": None, "status": "received"}
    now = ctx.clock.now()
    if body.form_token is not None:
        problem = ctx.form_tokens.problem(body.form_token, now)
        if problem is not None:
            raise HTTPException(422, f"form_token: {problem}")
    photo = None
    if body.photo:
        try:
            photo = photos.decode_photo(body.photo)
        except photos.PhotoError as exc:
            raise HTTPException(422, f"photo: {exc}") from exc
    client = request.client.host if request.client else "unknown"
    settings = ctx.settings
    if body.form_token is None:
        key, limit = f"api:{client}", settings.public_untokened_reports_per_hour
    else:
        key, limit = f"form:{client}", settings.public_reports_per_hour
    if not ctx.public_limiter.allow(key, limit, now):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many reports from this address (at most {limit} an hour); try again later",
            headers={"Retry-After": "3600"},
        )
    events: list[DomainEvent] = []
    wo = service.open_manual(
        session,
        events,
        category="reported",
        priority=Priority.P3,
        title=f"Reported: {body.description[:60]}",
        description=body.description,
        location=body.location,
        building=None,
        requester="public",
        contact=body.contact,
        device_id=None,
        device_class=None,
        at=now,
        tz=ctx.site.tz,
    )
    session.commit()
    if photo is not None:
        photos.save(ctx.settings.data_dir / "photos", wo.id, photo[0], photo[1])
    ctx.bus.publish_all(events)
    return {"id": wo.id, "status": "received", "respond_by": wo.respond_due_at.isoformat()}
