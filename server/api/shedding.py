"""Load shedding: at most `limit` requests run at once, at most `queue` more wait (each up to
`wait_s`); the rest get 503 with Retry-After at once, before any work is done for them.

Why: a burst against a heavy route (GET /api/devices of a whole campus) used to queue in the
thread pool and on the database pool for minutes, while everything else (health checks,
logins, the uplink sharing the pool) starved with it. Shedding keeps the answer time of what
is admitted bounded by the queue's length, and a refused client learns it at once, with the
time to come back. Long-lived streams and the probes (/healthz, /metrics) are not counted;
static files are cheap and not counted either.
"""

from __future__ import annotations

import asyncio
import re

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT = re.compile(r"^/(healthz|metrics|static/.*|api/stream)$")


class LoadShedder:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        queue: int,
        wait_s: float,
        retry_after_s: int = 1,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.queue = queue
        self.wait_s = wait_s
        self.retry_after = str(retry_after_s).encode()
        self._slots: asyncio.Semaphore | None = None  # made on the server's event loop
        self._waiting = 0
        self.shed = Counter(
            "server_http_shed",
            "Requests refused with 503 by the load shedder, by why",
            ["why"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "server_http_in_flight", "Requests admitted and running", registry=registry
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or EXEMPT.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        slots = self._slots
        if slots.locked():
            if self._waiting >= self.queue:
                await self._refuse(send, "queue_full")
                return
            self._waiting += 1
            try:
                await asyncio.wait_for(slots.acquire(), self.wait_s)
            except TimeoutError:
                await self._refuse(send, "waited_too_long")
                return
            finally:
                self._waiting -= 1
        else:
            await slots.acquire()
        self.in_flight.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.dec()
            slots.release()

    async def _refuse(self, send: Send, why: str) -> None:
        self.shed.labels(why).inc()
        body = b'{"detail":"server busy: try again shortly"}'
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", self.retry_after),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def busy(_request: Request, _exc: Exception) -> Response:
    """No database connection came within the pool's wait: 503, come back shortly."""
    return JSONResponse(
        {"detail": "server busy: try again shortly"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
