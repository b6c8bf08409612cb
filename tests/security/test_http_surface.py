"""The HTTP surface (issue 11): security headers and a CSP the pages keep, a body cap on
every route, bounded paging with scope applied before the page is cut, scope on every
write, verification only from the requester's side, bounded maintenance windows, the client
address, /docs and /metrics settings, error bodies without internals, photo retention."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.clock import ManualClock
from server.app import create_app
from server.events.types import MaintenanceWindowChanged
from server.retention import Housekeeping
from server.settings import ServerSettings
from tests.helpers import batch, event, token

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def make(tmp: Path, clock: ManualClock | None = None, **settings: Any) -> TestClient:
    s = ServerSettings(demo=True, data_dir=tmp / "server", broker="mqtt://127.0.0.1:1", **settings)
    return TestClient(create_app(s, clock=clock, consume=False), client=("127.0.0.1", 40000))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def client(tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    with make(tmp_path, clock) as c:
        yield c


def ctx_of(client: TestClient) -> Any:
    return client.app.state.ctx  # type: ignore[attr-defined]


def forced_door(client: TestClient, device: str, at: datetime) -> None:
    """A forced door raises an alert at once (a real rule, through the real pipeline)."""
    ctx_of(client).pipeline.handle_batch(batch([], [event(device, "door_forced", at)]))


# -- headers ----------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    admin = token(client, "admin")
    answers = [
        client.get("/"),
        client.get("/app"),
        client.get("/api/devices", headers=admin),
        client.get("/api/devices"),  # 401
        client.get("/api/devices/nope", headers=admin),  # 404
        client.post("/api/users", content=b"x" * 100_000, headers=admin),  # 413
    ]
    for r in answers:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, r.url
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    assert answers[2].headers["cache-control"] == "no-store"


def test_pages_hold_the_csp_no_inline_script_or_handler(client: TestClient) -> None:
    for page in ("/", "/app", "/receipt"):
        r = client.get(page)
        assert r.status_code == 200, page
        html = r.text
        inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert not inline, f"{page}: inline <script> blocked by the CSP: {inline}"
        handlers = re.findall(r"\son[a-z]+\s*=", html)
        assert not handlers, f"{page}: inline event handlers blocked by the CSP: {handlers}"
        assert not re.search(r"<style[\s>]", html), f"{page}: inline <style>"


# -- bodies and paging --------------------------------------------------------------------------


def test_every_route_refuses_a_body_over_its_cap(client: TestClient) -> None:
    admin = token(client, "admin")
    spec = client.get("/openapi.json").json()
    checked = 0
    for path, item in spec["paths"].items():
        for method in ("post", "put", "patch", "delete"):
            if method not in item:
                continue
            url = re.sub(r"\{\w+\}", "1", path)
            big = b'{"x": "' + b"a" * 70_000 + b'"}'
            if "fault-reports" in path or "resolution-photo" in path:
                big = b'{"x": "' + b"a" * 3_300_000 + b'"}'  # the photo routes' larger cap
            for headers in (admin, {}):
                r = client.request(
                    method.upper(),
                    url,
                    content=big,
                    headers={**headers, "Content-Type": "application/json"},
                )
                assert r.status_code == 413, f"{method.upper()} {path}: {r.status_code}"
                checked += 1
    assert checked >= 40


@pytest.mark.parametrize("query", ["limit=-1", "limit=0", "limit=100000", "offset=-1"])
def test_paging_is_bounded_on_every_list(client: TestClient, query: str) -> None:
    admin = token(client, "admin")
    spec = client.get("/openapi.json").json()
    lists = [
        path
        for path, item in spec["paths"].items()
        if "get" in item
        and {"limit", "offset"} <= {p["name"] for p in item["get"].get("parameters", [])}
    ]
    assert {"/api/alerts", "/api/work-orders", "/api/users", "/api/dead-letters"} <= set(lists)
    for path in lists:
        url = re.sub(r"\{\w+\}", "canteen-fridge-01", path)
        r = client.get(f"{url}?{query}", headers=admin)
        assert r.status_code == 422, f"{path}?{query}: {r.status_code}"


def test_scope_is_applied_before_the_page_is_cut(client: TestClient, clock: ManualClock) -> None:
    for i in range(3):
        forced_door(client, f"dorm-a-door-0{i + 1}", T0 + timedelta(minutes=i))
    for i in range(4):  # newer, and not dorm-a's
        forced_door(client, f"dorm-b-door-0{i + 1}", T0 + timedelta(minutes=10 + i))
    dorm_a = token(client, "dorm-a")
    page = client.get("/api/alerts?limit=2", headers=dorm_a).json()
    assert [a["device_id"] for a in page] == ["dorm-a-door-03", "dorm-a-door-02"]
    rest = client.get("/api/alerts?limit=2&offset=2", headers=dorm_a).json()
    assert [a["device_id"] for a in rest] == ["dorm-a-door-01"]
    assert len(client.get("/api/alerts?limit=2", headers=token(client, "admin")).json()) == 2


# -- scope on writes --------------------------------------------------------------------------


def test_a_dorm_manager_cannot_write_outside_their_buildings(client: TestClient) -> None:
    forced_door(client, "dorm-b-door-01", T0)
    forced_door(client, "dorm-a-door-01", T0)
    admin, dorm_a = token(client, "admin"), token(client, "dorm-a")
    alerts = {a["device_id"]: a["id"] for a in client.get("/api/alerts", headers=admin).json()}
    b_alert, a_alert = alerts["dorm-b-door-01"], alerts["dorm-a-door-01"]
    order = {"title": "Door closer broken", "category": "security_equipment", "location": "hall"}
    # A work order in another building, by building or by device; or with no building.
    r = client.post("/api/work-orders", json={**order, "building": "dorm-b"}, headers=dorm_a)
    assert r.status_code == 403
    r = client.post(
        "/api/work-orders", json={**order, "device_id": "dorm-b-door-02"}, headers=dorm_a
    )
    assert r.status_code == 422
    assert client.post("/api/work-orders", json=order, headers=dorm_a).status_code == 422
    # Acknowledging, assigning, resolving another building's alert: it does not exist for them.
    for action, body in (("ack", {}), ("assign", {"assignee": "maint"}), ("resolve", {})):
        r = client.post(f"/api/alerts/{b_alert}/{action}", json=body, headers=dorm_a)
        assert r.status_code == 404, action
    # Handing their own alert to someone who cannot see it.
    r = client.post(f"/api/alerts/{a_alert}/assign", json={"assignee": "dorm-b"}, headers=dorm_a)
    assert r.status_code == 422 and "not responsible" in r.json()["detail"]
    # Maintenance declared on another building's door.
    until = (T0 + timedelta(hours=2)).isoformat()
    r = client.post(
        "/api/devices/dorm-b-door-01/maintenance", json={"until": until}, headers=dorm_a
    )
    assert r.status_code == 404
    # ... while inside their building all of it works.
    r = client.post("/api/work-orders", json={**order, "building": "dorm-a"}, headers=dorm_a)
    assert r.status_code == 201, r.text
    r = client.post(
        "/api/devices/dorm-a-door-01/maintenance", json={"until": until}, headers=dorm_a
    )
    assert r.status_code == 200, r.text
    assert client.post(f"/api/alerts/{a_alert}/ack", json={}, headers=dorm_a).status_code == 200


def resolved_order(client: TestClient, by: str, building: str = "dorm-a") -> int:
    who = token(client, by)
    r = client.post(
        "/api/work-orders",
        json={
            "title": "Lamp broken",
            "category": "electrical",
            "location": "corridor",
            "building": building,
        },
        headers=token(client, "admin"),
    )
    wo = r.json()["id"]
    for step in ({"to": "assigned", "assignee": by}, {"to": "resolved", "comment": "done"}):
        r = client.post(f"/api/work-orders/{wo}/transitions", json=step, headers=who)
        assert r.status_code == 200, r.text
    return int(wo)


def test_a_resolver_cannot_verify_their_own_order(client: TestClient) -> None:
    verify = {"to": "verified", "satisfaction": 5}
    wo = resolved_order(client, "maint")
    maint = token(client, "maint")
    r = client.post(f"/api/work-orders/{wo}/transitions", json=verify, headers=maint)
    assert r.status_code == 403
    assert "verified" not in client.get(f"/api/work-orders/{wo}", headers=maint).json()["next"]
    # Not even an admin who resolved it.
    wo2 = resolved_order(client, "admin")
    r = client.post(
        f"/api/work-orders/{wo2}/transitions", json=verify, headers=token(client, "admin")
    )
    assert r.status_code == 403
    # Another building's manager cannot; this building's can, with the rating.
    dorm_b = token(client, "dorm-b")
    assert (
        client.post(f"/api/work-orders/{wo}/transitions", json=verify, headers=dorm_b).status_code
        == 404
    )
    dorm_a = token(client, "dorm-a")
    assert client.get(f"/api/work-orders/{wo}", headers=dorm_a).json()["next"] == [
        "reopened",
        "verified",
    ]
    r = client.post(f"/api/work-orders/{wo}/transitions", json=verify, headers=dorm_a)
    assert r.status_code == 200 and r.json()["satisfaction"] == 5


def test_the_public_reporter_verifies_through_the_receipt(client: TestClient) -> None:
    r = client.post(
        "/api/public/fault-reports",
        json={"location": "Library, 2nd floor", "description": "Window will not close"},
    )
    assert r.status_code == 201
    wo, receipt = r.json()["id"], r.json()["receipt_token"]
    maint = token(client, "maint")
    for step in ({"to": "assigned", "assignee": "maint"}, {"to": "resolved"}):
        client.post(f"/api/work-orders/{wo}/transitions", json=step, headers=maint)
    forged = f"{wo}.{'0' * 32}"
    r = client.post(
        "/api/public/receipt/confirm", json={"token": forged, "fixed": True, "satisfaction": 1}
    )
    assert r.status_code == 404
    r = client.post(
        "/api/public/receipt/confirm", json={"token": receipt, "fixed": True, "satisfaction": 4}
    )
    assert r.status_code == 200 and r.json()["status"] == "verified"
    got = client.get(f"/api/work-orders/{wo}", headers=token(client, "admin")).json()
    assert got["satisfaction"] == 4 and got["history"][-1]["actor"] == "reporter"


# -- maintenance windows ------------------------------------------------------------------------


def test_maintenance_windows_are_bounded_visible_and_ended_by_anyone_in_scope(
    client: TestClient, clock: ManualClock
) -> None:
    seen: list[MaintenanceWindowChanged] = []
    ctx_of(client).bus.subscribe(MaintenanceWindowChanged, seen.append)
    maint, dorm_a, food = token(client, "maint"), token(client, "dorm-a"), token(client, "food")
    url = "/api/devices/dorm-a-door-02/maintenance"
    too_long = (T0 + timedelta(hours=73)).isoformat()
    r = client.post(url, json={"until": too_long}, headers=maint)
    assert r.status_code == 422 and "at most 72 h" in r.json()["detail"]
    r = client.post(
        url, json={"until": (T0 + timedelta(hours=8)).isoformat(), "comment": "lock"}, headers=maint
    )
    assert r.status_code == 200
    device = client.get("/api/devices/dorm-a-door-02", headers=dorm_a).json()
    assert device["maintenance"]["by"] == "maint" and device["maintenance"]["comment"] == "lock"
    # The food-safety officer does not see doors; the dorm's manager ends it early.
    assert client.delete(url, headers=food).status_code == 404
    clock.advance(timedelta(minutes=30))
    assert client.delete(url, headers=dorm_a).status_code == 200
    assert client.get("/api/devices/dorm-a-door-02", headers=dorm_a).json()["maintenance"] is None
    history = client.get(url, headers=dorm_a).json()
    assert len(history) == 1
    assert history[0]["declared_by"] == "maint" and history[0]["ended_by"] == "dorm-a"
    assert [(e.action, e.actor) for e in seen] == [("declared", "maint"), ("ended", "dorm-a")]


# -- addresses, docs, metrics, errors ---------------------------------------------------------


def report(c: TestClient, forwarded_for: str) -> int:
    r = c.post(
        "/api/public/fault-reports",
        json={"location": "Gym", "description": "Light flickers"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return int(r.status_code)


def test_forwarded_for_counts_only_from_a_configured_proxy(tmp_path: Path) -> None:
    # No proxy configured: the header is the client's own claim and changes nothing.
    with make(tmp_path / "a", public_untokened_reports_per_hour=2) as c:
        codes = [report(c, f"10.0.0.{i}") for i in range(3)]
        assert codes == [201, 201, 429]
    # Behind a configured proxy: each client its own budget; a spoofed left part is ignored.
    with make(
        tmp_path / "b", public_untokened_reports_per_hour=2, trusted_proxies=["127.0.0.0/8"]
    ) as c:
        assert [report(c, "203.0.113.7") for _ in range(3)] == [201, 201, 429]
        assert report(c, "203.0.113.8") == 201
        assert report(c, "198.51.100.1, 203.0.113.7") == 429  # the proxy saw 203.0.113.7


def test_docs_and_metrics_follow_their_settings(tmp_path: Path) -> None:
    with make(tmp_path / "a", api_docs=False, metrics="off") as c:
        assert c.get("/docs").status_code == 404
        assert c.get("/openapi.json").status_code == 404
        assert c.get("/metrics").status_code == 404
    with make(tmp_path / "b", metrics_token="scrape-token-0123456789") as c:
        docs = c.get("/docs")
        assert docs.status_code == 200
        assert "unsafe-inline" not in docs.headers["content-security-policy"]
        assert c.get("/metrics").status_code == 200  # loopback
        # Through a local reverse proxy that is not configured as trusted: not local.
        assert c.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 403
    s = ServerSettings(
        demo=True, data_dir=tmp_path / "c", broker="mqtt://127.0.0.1:1", metrics_token="t" * 24
    )
    with TestClient(create_app(s, consume=False), client=("192.0.2.10", 40000)) as c:
        assert c.get("/metrics").status_code == 403
        assert c.get("/metrics", headers={"Authorization": "Bearer " + "t" * 24}).status_code == 200


def test_error_bodies_carry_no_urls_or_passwords(tmp_path: Path) -> None:
    secret = "hunter2-sekrit"
    with make(
        tmp_path,
        tsdb_url=f"postgresql+psycopg://facility:{secret}@127.0.0.1:1/facility_ts",
    ) as c:
        r = c.get("/api/devices/canteen-fridge-01/readings", headers=token(c, "admin"))
        assert r.status_code == 503
        assert secret not in r.text and "127.0.0.1" not in r.text and "postgresql" not in r.text
    for bad in (f"http://u:{secret}@broker:1883", f"mqtt://u:{secret}@broker:notaport"):
        with pytest.raises(Exception) as err:
            ServerSettings(demo=True, broker=bad)
        assert secret not in str(err.value)


def test_photos_expire_with_their_orders_retention(client: TestClient, clock: ManualClock) -> None:
    data = "data:image/png;base64," + base64.b64encode(PNG).decode()
    r = client.post(
        "/api/public/fault-reports",
        json={
            "location": "Dorm A 101",
            "description": "Broken tile",
            "photo": data,
            "contact": "x@y",
        },
    )
    wo, receipt = r.json()["id"], r.json()["receipt_token"]
    admin = token(client, "admin")
    assert client.get(f"/api/work-orders/{wo}/photo", headers=admin).status_code == 200
    maint = token(client, "maint")
    for step in ({"to": "assigned", "assignee": "maint"}, {"to": "resolved"}):
        client.post(f"/api/work-orders/{wo}/transitions", json=step, headers=maint)
    client.post(
        "/api/public/receipt/confirm", json={"token": receipt, "fixed": True, "satisfaction": 5}
    )
    ctx = ctx_of(client)
    keeper = Housekeeping(ctx.sessions, ctx.settings.data_dir, clock, timedelta(days=180))
    clock.advance(timedelta(days=179))
    keeper.run_once()
    assert client.get(f"/api/work-orders/{wo}/photo", headers=admin).status_code == 200
    clock.advance(timedelta(days=2))
    keeper.run_once()
    assert client.get(f"/api/work-orders/{wo}/photo", headers=admin).status_code == 404
    assert client.get(f"/api/work-orders/{wo}", headers=admin).json()["contact"] is None
    assert not list((ctx.settings.data_dir / "photos").glob(f"wo-{wo}.*"))
