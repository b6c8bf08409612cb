"""The server on SQLite and on a real PostgreSQL: rules -> alerts -> work orders, the API's
logins and scopes. Batches go in through the uplink consumer's decode path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from core.clock import ManualClock
from core.mqtturl import parse_broker_url
from core.wire import encode_batch, encode_event, encode_reading
from server.app import create_app
from server.ingest.consumer import UplinkConsumer
from server.settings import ServerSettings
from tests.helpers import event, production_site, reading, token

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    clock = ManualClock(T0)
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path,
        database_url=db_url,
        broker="mqtt://127.0.0.1:1",
        site_file=production_site(tmp_path),
    )
    app = create_app(settings, clock=clock, consume=False)
    with TestClient(app) as client:
        yield client, app.state.ctx


def consumer(ctx: Any) -> UplinkConsumer:
    """The real consumer, never started: handle() is what it does with each message."""
    return UplinkConsumer(
        parse_broker_url("mqtt://127.0.0.1:1"),
        "test",
        ctx.pipeline,
        ctx.clock,
        5.0,
        CollectorRegistry(),
    )


def feed(ctx: Any, readings: list[Any], events: list[Any] | None = None) -> None:
    payload = encode_batch(
        "gw-canteen",
        1,
        1,
        [encode_reading(r) for r in readings],
        [encode_event(e) for e in events or []],
    )
    consumer(ctx).handle("facility/v1/gw/gw-canteen/data", payload)


def temps(device: str, start_min: int, values: list[float], step_min: int = 5) -> list[Any]:
    return [
        reading(
            device,
            "temperature",
            v,
            T0 + timedelta(minutes=start_min + i * step_min),
            seq=start_min + i,
        )
        for i, v in enumerate(values)
    ]


def test_every_api_route_needs_a_login(server: Any) -> None:
    client, _ = server
    for path in [
        "/api/devices",
        "/api/alerts",
        "/api/work-orders",
        "/api/me",
        "/api/devices/canteen-fridge-01/readings",
        "/api/stream",
    ]:
        assert client.get(path).status_code == 401, path
    assert client.post("/api/alerts/1/ack").status_code == 401
    assert client.get("/healthz").json() == {"status": "ok"}
    bad = client.post("/api/auth/token", data={"username": "admin", "password": "nope"})
    assert bad.status_code == 401


def test_fridge_excursion_opens_alert_and_work_order_then_clears(server: Any) -> None:
    client, ctx = server
    admin = token(client, "admin")
    # 35 min above 8 °C (critical after its 30 min delay), then back under 7 °C for 10 min.
    feed(ctx, temps("canteen-fridge-01", 0, [3.0, 9.0, 9.5, 10.0, 10.5, 11.0, 11.2, 11.0, 10.8]))
    alerts = client.get("/api/alerts?state=active", headers=admin).json()
    crit = [a for a in alerts if a["rule"] == "temp_high_critical"]
    assert len(crit) == 1 and crit[0]["device_id"] == "canteen-fridge-01"
    assert crit[0]["severity"] == "critical"
    assert crit[0]["raised_at"].startswith("2026-11-25T08:35")
    orders = client.get("/api/work-orders", headers=admin).json()
    assert len(orders) == 1  # warning and critical share one order, escalated to P1
    wo = orders[0]
    assert wo["source"] == "auto" and wo["category"] == "refrigeration"
    assert wo["priority"] == "P1"
    assert wo["alert_id"] in {a["id"] for a in alerts}
    assert wo["due_at"].startswith("2026-11-26T08:")  # warning opened it at 08:35 (+24 h)

    # Replaying the same readings changes nothing.
    feed(ctx, temps("canteen-fridge-01", 0, [3.0, 9.0, 9.5, 10.0, 10.5, 11.0, 11.2, 11.0, 10.8]))
    assert len(client.get("/api/alerts", headers=admin).json()) == len(alerts)

    feed(ctx, temps("canteen-fridge-01", 45, [6.5, 5.0, 4.5, 3.9, 3.5, 3.4]))
    by_rule = {a["rule"]: a for a in client.get("/api/alerts", headers=admin).json()}
    assert by_rule["temp_high_critical"]["state"] == "resolved"
    assert by_rule["temp_high_critical"]["peak"] == 11.2
    assert by_rule["temp_high_warning"]["state"] == "resolved"
    wo = client.get(f"/api/work-orders/{wo['id']}", headers=admin).json()
    assert wo["condition_cleared"] is True and wo["status"] == "open"  # a person closes it


def test_scopes_dorm_manager_sees_only_their_buildings(server: Any) -> None:
    client, ctx = server
    feed(
        ctx,
        [],
        [
            event("dorm-a-door-01", "door_forced", T0),
            event("dorm-b-door-02", "door_forced", T0 + timedelta(seconds=1)),
        ],
    )
    dorm_a = token(client, "dorm-a")
    seen = client.get("/api/alerts", headers=dorm_a).json()
    assert [a["device_id"] for a in seen] == ["dorm-a-door-01"]
    assert seen[0]["severity"] == "critical"
    devices = client.get("/api/devices", headers=dorm_a).json()
    in_dorm_a = {d.id for d in ctx.site.devices if d.building == "dorm-a"}
    assert {f"dorm-a-door-0{i}" for i in range(1, 5)} | {"meter-elec-02"} <= in_dorm_a
    assert {d["id"] for d in devices} == in_dorm_a
    other = client.get("/api/alerts", headers=token(client, "dorm-b")).json()
    assert client.get(f"/api/alerts/{other[0]['id']}", headers=dorm_a).status_code == 404
    assert client.get("/api/devices/dorm-b-door-02/readings", headers=dorm_a).status_code == 404
    food = client.get("/api/alerts", headers=token(client, "food")).json()
    assert food == []


def test_devices_list_shows_live_state(server: Any) -> None:
    client, ctx = server
    feed(
        ctx,
        [
            *temps("canteen-freezer-01", 0, [-19.0, -18.5]),
            reading(
                "canteen-freezer-01",
                "door_open",
                False,
                T0 + timedelta(minutes=5),
                seq=1,
                unit=None,
            ),
        ],
    )
    devices = {
        d["id"]: d for d in client.get("/api/devices", headers=token(client, "maint")).json()
    }
    assert len(devices) == len(ctx.site.devices)
    f = devices["canteen-freezer-01"]
    assert f["online"] is True and f["device_class"] == "freezer"
    assert f["values"]["temperature"]["value"] == -18.5
    assert f["values"]["door_open"]["value"] is False
    assert devices["meter-elec-01"]["status"] == "no_data_yet"
    assert devices["canteen-freezer-01"]["completeness_pct"] == 100.0


def test_work_order_lifecycle_and_public_report(server: Any) -> None:
    client, _ = server
    r = client.post(
        "/api/public/fault-reports",
        json={"location": "Dorm B, room 204", "description": "Tap drips all night"},
    )
    assert r.status_code == 201, r.text
    wo_id = r.json()["id"]
    assert (
        client.post(
            "/api/public/fault-reports", json={"location": "x", "description": "short"}
        ).status_code
        == 422
    )
    maint = token(client, "maint")
    admin = token(client, "admin")
    # Maintenance works on the order; the verification is not theirs (issue 11).
    steps = [
        ({"to": "assigned", "assignee": "maint"}, maint),
        ({"to": "in_progress"}, maint),
        ({"to": "resolved", "comment": "washer replaced"}, maint),
        ({"to": "verified", "satisfaction": 5}, admin),
    ]
    for step, who in steps:
        r = client.post(f"/api/work-orders/{wo_id}/transitions", json=step, headers=who)
        assert r.status_code == 200, r.text
    wo = r.json()
    assert wo["status"] == "verified" and wo["satisfaction"] == 5
    assert [h["to_status"] for h in wo["history"]] == [
        "open",
        "assigned",
        "in_progress",
        "resolved",
        "verified",
    ]
    again = client.post(
        f"/api/work-orders/{wo_id}/transitions", json={"to": "in_progress"}, headers=maint
    )
    assert again.status_code == 409 and "cannot go from verified" in again.json()["detail"]
    dorm = token(client, "dorm-a")
    assert (
        client.post(
            f"/api/work-orders/{wo_id}/transitions", json={"to": "reopened"}, headers=dorm
        ).status_code
        == 404
    )  # not their building's order


def test_bad_uplink_message_is_rejected_without_harm(server: Any) -> None:
    client, ctx = server
    c = consumer(ctx)
    c.handle("facility/v1/gw/gw-canteen/data", b"garbage")
    c.handle("facility/v1/gw/gw-canteen/data", orjson.dumps({"v": 2, "gw": "gw-canteen"}))
    c.handle("facility/v1/gw/gw-canteen/status", b'{"state": "sideways"}')
    assert c.wire_errors.labels("not_json")._value.get() == 1
    assert c.wire_errors.labels("wire_schema")._value.get() == 2
    admin = token(client, "admin")
    refused = client.get("/api/dead-letters", headers=admin).json()
    assert [d["reason"] for d in refused] == ["wire_schema", "wire_schema", "not_json"]
    feed(ctx, temps("canteen-fridge-02", 0, [3.3]))
    devices = client.get("/api/devices", headers=token(client, "admin")).json()
    assert next(d for d in devices if d["id"] == "canteen-fridge-02")["online"] is True


def test_public_report_with_a_photo_and_refused_photos(server: Any) -> None:
    import base64

    client, _ = server
    # A real 1x1 PNG (the smallest valid file), as a phone's browser would send it.
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    r = client.post(
        "/api/public/fault-reports",
        json={
            "location": "Dorm B, 3rd floor washroom",
            "description": "Tap leaking all night",
            "photo": "data:image/png;base64," + base64.b64encode(png).decode(),
        },
    )
    assert r.status_code == 201, r.text
    wo_id = r.json()["id"]
    got = client.get(f"/api/work-orders/{wo_id}/photo", headers=token(client, "maint"))
    assert got.status_code == 200 and got.content == png
    assert got.headers["content-type"] == "image/png"
    assert client.get(f"/api/work-orders/{wo_id}/photo").status_code == 401

    for photo, says in (
        (
            "data:image/png;base64," + base64.b64encode(b"MZ\x90\x00 not an image").decode(),
            "JPEG or PNG",
        ),
        ("data:image/png;base64,@@@", "base64"),
        ("http://example.com/x.png", "data URL"),
    ):
        r = client.post(
            "/api/public/fault-reports",
            json={"location": "Gym", "description": "Broken window pane", "photo": photo},
        )
        assert r.status_code == 422 and says in r.json()["detail"], r.text
