"""Issue 5 acceptance at the server: door alerts by scope (API and stream), forced doors at
once, a silent fridge's alerts stay open, night leaks, nuisance orders, suppression, KPIs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from core.clock import ManualClock
from server.app import create_app
from server.settings import ServerSettings
from tests.helpers import batch, event, production_site, reading, token
from tests.live_server import start_server

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 24, 20, 0, tzinfo=TZ).astimezone(UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def make_server(tmp_path: Path, clock: ManualClock, site: Path | None = None) -> TestClient:
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path,
        broker="mqtt://127.0.0.1:1",
        site_file=site or production_site(tmp_path),
    )
    return TestClient(create_app(settings, clock=clock, consume=False))


@pytest.fixture
def server(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[TestClient, Any]]:
    with make_server(tmp_path, clock) as client:
        yield client, client.app.state.ctx  # type: ignore[attr-defined]


def alerts_of(client: TestClient, user: str, **params: str) -> list[dict[str, Any]]:
    r = client.get("/api/alerts", params=params, headers=token(client, user))
    assert r.status_code == 200
    result: list[dict[str, Any]] = r.json()
    return result


def test_door_forced_is_critical_at_once_and_held_open_is_scoped(server: Any) -> None:
    client, ctx = server
    ctx.pipeline.handle_batch(
        batch(
            [],
            [
                event("dorm-a-door-01", "door_held_open", T0),
                event("dorm-b-door-03", "door_forced", T0),
            ],
        )
    )
    mine = alerts_of(client, "dorm-a", state="active")
    assert [(a["device_id"], a["rule"], a["severity"]) for a in mine] == [
        ("dorm-a-door-01", "door_held_open", "warning")
    ]
    theirs = alerts_of(client, "dorm-b", state="active")
    assert [(a["device_id"], a["severity"]) for a in theirs] == [("dorm-b-door-03", "critical")]
    assert theirs[0]["raised_at"] == T0.isoformat().replace("+00:00", "Z")
    # The controller reports the door closed: the held-open alert ends by itself.
    ctx.pipeline.handle_batch(
        batch([], [event("dorm-a-door-01", "door_closed", T0 + timedelta(minutes=2))])
    )
    assert alerts_of(client, "dorm-a", state="active") == []
    assert alerts_of(client, "dorm-b", state="active")  # forced stays until a person acts


def test_stream_carries_only_the_viewers_buildings(tmp_path: Path) -> None:
    live = start_server(tmp_path)
    got: dict[str, list[dict[str, Any]]] = {"dorm-a": [], "dorm-b": []}
    ready = threading.Barrier(3)

    def listen(user: str) -> None:
        # As the browser opens it: a single-use ticket in the URL, never the token (issue 11).
        ticket = httpx.post(
            f"{live.url}/api/stream/ticket", headers=live.headers(user), timeout=10
        ).json()["ticket"]
        with httpx.stream("GET", f"{live.url}/api/stream?ticket={ticket}", timeout=20) as r:
            lines = r.iter_lines()
            next(lines)  # ": connected"
            ready.wait()
            kind = None
            for line in lines:
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "alert":
                    got[user].append(orjson.loads(line[6:]))
                    return

    threads = [threading.Thread(target=listen, args=(u,), daemon=True) for u in got]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=10)
        now = datetime.now(UTC)
        live.ctx.pipeline.handle_batch(
            batch(
                [],
                [
                    event("dorm-a-door-02", "door_held_open", now),
                    event("dorm-b-door-02", "door_forced", now),
                ],
            )
        )
        for t in threads:
            t.join(timeout=10)
        assert [a["device_id"] for a in got["dorm-a"]] == ["dorm-a-door-02"]
        assert [a["device_id"] for a in got["dorm-b"]] == ["dorm-b-door-02"]
    finally:
        live.stop()


def test_silent_fridge_gets_an_offline_alert_and_keeps_its_temperature_alert(
    server: Any, clock: ManualClock
) -> None:
    client, ctx = server
    fridge = "canteen-fridge-02"
    for minute in range(0, 40, 5):  # 9 °C for 35 min: critical after its 30 min delay
        at = T0 + timedelta(minutes=minute)
        clock.set(at)
        ctx.pipeline.handle_batch(batch([reading(fridge, "temperature", 9.0, at, seq=minute)]))
    assert {a["rule"] for a in alerts_of(client, "food", state="active")} == {
        "temp_high_warning",
        "temp_high_critical",
    }
    last = T0 + timedelta(minutes=35)
    clock.set(last + timedelta(minutes=29))
    ctx.pipeline.tick(clock.now())
    assert "sensor_offline" not in {a["rule"] for a in alerts_of(client, "food")}
    clock.set(last + timedelta(minutes=31))
    ctx.pipeline.tick(clock.now())
    active = {a["rule"]: a for a in alerts_of(client, "food", state="active")}
    assert set(active) == {"temp_high_warning", "temp_high_critical", "sensor_offline"}
    assert active["temp_high_critical"]["condition_unknown"] is True
    devices = client.get("/api/devices", headers=token(client, "food")).json()
    assert next(d for d in devices if d["id"] == fridge)["status"] == "offline"
    # Hours later, still silent: nothing resolves by itself.
    clock.set(last + timedelta(hours=6))
    ctx.pipeline.tick(clock.now())
    assert len(alerts_of(client, "food", state="active")) == 3
    # Data again: offline clears; the temperature alert waits for real clear readings.
    back = last + timedelta(hours=6, minutes=1)
    ctx.pipeline.handle_batch(batch([reading(fridge, "temperature", 9.1, back, seq=99)]))
    active = {a["rule"]: a for a in alerts_of(client, "food", state="active")}
    assert set(active) == {"temp_high_warning", "temp_high_critical"}
    assert active["temp_high_critical"]["condition_unknown"] is False


def water(at: datetime, volume: float, seq: int) -> Any:
    return reading("meter-water-01", "volume", volume, at, seq=seq, unit="m³")


def recorded_night(day: datetime, start: float, dry_hour: int | None) -> list[Any]:
    """Cumulative volume every 15 min, 22:00 to 08:00 local; optionally one dry hour."""
    out, volume = [], start
    t = day.astimezone(TZ).replace(hour=22, minute=0)
    end = t + timedelta(hours=10)
    seq = 0
    while t <= end:
        if t.hour != dry_hour:
            volume += 0.012
        out.append(water(t.astimezone(UTC), round(volume, 4), seq))
        t += timedelta(minutes=15)
        seq += 1
    return out


@pytest.mark.parametrize(("dry_hour", "orders"), [(None, 1), (3, 0)])
def test_night_leak_opens_one_plumbing_order(
    server: Any, dry_hour: int | None, orders: int
) -> None:
    client, ctx = server
    for r in recorded_night(T0, 500.0, dry_hour):  # live, one reading at a time
        ctx.pipeline.handle_batch(batch([r]))
    wos = [
        w
        for w in client.get("/api/work-orders", headers=token(client, "maint")).json()
        if w["device_id"] == "meter-water-01"
    ]
    assert len(wos) == orders
    if orders:
        assert wos[0]["category"] == "plumbing" and wos[0]["priority"] == "P3"
        local_open = datetime.fromisoformat(wos[0]["created_at"]).astimezone(TZ)
        assert (local_open.hour, local_open.minute) == (7, 0)


def test_repeated_door_alarms_open_one_maintenance_order(server: Any) -> None:
    client, ctx = server
    door = "dorm-b-door-01"
    for day in range(4):
        at = T0 + timedelta(days=day)
        ctx.pipeline.handle_batch(
            batch(
                [],
                [
                    event(door, "door_held_open", at),
                    event(door, "door_closed", at + timedelta(minutes=1)),
                ],
            )
        )
    wos = [
        w
        for w in client.get("/api/work-orders", headers=token(client, "maint")).json()
        if w["device_id"] == door
    ]
    assert len(wos) == 1
    assert wos[0]["category"] == "access_control" and "repeated" in wos[0]["title"]


def test_declared_maintenance_suppresses_alerts(server: Any, clock: ManualClock) -> None:
    client, ctx = server
    maint = token(client, "maint")
    until = (T0 + timedelta(hours=1)).isoformat()
    r = client.post(
        "/api/devices/dorm-a-door-04/maintenance",
        json={"until": until, "comment": "replacing the lock"},
        headers=maint,
    )
    assert r.status_code == 200, r.text
    # Another building's manager may not (issue 11: scope on every write); theirs may.
    assert (
        client.post(
            "/api/devices/dorm-a-door-04/maintenance",
            json={"until": until},
            headers=token(client, "dorm-b"),
        ).status_code
        == 404
    )
    ctx.pipeline.handle_batch(
        batch([], [event("dorm-a-door-04", "door_forced", T0 + timedelta(minutes=10))])
    )
    assert alerts_of(client, "maint") == []
    ctx.pipeline.handle_batch(
        batch([], [event("dorm-a-door-04", "door_forced", T0 + timedelta(hours=2))])
    )
    assert [a["rule"] for a in alerts_of(client, "maint")] == ["door_forced"]


def test_closed_canteen_does_not_page_for_a_switched_off_fridge(
    tmp_path: Path, clock: ManualClock
) -> None:
    site = production_site(tmp_path)
    doc = yaml.safe_load(site.read_text())
    day = T0.astimezone(TZ).date()
    doc.setdefault("calendar", {})["closures"] = [
        {
            "name": "Winter holidays",
            "start": day.isoformat(),
            "end": (day + timedelta(days=20)).isoformat(),
            "buildings": ["canteen"],
        }
    ]
    site.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with make_server(tmp_path, clock, site) as client:
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        for minute in range(0, 60, 5):
            at = T0 + timedelta(minutes=minute)
            ctx.pipeline.handle_batch(
                batch([reading("canteen-fridge-04", "temperature", 18.0, at, seq=minute)])
            )
        ctx.pipeline.handle_batch(batch([], [event("dorm-a-door-01", "door_forced", T0)]))
        assert [a["device_id"] for a in alerts_of(client, "admin")] == ["dorm-a-door-01"]


def test_work_order_kpis_follow_their_definitions(server: Any, clock: ManualClock) -> None:
    client, _ = server
    maint = token(client, "maint")
    plan = [  # (opened after T0, accepted after open, resolved after open, reopened?, rating)
        (timedelta(0), timedelta(minutes=30), timedelta(hours=5), False, 5),
        (timedelta(hours=1), timedelta(hours=3), timedelta(days=4), False, 3),  # late
        (timedelta(hours=2), timedelta(minutes=10), timedelta(hours=1), True, 4),  # reworked
    ]
    ids = []
    for opened, *_ in plan:
        clock.set(T0 + opened)
        r = client.post(
            "/api/work-orders",
            headers=maint,
            json={
                "title": "Lamp broken",
                "category": "electrical",
                "priority": "P3",
                "location": "Dorm A corridor",
                "building": "dorm-a",
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])

    dorm_a = token(client, "dorm-a")

    def move(wo: int, at: datetime, **body: Any) -> None:
        # Maintenance works on the order; the dorm's manager checks it (issue 11).
        who = dorm_a if body["to"] in ("verified", "reopened") else maint
        clock.set(at)
        r = client.post(f"/api/work-orders/{wo}/transitions", headers=who, json=body)
        assert r.status_code == 200, r.text

    for wo, (opened, accept, resolve, rework, rating) in zip(ids, plan, strict=True):
        start = T0 + opened
        move(wo, start + accept, to="assigned", assignee="maint")
        move(wo, start + resolve, to="resolved")
        if rework:
            move(wo, start + resolve + timedelta(hours=1), to="reopened", comment="still dark")
            move(wo, start + resolve + timedelta(hours=2), to="resolved")
        move(wo, start + resolve + timedelta(hours=3), to="verified", satisfaction=rating)
    clock.set(T0 + timedelta(days=5))
    # An open order, 5 days old by now, for the backlog.
    clock.set(T0)
    client.post(
        "/api/work-orders",
        headers=maint,
        json={
            "title": "Window latch",
            "category": "carpentry",
            "priority": "P3",
            "location": "Dorm A 101",
            "building": "dorm-a",
        },
    )
    clock.set(T0 + timedelta(days=5))
    k = client.get("/api/kpis", headers=maint, params={"category": "electrical"}).json()
    # Independent figures. P3 repair deadline: 3 working days after opening (24 Nov 2026 is a
    # Tuesday in Shanghai, so the deadline is Friday the 27th, same time).
    deadline = [T0 + opened + timedelta(days=3) for opened, *_ in plan]
    final_resolve = [
        T0 + o + r + (timedelta(hours=2) if w else timedelta(0)) for o, _, r, w, _ in plan
    ]
    on_time = sum(1 for res, due in zip(final_resolve, deadline, strict=True) if res <= due)
    assert k["resolved"] == 3 and k["resolved_on_time"] == on_time == 2
    assert k["on_time_rate"] == round(2 / 3, 4)
    assert k["verified"] == 3 and k["verified_first_time"] == 2
    assert k["pass_rate"] == round(2 / 3, 4)
    assert k["mtta_minutes"] == round((30 + 180 + 10) / 3, 2)
    mttr = (
        sum((f - (T0 + o)).total_seconds() for f, (o, *_) in zip(final_resolve, plan, strict=True))
        / 3
    )
    assert k["mttr_hours"] == round(mttr / 3600, 3)
    assert k["satisfaction"] == {"ratings": 3, "mean": 4.0, "share_4_or_5": round(2 / 3, 4)}
    everything = client.get("/api/kpis", headers=maint).json()
    assert everything["backlog"][">7d"] == 0 and everything["backlog"]["3-7d"] == 1
    assert client.get("/api/kpis", headers=token(client, "food")).status_code == 403


def test_gateway_last_will_is_one_alert_not_one_per_device(server: Any, clock: ManualClock) -> None:
    from core.wire import GatewayStatus

    client, ctx = server
    readings = [
        reading(d, "temperature", 3.0, T0, seq=1)
        for d in ("canteen-fridge-01", "canteen-fridge-02", "canteen-freezer-01")
    ]
    ctx.pipeline.handle_batch(batch(readings))
    ctx.pipeline.gateway_status(GatewayStatus(gateway_id="gw-canteen", state="offline"), T0)
    clock.set(T0 + timedelta(hours=2))
    ctx.pipeline.tick(clock.now())
    active = alerts_of(client, "admin", state="active")
    assert [(a["device_id"], a["rule"]) for a in active] == [
        ("gateway:gw-canteen", "gateway_offline")
    ]
    ctx.pipeline.gateway_status(GatewayStatus(gateway_id="gw-canteen", state="online"), clock.now())
    assert alerts_of(client, "admin", state="active") == []


def test_entries_after_curfew_are_late_returns_for_that_buildings_manager(server: Any) -> None:
    client, ctx = server
    night = datetime(2026, 11, 24, tzinfo=TZ)

    def card(device: str, hh: int, mm: int, n: int, reader: str = "in", day: int = 0) -> Any:
        at = (night + timedelta(days=day, hours=hh, minutes=mm)).astimezone(UTC)
        e = event(device, "card_granted", at, n)
        return type(e)(
            event_id=e.event_id,
            device_id=e.device_id,
            kind=e.kind,
            measured_at=at,
            received_at=at,
            attrs={"card": f"p-{n:016x}", "reader": reader},
        )

    evening = batch(
        [],
        [
            card("dorm-a-door-01", 22, 30, 1),  # before the 23:00 curfew: nothing
            card("dorm-a-door-01", 23, 20, 2),
            card("dorm-a-door-02", 23, 30, 3, reader="out"),  # leaving is not a return
            card("dorm-a-door-01", 0, 40, 4, day=1),  # after midnight: the same night
            card("dorm-b-door-01", 23, 50, 5),
            card("dorm-a-door-01", 7, 10, 6, day=1),  # morning: nothing
        ],
    )
    ctx.pipeline.handle_batch(evening)
    ctx.pipeline.handle_batch(evening)  # replayed: recorded once

    def late(user: str, **params: str) -> Any:
        return client.get(
            "/api/late-returns",
            params={"night": "2026-11-24", **params},
            headers=token(client, user),
        )

    a = late("dorm-a").json()["entries"]
    assert [(e["device_id"], e["local_time"]) for e in a] == [
        ("dorm-a-door-01", "23:20"),
        ("dorm-a-door-01", "00:40"),
    ]
    assert a[0]["card"] == "p-0000000000000002"
    assert [e["local_time"] for e in late("dorm-b").json()["entries"]] == ["23:50"]
    assert len(late("admin").json()["entries"]) == 3
    assert late("maint").status_code == 403
    assert late("dorm-a", night="2026-11-25").json()["entries"] == []
    # Not an alarm: no alert was raised for any of them.
    assert alerts_of(client, "admin", state="active") == []
