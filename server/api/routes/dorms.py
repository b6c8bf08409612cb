"""GET /api/late-returns: the night's list of entries after curfew, per building in scope."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from core.roles import Role
from server.api.deps import Ctx, SessionDep, ViewerDep
from server.dorms.late_returns import LateReturn

router = APIRouter(prefix="/api", tags=["dorms"])


@router.get("/late-returns")
def late_returns(
    ctx: Ctx,
    session: SessionDep,
    viewer: ViewerDep,
    night: date | None = None,
    building: str | None = None,
) -> dict[str, Any]:
    """Entries after curfew on the night starting `night` (default: last night)."""
    if viewer.role not in (Role.ADMIN, Role.DORM_MANAGER, Role.COUNSELLOR, Role.SECURITY):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "late returns are for dorm managers")
    night = night or (ctx.clock.now().astimezone(ctx.site.tz).date() - timedelta(days=1))
    q = select(LateReturn).where(LateReturn.night == night).order_by(LateReturn.at)
    if building is not None:
        q = q.where(LateReturn.building == building)
    if viewer.role in (Role.DORM_MANAGER, Role.COUNSELLOR):
        q = q.where(LateReturn.building.in_(viewer.buildings))
    rows = session.scalars(q).all()
    return {
        "night": night.isoformat(),
        "entries": [
            {
                "building": r.building,
                "device_id": r.device_id,
                "at": r.at.isoformat(),
                "local_time": r.at.astimezone(ctx.site.tz).strftime("%H:%M"),
                "card": r.card,
            }
            for r in rows
        ],
    }
