"""Request guards: a body size cap on every route, enforced while the body streams in; the
client address (X-Forwarded-For only from configured proxies); validation errors on the
public routes that name the field without echoing what was sent."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Answers 413 when a request carries more than its route's cap: `max_bytes`, or the cap
    of the first path pattern (regular expression) in `larger` that matches (the routes
    that take a photo). Judged by
    Content-Length at once, or (chunked) as soon as the bytes read exceed it. The body is
    buffered only up to the cap, so a huge upload costs no more memory than an allowed one."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = max_bytes
        self.larger = [(re.compile(p), n) for p, n in (larger or {}).items()]

    def cap(self, path: str) -> int:
        return next((n for p, n in self.larger if p.fullmatch(path)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.cap(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > max_bytes):
                await self._too_large(scope, receive, send, max_bytes)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > max_bytes:
                await self._too_large(scope, receive, send, max_bytes)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # disconnect and the like, as the server reports them
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        response = JSONResponse(
            {"detail": f"request body: larger than {cap} bytes"}, status_code=413
        )
        await response(scope, receive, send)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(
    proxies: tuple[str, ...],
) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The client's address: the TCP peer, unless the peer is a configured proxy; then the
    nearest address in X-Forwarded-For that is not one of our proxies (addresses further
    left were written by the client and prove nothing)."""
    peer = request.client.host if request.client else "unknown"
    networks = _networks(trusted_proxies)
    if not networks or not _trusted(peer, networks):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage in the header: the proxy's own address, not the garbage
    return peer


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


async def public_validation_errors(request: Request, exc: Exception) -> Response:
    """On the public routes, 422 names each field and drops the sent value (a stranger's
    input is not reflected back); staff routes keep FastAPI's usual body."""
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith("/api/public/"):
        return await request_validation_exception_handler(request, exc)
    errors = [
        {"loc": list(e["loc"]), "field": _field(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    message = "; ".join(f"{e['field']}: {e['msg']}" for e in errors)
    return JSONResponse({"detail": errors, "message": message}, status_code=422)
