"""GET /api/stream: server-sent events of readings, alerts and work-order changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from server.api.deps import Ctx, ViewerDep
from server.auth.scope import can_see
from server.stream.hub import LiveEvent

router = APIRouter(prefix="/api", tags=["stream"])


@router.get("/stream")
async def stream(ctx: Ctx, viewer: ViewerDep, request: Request) -> StreamingResponse:
    def accept(ev: LiveEvent) -> bool:
        if ev.type == "gateway":
            return viewer.role.value in ("admin", "maintenance", "security")
        return can_see(
            viewer, building=ev.building, device_class=ev.device_class, category=ev.category
        )

    sub = ctx.live.subscribe(accept)

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while not await request.is_disconnected():
                try:
                    ev = await asyncio.wait_for(sub.queue.get(), timeout=15)
                except TimeoutError:
                    yield b": keep-alive\n\n"  # proxies close idle connections
                    continue
                yield b"event: " + ev.type.encode() + b"\ndata: " + orjson.dumps(ev.data) + b"\n\n"
        finally:
            ctx.live.unsubscribe(sub)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
