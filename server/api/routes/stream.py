"""GET /api/stream: server-sent events of readings, alerts and work-order changes.

A browser's EventSource cannot send an Authorization header, so it first fetches a ticket
(POST /api/stream/ticket, with its header) and opens `/api/stream?ticket=...`: single use,
valid for seconds, masked in the access log. Other clients may send the header. The stream
ends with an `event: session_ended` as soon as its session is revoked (logout, password
change, account disabled), and re-checks its session every `stream_session_check`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from core.clock import utcnow
from server.api.deps import Ctx, LoginDep, SessionDep, viewer_of
from server.auth import sessions
from server.auth.scope import can_see
from server.stream.hub import LiveEvent

router = APIRouter(prefix="/api", tags=["stream"])
KEEP_ALIVE_S = 15.0


class TicketOut(BaseModel):
    ticket: str
    expires_in: int  # seconds
    url: str  # where to open the EventSource


@router.post("/stream/ticket")
def ticket(ctx: Ctx, session: SessionDep, login: LoginDep) -> TicketOut:
    ttl = ctx.settings.stream_ticket_ttl
    t = sessions.issue_ticket(session, login.session_id, now=utcnow(), ttl=ttl)
    session.commit()
    return TicketOut(ticket=t, expires_in=int(ttl.total_seconds()), url=f"/api/stream?ticket={t}")


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    ctx: Ctx,
    login: LoginDep,
    request: Request,
    ticket: Annotated[
        str | None, Query(max_length=128, description="from POST /api/stream/ticket")
    ] = None,
) -> StreamingResponse:
    viewer = viewer_of(ctx, login.user)

    def accept(ev: LiveEvent) -> bool:
        if ev.type == "gateway":
            return viewer.role.value in ("admin", "maintenance", "security")
        return can_see(
            viewer, building=ev.building, device_class=ev.device_class, category=ev.category
        )

    sub = ctx.live.subscribe(accept)
    watch = ctx.auth.revocations.watch(login.session_id)
    check_every = ctx.settings.stream_session_check.total_seconds()

    def still_valid() -> bool:
        with ctx.sessions() as s:
            return sessions.session_login(s, login.session_id, utcnow()) is not None

    async def events() -> AsyncIterator[bytes]:
        revoked = asyncio.ensure_future(watch.revoked.wait())
        pending: asyncio.Future[LiveEvent] | None = None
        checked = time.monotonic()
        try:
            yield b": connected\n\n"
            while not await request.is_disconnected():
                if pending is None:
                    pending = asyncio.ensure_future(sub.queue.get())
                waiting: set[asyncio.Future[Any]] = {pending, revoked}
                done, _ = await asyncio.wait(
                    waiting,
                    timeout=min(KEEP_ALIVE_S, check_every),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                now = time.monotonic()
                if revoked in done or (
                    now - checked >= check_every and not await asyncio.to_thread(still_valid)
                ):
                    yield b"event: session_ended\ndata: {}\n\n"
                    return
                if now - checked >= check_every:
                    checked = now
                if pending not in done:
                    yield b": keep-alive\n\n"  # proxies close idle connections
                    continue
                ev = pending.result()
                pending = None
                yield b"event: " + ev.type.encode() + b"\ndata: " + orjson.dumps(ev.data) + b"\n\n"
        finally:
            for fut in (pending, revoked):
                if fut is not None:
                    fut.cancel()
            ctx.live.unsubscribe(sub)
            ctx.auth.revocations.unwatch(watch)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
