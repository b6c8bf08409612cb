"""/api/patrols: the night's patrol log, scans by QR code from the phone page, checkpoints
(with their QR text for admins) and the rounds-completed KPI. Contract: docs/patrols.md."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from core.roles import Role
from server.api.deps import Ctx, SessionDep, ViewerDep
from server.auth.scope import Viewer
from server.context import ServerContext
from server.patrols import log
from server.patrols.access import code_matches, may_patrol, patrols_anything, qr_text
from server.patrols.service import PatrolService

router = APIRouter(prefix="/api/patrols", tags=["patrols"])
NOT_YOURS = "the patrol log is for campus security, dorm managers and admins"


def get_patrols(request: Request) -> PatrolService:
    service: PatrolService = request.app.state.patrols
    return service


Patrols = Annotated[PatrolService, Depends(get_patrols)]


def night_of(ctx: ServerContext, at: datetime) -> date:
    """The night (its evening's date) a time belongs to: noon to noon."""
    return (at.astimezone(ctx.site.tz) - timedelta(hours=12)).date()


def _buildings(ctx: ServerContext, viewer: Viewer, building: str | None) -> list[str]:
    """The buildings asked about that the viewer may see (404 for one they may not)."""
    if not patrols_anything(viewer):
        raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOURS)
    if building is not None:
        if ctx.site.building(building) is None or not may_patrol(viewer, building):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"building: no building {building!r}")
        return [building]
    with_routes = dict.fromkeys(r.building for r in ctx.site.patrols.routes)
    return [b for b in with_routes if may_patrol(viewer, b)]


@router.get("")
def patrol_log(
    ctx: Ctx,
    session: SessionDep,
    viewer: ViewerDep,
    building: str | None = None,
    night: Annotated[date | None, Query(alias="date")] = None,
) -> dict[str, Any]:
    """The night's patrol log (`date`: the evening the night starts; default: the current
    night) of one building, or of every building with a route the viewer may see."""
    now = ctx.clock.now()
    night = night or night_of(ctx, now)
    return {
        "date": night.isoformat(),
        "buildings": [
            log.night_log(session, ctx.site, b, night, now)
            for b in _buildings(ctx, viewer, building)
        ],
    }


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    checkpoint: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=8, max_length=64)  # from the checkpoint's QR code


@router.post("/scans", status_code=201)
def scan(
    ctx: Ctx, session: SessionDep, viewer: ViewerDep, patrols: Patrols, body: ScanIn
) -> dict[str, Any]:
    """A QR code scanned on the phone page, by the logged-in guard, now."""
    cp = ctx.site.patrols.checkpoint(body.checkpoint)
    if cp is None:
        raise HTTPException(422, f"checkpoint: no checkpoint {body.checkpoint!r}")
    if not may_patrol(viewer, cp.building):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"checkpoint {cp.id} is in a building you do not patrol"
        )
    secret = ctx.settings.secret_key.get_secret_value()
    if not code_matches(secret, cp.id, body.code):
        raise HTTPException(422, f"code: not the QR code of checkpoint {cp.id}; scan it again")
    now = ctx.clock.now()
    row = patrols.record(checkpoint=cp.id, at=now, by=viewer.username, source="qr")
    assert row is not None  # a QR scan has no event id to be a repeat of
    night = night_of(ctx, now)
    entry = next(
        e
        for e in log.night_log(session, ctx.site, cp.building, night, now)["scans"]
        if e["id"] == row.id
    )
    return {**entry, "building": cp.building, "date": night.isoformat()}


@router.get("/checkpoints")
def checkpoints(ctx: Ctx, viewer: ViewerDep) -> list[dict[str, Any]]:
    """The checkpoints the viewer patrols; admins also get the text of each QR code."""
    if not patrols_anything(viewer):
        raise HTTPException(status.HTTP_403_FORBIDDEN, NOT_YOURS)
    secret = ctx.settings.secret_key.get_secret_value()
    routes = ctx.site.patrols.routes
    return [
        {
            "id": cp.id,
            "building": cp.building,
            "name": cp.name,
            "translations": {k: v.name for k, v in cp.translations.items() if v.name},
            "device": cp.device,
            "routes": [r.id for r in routes if cp.id in r.checkpoints],
            **({"qr": qr_text(secret, cp.id)} if viewer.role is Role.ADMIN else {}),
        }
        for cp in ctx.site.patrols.checkpoints
        if may_patrol(viewer, cp.building)
    ]


@router.get("/kpis")
def kpis(
    ctx: Ctx,
    session: SessionDep,
    viewer: ViewerDep,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    building: str | None = None,
) -> dict[str, Any]:
    """Share of rounds completed per building and ISO week of the night (judged rounds)."""
    buildings = set(_buildings(ctx, viewer, building))
    return {
        "from": from_.isoformat() if from_ else None,
        "to": to.isoformat() if to else None,
        "weeks": log.completion(session, from_, to, buildings),
    }
