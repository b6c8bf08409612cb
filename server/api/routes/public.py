"""Public routes (no login): health, service commitments with the measured rates, the
fault-report form, and the reporter's receipt (follow the order, confirm and rate the repair)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import PlainTextResponse
from prometheus_client import generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from core.rules_spec import Priority
from server.api.deps import Ctx, SessionDep
from server.api.limits import client_address
from server.api.security import metrics_access
from server.events.types import DomainEvent
from server.patrols import log as patrol_log
from server.work_orders import photos, service
from server.work_orders.kpi import compute
from server.work_orders.model import Status, WorkOrder
from server.work_orders.receipts import MAX_LENGTH as RECEIPT_MAX_LENGTH
from server.work_orders.receipts import ReceiptTokens
from server.work_orders.schemas import PublicFaultReport
from server.work_orders.sla import COMMITMENTS

log = logging.getLogger(__name__)
router = APIRouter(tags=["public"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, 403: {}, 404: {}},
)
def metrics(ctx: Ctx, request: Request) -> Response:
    """Prometheus text, as FACILITY_SERVER_METRICS allows (server/api/security.py)."""
    metrics_access(ctx.settings, request)
    return Response(generate_latest(ctx.registry), media_type="text/plain; version=0.0.4")


@router.get("/api/public/commitments")
def commitments(ctx: Ctx) -> dict[str, Any]:
    def fmt(td: Any) -> str | None:
        if td is None:
            return None
        minutes = int(td.total_seconds() // 60)
        return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"

    def minutes(td: timedelta | None) -> int | None:
        return None if td is None else int(td.total_seconds() // 60)

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
                # The same limits as numbers, for pages that word them in their own language.
                "respond_minutes": minutes(c.respond),
                "on_site_minutes": minutes(c.on_site),
                "repair_minutes": minutes(c.repair),
                "repair_working_days": c.repair_working_days,
            }
            for c in COMMITMENTS.values()
        ],
        "targets": TARGETS,
    }


# Published targets (shared/DOMAIN.md, "Repair service"); satisfaction's is our own.
TARGETS = {"on_time_rate": 0.95, "pass_rate": 0.80, "satisfaction_4_or_5": 0.90}


@router.get("/api/public/site")
def public_site(ctx: Ctx) -> dict[str, Any]:
    """The site's name in its own language and its translations, its language and time zone."""
    site = ctx.site
    return {
        "name": site.name,
        "language": site.language,
        "timezone": site.timezone,
        "translations": {k: {"name": v.name} for k, v in site.translations.items() if v.name},
    }


def _figures(orders: Iterable[WorkOrder], now: datetime) -> dict[str, Any]:
    k = compute(orders, now).as_dict()
    return {
        "orders": k["orders"],
        "resolved": k["resolved"],
        "on_time_rate": k["on_time_rate"],
        "verified": k["verified"],
        "pass_rate": k["pass_rate"],
        "ratings": k["satisfaction"]["ratings"],
        "satisfaction_4_or_5": k["satisfaction"]["share_4_or_5"],
        "satisfaction_mean": k["satisfaction"]["mean"],
    }


@router.get("/api/public/kpis")
def public_kpis(
    ctx: Ctx, session: SessionDep, months: Annotated[int, Query(ge=1, le=36)] = 12
) -> dict[str, Any]:
    """The measured on-time rate, pass rate and satisfaction next to the published targets:
    overall, by month (of opening, in the site's time zone) and by category, for the last
    `months` months. Aggregates only: no order, person or place is named."""
    tz = ctx.site.tz
    now = ctx.clock.now()
    first = now.astimezone(tz).date().replace(day=1)
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    orders = list(
        session.scalars(
            select(WorkOrder).where(WorkOrder.created_at >= datetime.combine(first, time(), tz))
        )
    )
    by_month: dict[str, list[WorkOrder]] = defaultdict(list)
    by_category: dict[str, list[WorkOrder]] = defaultdict(list)
    by_both: dict[tuple[str, str], list[WorkOrder]] = defaultdict(list)
    for wo in orders:
        month = wo.created_at.astimezone(tz).strftime("%Y-%m")
        by_month[month].append(wo)
        by_category[wo.category].append(wo)
        by_both[(month, wo.category)].append(wo)
    return {
        "from": first.isoformat(),
        "to": now.astimezone(tz).date().isoformat(),
        "targets": TARGETS,
        "overall": _figures(orders, now),
        "by_month": [{"month": m, **_figures(v, now)} for m, v in sorted(by_month.items())],
        "by_category": [
            {"category": c, **_figures(v, now)} for c, v in sorted(by_category.items())
        ],
        "by_month_category": [
            {"month": m, "category": c, **_figures(v, now)} for (m, c), v in sorted(by_both.items())
        ],
        # Share of night patrol rounds done completely, by ISO week, all buildings together.
        "patrol_rounds": patrol_log.completion_by_week(
            patrol_log.completion(session, first, None, None)
        ),
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
    client = client_address(request, tuple(ctx.settings.trusted_proxies))
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
    token = ReceiptTokens(ctx.settings.secret_key.get_secret_value()).issue(wo.id)
    return {
        "id": wo.id,
        "status": "received",
        "respond_by": wo.respond_due_at.isoformat(),
        # The reporter's link: follow the order, and confirm and rate the repair once done.
        # The token travels in the URL's fragment, which browsers never send to a server.
        "receipt_token": token,
        "receipt_url": f"/receipt#{token}",
    }


# -- the reporter's receipt ------------------------------------------------------------------
# The receipt token (server/work_orders/receipts.py) is the reporter's credential: they see
# the order's progress and, once it is resolved, confirm it (verified, with their rating) or
# say it is not fixed (reopened). It travels in request bodies, never in a URL the server sees.


def _receipt_order(ctx: Ctx, session: SessionDep, token: str) -> WorkOrder:
    wo_id = ReceiptTokens(ctx.settings.secret_key.get_secret_value()).order_id(token)
    wo = session.get(WorkOrder, wo_id) if wo_id is not None else None
    if wo is None or wo.requester != "public":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such receipt; check the link")
    return wo


def _receipt(wo: WorkOrder) -> dict[str, Any]:
    resolved_notes = [e.comment for e in wo.history if e.to_status == Status.RESOLVED]
    return {
        "id": wo.id,
        "status": wo.status,
        "location": wo.location,
        "description": wo.description,
        "created_at": wo.created_at.isoformat(),
        "respond_due_at": wo.respond_due_at.isoformat(),
        "due_at": wo.due_at.isoformat(),
        "accepted_at": wo.accepted_at.isoformat() if wo.accepted_at else None,
        "resolved_at": wo.resolved_at.isoformat() if wo.resolved_at else None,
        "verified_at": wo.verified_at.isoformat() if wo.verified_at else None,
        "satisfaction": wo.satisfaction,
        "reopen_count": wo.reopen_count,
        # The steps, without staff names or internal comments.
        "steps": [{"status": e.to_status, "at": e.at.isoformat()} for e in wo.history],
        "resolution_note": resolved_notes[-1] if resolved_notes else None,
        "can_confirm": wo.status == Status.RESOLVED,
    }


class ReceiptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=3, max_length=RECEIPT_MAX_LENGTH)


@router.post("/api/public/receipt")
def receipt(ctx: Ctx, session: SessionDep, body: ReceiptIn) -> dict[str, Any]:
    """The reported order's progress, for the holder of its receipt token."""
    return _receipt(_receipt_order(ctx, session, body.token))


class ReceiptConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    token: str = Field(min_length=3, max_length=RECEIPT_MAX_LENGTH)
    fixed: bool  # true: the repair holds (verify); false: it does not (reopen)
    satisfaction: int | None = Field(default=None, ge=1, le=5)  # needed when fixed
    comment: str = Field(default="", max_length=1000)


@router.post("/api/public/receipt/confirm")
def confirm_repair(ctx: Ctx, session: SessionDep, body: ReceiptConfirm) -> dict[str, Any]:
    """The reporter's verdict on a resolved order: fixed, with a 1-5 rating (the public
    satisfaction figure counts these), or not fixed (the order is reopened)."""
    wo = _receipt_order(ctx, session, body.token)
    if wo.status != Status.RESOLVED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the order is {wo.status}: only a resolved repair can be confirmed",
        )
    if body.fixed and body.satisfaction is None:
        raise HTTPException(422, "satisfaction: rate the repair from 1 to 5")
    events: list[DomainEvent] = []
    service.transition(
        wo,
        events,
        to=Status.VERIFIED if body.fixed else Status.REOPENED,
        actor="reporter",
        at=ctx.clock.now(),
        comment=body.comment,
        satisfaction=body.satisfaction if body.fixed else None,
    )
    session.commit()
    ctx.bus.publish_all(events)
    return _receipt(wo)
