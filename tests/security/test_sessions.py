"""Sessions end when they should, over real HTTP (uvicorn): a disabled user's token and open
event stream, logout, a password change elsewhere; stream tickets are single-use,
short-lived and never written to the access log (issue 11)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.settings import ServerSettings
from tests.harness import free_port
from tests.helpers import wait_until
from tests.live_server import LiveServer, start_server

pytestmark = pytest.mark.integration


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "server")
    yield server
    server.stop()


def ticket(live: LiveServer, headers: dict[str, str]) -> str:
    r = httpx.post(f"{live.url}/api/stream/ticket", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    t: str = r.json()["ticket"]
    return t


class OpenStream:
    """An EventSource's connection, read on a thread: what arrived, and whether it ended."""

    def __init__(self, url: str) -> None:
        self.lines: list[str] = []
        self.status: int | None = None
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()

    def _read(self, url: str) -> None:
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(10, read=60)) as r:
                self.status = r.status_code
                for line in r.iter_lines():
                    self.lines.append(line)
        except httpx.HTTPError as exc:
            self.lines.append(f"error: {exc}")
        finally:
            self.ended.set()


def test_disabling_a_user_ends_their_token_and_open_stream(live: LiveServer) -> None:
    dorm = live.headers("dorm-a")
    stream = OpenStream(f"{live.url}/api/stream?ticket={ticket(live, dorm)}")
    wait_until(lambda: ": connected" in stream.lines, 10, "the stream to open")
    assert stream.status == 200
    r = httpx.patch(
        f"{live.url}/api/users/dorm-a", json={"active": False}, headers=live.headers("admin")
    )
    assert r.status_code == 200, r.text
    wait_until(stream.ended.is_set, 10, "the disabled user's stream to close")
    assert "event: session_ended" in stream.lines
    assert httpx.get(f"{live.url}/api/me", headers=dorm).status_code == 401
    again = httpx.post(
        f"{live.url}/api/auth/token", data={"username": "dorm-a", "password": "demo"}
    )
    assert again.status_code == 401
    assert live.ctx.auth.revocations.open_streams == 0


def test_logout_ends_the_session_and_its_stream(live: LiveServer) -> None:
    maint = live.headers("maint")
    stream = OpenStream(f"{live.url}/api/stream?ticket={ticket(live, maint)}")
    wait_until(lambda: ": connected" in stream.lines, 10, "the stream to open")
    assert httpx.post(f"{live.url}/api/auth/logout", headers=maint).status_code == 204
    wait_until(stream.ended.is_set, 10, "the stream to close at logout")
    assert httpx.get(f"{live.url}/api/me", headers=maint).status_code == 401
    assert httpx.post(f"{live.url}/api/stream/ticket", headers=maint).status_code == 401


def test_a_password_change_ends_the_other_sessions(live: LiveServer) -> None:
    login = {"username": "food", "password": "demo"}
    phone = {
        "Authorization": "Bearer "
        + httpx.post(f"{live.url}/api/auth/token", data=login).json()["access_token"]
    }
    desk = live.headers("food")
    stream = OpenStream(f"{live.url}/api/stream?ticket={ticket(live, phone)}")
    wait_until(lambda: ": connected" in stream.lines, 10, "the phone's stream to open")
    r = httpx.post(
        f"{live.url}/api/me/password",
        json={"current_password": "demo", "new_password": "Cold-Store-Log-88"},
        headers=desk,
    )
    assert r.status_code == 200, r.text
    wait_until(stream.ended.is_set, 10, "the phone's stream to close")
    for old in (phone, desk):
        assert httpx.get(f"{live.url}/api/me", headers=old).status_code == 401
    new = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert httpx.get(f"{live.url}/api/me", headers=new).status_code == 200


def test_a_ticket_is_single_use_and_a_token_is_not_a_ticket(live: LiveServer) -> None:
    headers = live.headers("admin")
    t = ticket(live, headers)
    first = OpenStream(f"{live.url}/api/stream?ticket={t}")
    wait_until(lambda: ": connected" in first.lines, 10, "the first use")
    second = OpenStream(f"{live.url}/api/stream?ticket={t}")
    wait_until(second.ended.is_set, 10, "the second use to be refused")
    assert second.status == 401
    bearer = headers["Authorization"].split()[1]
    for query in (f"access_token={bearer}", f"ticket={bearer}", "ticket=cfmt_made-up"):
        r = httpx.get(f"{live.url}/api/stream?{query}", timeout=10)
        assert r.status_code == 401, query


def test_an_old_ticket_is_refused(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path,
        broker="mqtt://127.0.0.1:1",
        stream_ticket_ttl=timedelta(0),  # expired as soon as it is issued
    )
    with TestClient(create_app(settings, consume=False)) as client:
        r = client.post("/api/auth/token", data={"username": "admin", "password": "demo"})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        t = client.post("/api/stream/ticket", headers=headers).json()["ticket"]
        assert client.get(f"/api/stream?ticket={t}").status_code == 401


def test_tickets_never_reach_the_access_log(tmp_path: Path) -> None:
    """Uvicorn writes each request line with its query string; the ticket is masked."""
    settings = ServerSettings(demo=True, data_dir=tmp_path, broker="mqtt://127.0.0.1:1")
    app = create_app(settings, consume=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True)
    )
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: server.started, 20, "uvicorn to start")
    keep = Keep()
    logging.getLogger("uvicorn.access").addHandler(keep)
    try:
        r = httpx.post(f"{url}/api/auth/token", data={"username": "admin", "password": "demo"})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        t = httpx.post(f"{url}/api/stream/ticket", headers=headers).json()["ticket"]
        with httpx.stream("GET", f"{url}/api/stream?ticket={t}", timeout=10) as s:
            assert s.status_code == 200
        httpx.get(f"{url}/api/stream?ticket={t}", timeout=10)  # refused, logged too
        wait_until(lambda: sum("/api/stream?" in line for line in lines) >= 2, 10, "log lines")
    finally:
        logging.getLogger("uvicorn.access").removeHandler(keep)
        server.should_exit = True
        thread.join(timeout=15)
    stream_lines = [line for line in lines if "/api/stream?" in line]
    assert len(stream_lines) == 2
    assert all("ticket=***" in line for line in stream_lines), stream_lines
    assert not any(t in line for line in lines)
