"""Response hardening for every route: security headers and the Content-Security-Policy,
error bodies without internal details, secrets kept out of the access log.

The policy (docs/security.md): scripts and styles only from this server's own files (no
inline <script>, no onclick="", no <style>, no style="" attributes; element.style set
from a script is fine), images also as data:/blob: URLs (photo previews), connections only
back to this server (fetch, EventSource), no plugins, no <base>, forms post only here, and
no framing by any site. The interactive API docs, when enabled, get their own policy that
allows Swagger UI from its CDN and the one inline script FastAPI writes, by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from typing import Any

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.limits import client_address
from server.settings import ServerSettings, is_loopback

log = logging.getLogger(__name__)

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SWAGGER_CDN = "https://cdn.jsdelivr.net"
HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Receipt links carry their token in the fragment; no page passes its URL on.
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "geolocation=(), microphone=(), camera=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """Adds HEADERS to every HTTP response that does not set its own value; API answers are
    never cached (they are one user's view)."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
        if hsts:
            self.extra.append((b"strict-transport-security", HSTS.encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.extra if k not in present]
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- nothing internal in an error body ------------------------------------------------------

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_KEYVAL_SECRET = re.compile(r"(?i)\b(password|passwd|pwd|secret|token)=([^\s&'\"]+)")


def redact(text: str) -> str:
    """`text` without URLs (broker, database, time-series store: they may carry a login)
    and without key=value secrets (libpq DSNs)."""
    return _KEYVAL_SECRET.sub(r"\1=***", _URL.sub("<url>", text))


async def internal_error(request: Request, exc: Exception) -> Response:
    """An unexpected error: logged with its details here, none of them in the answer."""
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; the server log has the details"}, 500)


# -- the access log -------------------------------------------------------------------------

_QUERY_SECRET = re.compile(r"(?i)([?&](?:ticket|access_token|token)=)[^&\s\"]*")


class RedactQuerySecrets(logging.Filter):
    """Uvicorn's access log prints each request's query string: the stream's ticket (and any
    token someone puts in a URL) is masked before the line is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY_SECRET.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = _QUERY_SECRET.sub(r"\1***", record.msg)
        return True


def install_log_redaction() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQuerySecrets) for f in access.filters):
        access.addFilter(RedactQuerySecrets())


# -- API docs under their own policy --------------------------------------------------------


def add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) with a CSP naming its CDN and its one inline script by hash."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} – API")
        body = bytes(page.body).decode()
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
            for s in re.findall(r"<script>(.*?)</script>", body, flags=re.S)
        )
        policy = CSP.replace(
            "script-src 'self'", f"script-src 'self' {SWAGGER_CDN} {hashes}"
        ).replace("style-src 'self'", f"style-src 'self' {SWAGGER_CDN}")
        policy = policy.replace("img-src 'self' data: blob:", "img-src 'self' data: https:")
        return HTMLResponse(body, headers={"Content-Security-Policy": policy})


# -- /metrics ----------------------------------------------------------------------------------


def metrics_access(settings: ServerSettings, request: Request) -> None:
    """FACILITY_SERVER_METRICS: off (404), local (loopback peers, or the metrics token as a
    bearer token from anywhere), public (anyone; restrict it in the proxy)."""
    if settings.metrics == "off":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "metrics are off")
    if settings.metrics == "public":
        return
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    sent = request.headers.get("authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return
    # Through a reverse proxy on this machine every peer is loopback: a forwarded request
    # counts as local only if the proxy is trusted and says the client was local.
    address = client_address(request, tuple(settings.trusted_proxies))
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    peer = request.client.host if request.client else ""
    if not is_loopback(address) or (forwarded and address == peer):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "metrics: from this machine only, or with the metrics token",
        )


# -- the error shapes in the OpenAPI schema ------------------------------------------------


def document_errors(app: FastAPI) -> None:
    """The schema says what a 422 really carries: FastAPI's list of field errors, or one
    message naming the field ("until: must be in the future") from a route's own checks;
    the public routes add a joined `message`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        error = spec.get("components", {}).get("schemas", {}).get("HTTPValidationError")
        if error is not None:
            listed = error["properties"]["detail"]
            error["properties"]["detail"] = {
                "title": "Detail",
                "anyOf": [{k: v for k, v in listed.items() if k != "title"}, {"type": "string"}],
            }
            error["properties"]["message"] = {"title": "Message", "type": "string"}
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


async def out_of_range(request: Request, exc: Exception) -> Response:
    """A number beyond what the database stores (an id of 10**40 in a path): no such record
    can exist, so it is the request that is wrong, not the server."""
    log.info("%s %s: value out of range (%s)", request.method, request.url.path, type(exc).__name__)
    return JSONResponse({"detail": "a number in the request is out of range"}, 422)
