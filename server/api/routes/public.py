"""Public routes (no login): health, service commitments, the fault-report form."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from prometheus_client import generate_latest

from core.rules_spec import Priority
from server.api.deps import Ctx, SessionDep
from server.notifications.stream import LiveEvent
from server.work_orders import photos, service
from server.work_orders.schemas import PublicFaultReport, WorkOrderOut
from server.work_orders.sla import COMMITMENTS

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


@router.post("/api/public/fault-reports", status_code=201)
def fault_report(
    ctx: Ctx, session: SessionDep, request: Request, body: PublicFaultReport
) -> dict[str, Any]:
    if body.website:  # honeypot filled: a bot. Look accepted, store nothing.
        return {"id": None, "status": "received"}
    client = request.client.host if request.client else "unknown"
    now = time.monotonic()
    recent = [t for t in ctx.public_reports.get(client, []) if now - t < 3600]
    if len(recent) >= ctx.settings.public_reports_per_hour:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, "too many reports from this address; try again later"
        )
    photo = None
    if body.photo:
        try:
            photo = photos.decode_photo(body.photo)
        except photos.PhotoError as exc:
            raise HTTPException(422, f"photo: {exc}") from exc
    ctx.public_reports[client] = [*recent, now]
    wo = service.open_manual(
        session,
        category="reported",
        priority=Priority.P3,
        title=f"Reported: {body.description[:60]}",
        description=body.description,
        location=body.location,
        building=None,
        requester="public",
        contact=body.contact,
        device_id=None,
        at=ctx.clock.now(),
        tz=ctx.site.tz,
    )
    session.commit()
    if photo is not None:
        photos.save(ctx.settings.data_dir / "photos", wo.id, photo[0], photo[1])
    ctx.broadcaster.publish(
        LiveEvent(
            "work_order",
            WorkOrderOut.model_validate(wo).model_dump(mode="json"),
            None,
            None,
            wo.category,
        )
    )
    return {"id": wo.id, "status": "received", "respond_by": wo.respond_due_at.isoformat()}
