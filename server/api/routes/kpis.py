"""GET /api/kpis: on-time rate, pass rate, MTTA, MTTR, backlog, satisfaction."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from core.roles import Role
from server.api.deps import Ctx, SessionDep, ViewerDep
from server.patrols import log as patrol_log
from server.work_orders.kpi import compute
from server.work_orders.model import WorkOrder

router = APIRouter(prefix="/api", tags=["kpis"])


@router.get("/kpis")
def kpis(
    ctx: Ctx,
    session: SessionDep,
    viewer: ViewerDep,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    category: str | None = None,
    building: str | None = None,
) -> dict[str, Any]:
    if viewer.role not in (Role.ADMIN, Role.MAINTENANCE):
        if viewer.role is Role.DORM_MANAGER and building in viewer.buildings:
            pass  # a dorm manager may see their own buildings' figures
        else:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "KPIs are for admin and maintenance")
    tz = ctx.site.tz
    q = select(WorkOrder)
    if from_ is not None:
        q = q.where(WorkOrder.created_at >= datetime.combine(from_, time(), tz))
    if to is not None:  # inclusive day
        q = q.where(WorkOrder.created_at < datetime.combine(to + timedelta(days=1), time(), tz))
    if category:
        q = q.where(WorkOrder.category == category)
    if building:
        q = q.where(WorkOrder.building == building)
    result = compute(session.scalars(q), ctx.clock.now()).as_dict()
    # Patrol rounds completed per building and week (server/patrols/): the dorm manager's
    # own buildings, everyone's for admin and maintenance.
    scope = {building} if building else None
    if viewer.role is Role.DORM_MANAGER:
        scope = scope or set(viewer.buildings)
    result["patrols"] = patrol_log.completion(session, from_, to, scope)
    result["filters"] = {
        "from": from_.isoformat() if from_ else None,
        "to": to.isoformat() if to else None,
        "category": category,
        "building": building,
    }
    return result
