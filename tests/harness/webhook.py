"""A real HTTP server on a loopback port collecting the JSON posted to it, and where: the
receiving end of Apprise's json:// channels (a group robot, an ops webhook)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.harness.process import LOOPBACK


class Webhook:
    def __init__(self, port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(json.loads(body))
                outer.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def by_path(self) -> dict[str, list[str]]:
        """Titles received per request path, in arrival order."""
        out: dict[str, list[str]] = {}
        for path, body in zip(self.paths, self.received, strict=True):
            out.setdefault(path, []).append(str(body.get("title", "")))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
