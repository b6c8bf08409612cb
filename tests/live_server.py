"""A real uvicorn server around an in-process app, for tests that need real HTTP
(server-sent events, a browser)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from core.clock import Clock
from server.app import create_app
from server.context import ServerContext
from server.settings import ServerSettings
from tests.harness import free_port

# free_port is re-exported: several tests take it from here.
__all__ = ["LiveServer", "free_port", "start_server"]


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def ctx(self) -> ServerContext:
        ctx: ServerContext = self.app.state.ctx
        return ctx

    def headers(self, username: str, password: str = "demo") -> dict[str, str]:
        """Bearer header for a user, from the real login endpoint."""
        if username not in self._tokens:
            r = httpx.post(
                f"{self.url}/api/auth/token",
                data={"username": username, "password": password},
                timeout=10,
            )
            assert r.status_code == 200, f"login as {username}: {r.status_code} {r.text}"
            self._tokens[username] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    def get(self, path: str, username: str = "admin") -> Any:
        r = httpx.get(f"{self.url}{path}", headers=self.headers(username), timeout=10)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_server(
    data_dir: Path, *, clock: Clock | None = None, site_file: Path | None = None
) -> LiveServer:
    """The demo server built in-process, without an MQTT consumer, served by uvicorn."""
    # Only a given site file overrides the settings' own (FACILITY_SERVER_SITE_FILE, then the
    # packaged demo site).
    overrides: dict[str, Any] = {"site_file": site_file} if site_file else {}
    settings = ServerSettings(
        demo=True,
        data_dir=data_dir,
        broker="mqtt://127.0.0.1:1",
        tick_seconds=1.0,
        **overrides,
    )
    app = create_app(settings, clock=clock, consume=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=3
        )
    )
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    live = LiveServer(f"http://127.0.0.1:{port}", app, server, thread)
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{live.url}/healthz", timeout=1).status_code == 200:
                return live
        except httpx.HTTPError:
            pass
        if not thread.is_alive() or time.monotonic() > deadline:
            live.stop()
            raise AssertionError(f"server did not answer {live.url}/healthz within 20 s")
        time.sleep(0.05)
