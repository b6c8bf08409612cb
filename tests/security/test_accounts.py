"""Accounts and logins (issue 11): `facility users` against a fresh database, the users API,
the password policy, throttling of guessed passwords, the cost of an unknown user, and the
demo's published secret key kept to loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from server.app import create_app
from server.settings import ServerSettings
from tests.helpers import token

pytestmark = pytest.mark.integration
SECRET = "k" * 48
GOOD = "Bright-Harbour-42"


def facility(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "facility.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parents[2],
    )


def metric(client: TestClient, name: str, labels: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"{name}{{{labels}}}"):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[TestClient]:
    settings = ServerSettings(demo=True, data_dir=tmp_path, broker="mqtt://127.0.0.1:1")
    with TestClient(create_app(settings, consume=False), client=("127.0.0.1", 40000)) as c:
        yield c


def test_first_admin_of_a_fresh_database_by_the_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'server.db'}"
    base = ["users", "--database", db]
    weak = facility(
        *base, "add", "root", "--role", "admin", "--password-stdin", stdin="password1\n"
    )
    assert weak.returncode == 2 and "password: must be at least 10" in weak.stderr
    common = facility(
        *base, "add", "root", "--role", "admin", "--password-stdin", stdin="qwertyuiop\n"
    )
    assert common.returncode == 2 and "most common passwords" in common.stderr
    ok = facility(*base, "add", "root", "--role", "admin", "--password-stdin", stdin=GOOD + "\n")
    assert ok.returncode == 0, ok.stderr
    no_building = facility(
        *base, "add", "warden", "--role", "dorm_manager", "--password-stdin", stdin=GOOD + "\n"
    )
    assert no_building.returncode == 2 and "buildings" in no_building.stderr
    unknown = facility(
        *base,
        "add",
        "warden",
        "--role",
        "dorm_manager",
        "--building",
        "dorm-z",
        "--password-stdin",
        stdin=GOOD + "\n",
    )
    assert unknown.returncode == 2 and "unknown building 'dorm-z'" in unknown.stderr
    warden = facility(
        *base,
        "add",
        "warden",
        "--role",
        "dorm_manager",
        "--building",
        "dorm-a",
        "--password-stdin",
        stdin="Quiet-Meadow-77\n",
    )
    assert warden.returncode == 0, warden.stderr
    listed = facility(*base, "list")
    assert listed.returncode == 0
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows == [
        ["root", "admin", "-", "active"],
        ["warden", "dorm_manager", "dorm-a", "active"],
    ]

    # The server (production settings, own key) takes the accounts the command made.
    settings = ServerSettings(
        database_url=db, secret_key=SECRET, data_dir=tmp_path, broker="mqtt://127.0.0.1:1"
    )
    with TestClient(create_app(settings, consume=False)) as client:
        r = client.post("/api/auth/token", data={"username": "admin", "password": "demo"})
        assert r.status_code == 401
        headers = token(client, "warden", "Quiet-Meadow-77")
        assert client.get("/api/me", headers=headers).json()["buildings"] == ["dorm-a"]
        off = facility(*base, "disable", "warden")
        assert off.returncode == 0 and "1 session(s) ended" in off.stdout
        assert client.get("/api/me", headers=headers).status_code == 401
        reset = facility(*base, "set-password", "root", "--password-stdin", stdin="Tall-Cedar-19\n")
        assert reset.returncode == 0
        token(client, "root", "Tall-Cedar-19")


def test_users_api_creates_changes_and_protects_the_last_admin(demo: TestClient) -> None:
    admin = token(demo, "admin")
    r = demo.post(
        "/api/users",
        json={
            "username": "cook",
            "password": "qwertyuiop",
            "role": "canteen_manager",
            "buildings": ["canteen"],
        },
        headers=admin,
    )
    assert r.status_code == 422 and "password" in r.json()["detail"]
    r = demo.post(
        "/api/users",
        json={
            "username": "cook",
            "password": GOOD,
            "role": "canteen_manager",
            "buildings": ["canteen"],
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert demo.post(
        "/api/users", json={**r.json(), "password": GOOD}, headers=admin
    ).status_code in (
        409,
        422,
    )
    r = demo.patch(
        "/api/users/cook", json={"role": "dorm_manager", "buildings": ["dorm-b"]}, headers=admin
    )
    assert r.status_code == 200 and r.json()["role"] == "dorm_manager"
    # The last active admin cannot take themselves out.
    r = demo.patch("/api/users/admin", json={"active": False}, headers=admin)
    assert r.status_code == 409 and "last active admin" in r.json()["detail"]
    r = demo.patch("/api/users/admin", json={"role": "maintenance"}, headers=admin)
    assert r.status_code == 409
    assert demo.get("/api/me", headers=admin).json()["role"] == "admin"


def test_thirty_wrong_passwords_are_throttled_with_retry_after(demo: TestClient) -> None:
    answers = [
        demo.post("/api/auth/token", data={"username": "maint", "password": f"guess-{i}"})
        for i in range(30)
    ]
    codes = [a.status_code for a in answers]
    assert codes[:5] == [401] * 5  # five free tries, then back-off
    assert set(codes[5:]) == {429}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers[5:])
    # The right password waits out the back-off too: a guesser cannot tell it was right.
    right = demo.post("/api/auth/token", data={"username": "maint", "password": "demo"})
    assert right.status_code == 429
    assert metric(demo, "server_login_failures_total", 'reason="wrong_password"') == 5
    assert metric(demo, "server_login_failures_total", 'reason="throttled"') == 26
    # Other accounts are not locked by it (per account), until the address's budget is spent.
    assert (
        demo.post("/api/auth/token", data={"username": "food", "password": "demo"}).status_code
        == 200
    )


def test_a_password_spray_from_one_address_is_throttled(demo: TestClient) -> None:
    codes = [
        demo.post(
            "/api/auth/token", data={"username": f"user{i}", "password": "Summer2026!"}
        ).status_code
        for i in range(30)
    ]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
    assert metric(demo, "server_login_failures_total", 'reason="unknown_user"') == 20


def test_an_unknown_user_costs_one_hash_like_a_wrong_password(demo: TestClient) -> None:
    before = metric(demo, "server_password_hashes_total", 'op="verify"')
    demo.post("/api/auth/token", data={"username": "nobody-here", "password": "x" * 12})
    after_unknown = metric(demo, "server_password_hashes_total", 'op="verify"')
    demo.post("/api/auth/token", data={"username": "dorm-b", "password": "x" * 12})
    after_wrong = metric(demo, "server_password_hashes_total", 'op="verify"')
    assert after_unknown - before == 1 and after_wrong - after_unknown == 1


def test_password_change_needs_the_current_one_and_meets_the_policy(demo: TestClient) -> None:
    me = token(demo, "dorm-b")
    wrong = demo.post(
        "/api/me/password",
        json={"current_password": "nope-nope", "new_password": GOOD},
        headers=me,
    )
    assert wrong.status_code == 403
    weak = demo.post(
        "/api/me/password",
        json={"current_password": "demo", "new_password": "dorm-b-1234"},
        headers=me,
    )
    assert weak.status_code == 422 and "user name" in weak.json()["detail"]
    ok = demo.post(
        "/api/me/password", json={"current_password": "demo", "new_password": GOOD}, headers=me
    )
    assert ok.status_code == 200
    assert demo.get("/api/me", headers=me).status_code == 401  # the old session ended
    fresh = {"Authorization": f"Bearer {ok.json()['access_token']}"}
    assert demo.get("/api/me", headers=fresh).json()["username"] == "dorm-b"


def test_the_demo_key_is_refused_off_loopback(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="loopback"):
        ServerSettings(demo=True, host="0.0.0.0")
    with pytest.raises(ValidationError, match="SECRET_KEY must be set"):
        ServerSettings(demo=False)
    ServerSettings(demo=True, host="::1")
    ServerSettings(host="0.0.0.0", secret_key=SECRET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACILITY_SERVER_")}
    env |= {"FACILITY_SERVER_DEMO": "true", "FACILITY_SERVER_DATA_DIR": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "facility.cli", "server", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 2 and "loopback" in r.stderr
