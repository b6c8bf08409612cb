"""Role x route matrix, generated from the OpenAPI schema: every route is called over real
HTTP as every role and anonymously, and each answer must match the declared permission in
server/auth/permissions.py (the table the server enforces): anonymous callers get 401 on
anything not public, roles outside a route's set get 403 naming the route, roles inside it
are never refused by role (they may get 404/409/422 for the made-up ids and empty bodies),
and nothing answers 5xx. A route missing from the table fails here, by name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.roles import Role
from server.auth.permissions import PERMISSIONS, Permission
from tests.live_server import LiveServer, start_server
from tests.security.support import empty_timeseries_store

pytestmark = pytest.mark.integration
PASSWORD = "matrix-Pass-2026!"
# One account per role; the demo has admin, maint, dorm-a, food; the others are made here.
ACCOUNTS: dict[Role, tuple[str, str]] = {
    Role.ADMIN: ("admin", "demo"),
    Role.MAINTENANCE: ("maint", "demo"),
    Role.DORM_MANAGER: ("dorm-a", "demo"),
    Role.FOOD_SAFETY: ("food", "demo"),
    Role.CANTEEN_MANAGER: ("canteen-mgr", PASSWORD),
    Role.SECURITY: ("guard", PASSWORD),
    Role.COUNSELLOR: ("counsellor", PASSWORD),
}
EXTRA = {
    Role.CANTEEN_MANAGER: ["canteen"],
    Role.SECURITY: [],
    Role.COUNSELLOR: ["dorm-a"],
}
PATH_VALUES = {
    "device_id": "canteen-fridge-01",
    "alert_id": "1",
    "wo_id": "1",
    "username": "maint",
    "ident": "1",
    "day": "2026-11-25",
    "meal": "lunch",
}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("matrix") / "server"
    empty_timeseries_store(data)
    server = start_server(data)
    admin = server.headers("admin")
    for role, (name, pw) in ACCOUNTS.items():
        if pw == PASSWORD:
            r = httpx.post(
                f"{server.url}/api/users",
                json={"username": name, "password": pw, "role": role, "buildings": EXTRA[role]},
                headers=admin,
                timeout=10,
            )
            assert r.status_code == 201, r.text
    yield server
    server.stop()


def operations(live: LiveServer) -> list[tuple[str, str]]:
    spec: dict[str, Any] = httpx.get(f"{live.url}/openapi.json", timeout=10).json()
    return sorted(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in METHODS
    )


def test_every_route_in_the_schema_has_a_declared_permission(live: LiveServer) -> None:
    ops = set(operations(live))
    missing = sorted(ops - set(PERMISSIONS))
    assert not missing, (
        f"routes without a declared permission (server/auth/permissions.py): {missing}"
    )
    stale = sorted(set(PERMISSIONS) - ops)
    assert not stale, f"declared permissions of routes that do not exist: {stale}"


class Caller:
    def __init__(self, live: LiveServer) -> None:
        self.live = live

    def headers(self, role: Role | None) -> dict[str, str]:
        if role is None:
            return {}
        name, pw = ACCOUNTS[role]
        return self.live.headers(name, pw)  # logs in once, then reuses the token

    def call(self, method: str, path: str, role: Role | None) -> tuple[int, str]:
        url = self.live.url + re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
        kwargs: dict[str, Any] = {"headers": self.headers(role), "timeout": 20}
        if method in ("POST", "PUT", "PATCH"):
            kwargs["json"] = {}
        with httpx.stream(method, url, **kwargs) as r:  # the event stream never ends
            body = "" if "event-stream" in r.headers.get("content-type", "") else r.read().decode()
            status = r.status_code
        if role is not None and path in ("/api/auth/logout", "/api/me/password"):
            self.live._tokens.pop(ACCOUNTS[role][0], None)  # that session may be over
        return status, body


def expectation(permission: Permission, role: Role | None) -> str:
    if permission.public:
        return "open"
    if role is None:
        return "401"
    return "open" if permission.allows(role) else "403"


def test_each_route_answers_each_role_as_declared(live: LiveServer) -> None:
    caller = Caller(live)
    wrong: list[str] = []
    checked = 0
    for method, path in operations(live):
        permission = PERMISSIONS[(method, path)]
        for role in [None, *Role]:
            status, body = caller.call(method, path, role)
            checked += 1
            who = role.value if role else "anonymous"
            expected = expectation(permission, role)
            denial = f"role {who} may not use {method} {path}"
            if status >= 500:
                wrong.append(f"{method} {path} as {who}: {status} {body[:200]}")
            elif expected == "401" and status != 401:
                wrong.append(f"{method} {path} as {who}: {status}, expected 401")
            elif expected == "403" and not (status == 403 and denial in body):
                wrong.append(f"{method} {path} as {who}: {status} {body[:120]}, expected 403")
            elif expected == "open" and (status == 401 or denial in body):
                wrong.append(f"{method} {path} as {who}: {status} {body[:120]}, expected allowed")
    assert checked >= 8 * 40
    assert not wrong, "\n".join(wrong)


def test_the_table_is_what_the_server_enforces(live: LiveServer) -> None:
    """The answers above come from the table itself: a route declared admin-only refuses a
    dorm manager with the table's message even where the route has no check of its own."""
    caller = Caller(live)
    status, body = caller.call("GET", "/api/dead-letters", Role.DORM_MANAGER)
    assert status == 403 and "may not use GET /api/dead-letters" in body
    status, body = caller.call("GET", "/api/dead-letters", Role.ADMIN)
    assert status == 200 and body.startswith("[")
