"""Patrols in the server: `install(app, ctx)` is the one call server/app.py makes. It builds
the service, subscribes its listener to reader scans, mounts /api/patrols and runs the
judging tick for the app's lifetime."""

from __future__ import annotations

from fastapi import FastAPI

from server.context import ServerContext
from server.lifespan import tick_with_app
from server.patrols.service import PatrolService


def install(app: FastAPI, ctx: ServerContext, tick_s: float | None) -> PatrolService:
    """`tick_s` None: no ticker (tests call `tick(now)` on their clock)."""
    from server.api.routes import patrols

    service = PatrolService(ctx.sessions, ctx.site, ctx.bus, ctx.clock)
    service.subscribe_to(ctx.bus)
    app.state.patrols = service
    app.include_router(patrols.router)
    tick_with_app(app, service.tick, max(tick_s, 1.0) if tick_s else None)
    return service
