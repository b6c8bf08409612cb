"""Request guards for the public routes: a body size cap enforced while the body streams in,
and validation errors that name the field without echoing what was sent."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Answers 413 when a request under `prefix` carries more than `max_bytes`: by its
    Content-Length at once, or (chunked) as soon as the bytes read exceed it. The body is
    buffered only up to the cap, so a huge upload costs no more memory than an allowed one."""

    def __init__(self, app: ASGIApp, *, prefix: str, max_bytes: int) -> None:
        self.app = app
        self.prefix = prefix
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
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

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body: larger than {self.max_bytes} bytes"}, status_code=413
        )
        await response(scope, receive, send)


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
