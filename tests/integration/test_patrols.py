"""Patrol rounds (巡查) through the real server on a manual clock: a recorded night of reader
scans (tests/fixtures/patrols/recorded-night.jsonl) replayed through the ingest pipeline,
live and as one burst after an outage, gives exactly the hand-worked log and exactly two
round notices, each told once to dorm A's manager and to security through real Apprise
json:// channels; the QR path of the phone page; the log's scope; the weekly KPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient

from core.clock import ManualClock
from core.readings import DeviceEvent
from server.app import create_app
from server.context import ServerContext
from server.rules.replay import read_records
from server.settings import ServerSettings
from tests.harness import Webhook
from tests.helpers import batch, production_site, token, wait_until

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "patrols"
NIGHT = "2026-11-24"
RECORD_STARTS = datetime(2026, 11, 24, 21, 0, tzinfo=TZ)
NIGHT_ENDS = datetime(2026, 11, 25, 3, 0, tzinfo=TZ)


def patrol_site(tmp: Path, hook: Webhook) -> Path:
    """The demo site with a three-round route for dorm A and a json:// channel for each of
    dorm A's manager, dorm B's manager and security (the webhook tells them apart by path)."""
    doc = yaml.safe_load(production_site(tmp).read_text())
    doc["patrols"]["routes"] = [
        {
            "id": "dorm-a-test",
            "building": "dorm-a",
            "name": "A栋夜间巡查（测试）",
            "checkpoints": ["dorm-a-cp-01", "dorm-a-cp-02", "dorm-a-cp-03"],
            "rounds": [{"from": "22:00", "to": "03:00", "every": "2h"}],
            "within": "30m",
            "grace": "10m",
            "notify": ["dorm_manager", "security"],
        }
    ]
    url = f"json://127.0.0.1:{hook.port}"
    doc["notifications"] = {
        "channels": [
            {"id": "dorm-a", "role": "dorm_manager", "buildings": ["dorm-a"], "url": f"{url}/a"},
            {"id": "dorm-b", "role": "dorm_manager", "buildings": ["dorm-b"], "url": f"{url}/b"},
            {"id": "security", "role": "security", "url": f"{url}/sec"},
        ]
    }
    path = tmp / "patrol-site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


@pytest.fixture
def server(tmp_path: Path, webhook: Webhook) -> Iterator[tuple[TestClient, ServerContext, Any]]:
    clock = ManualClock(RECORD_STARTS)
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path,
        broker="mqtt://127.0.0.1:1",
        site_file=patrol_site(tmp_path, webhook),
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        app: Any = client.app
        app.state.patrols.tick(clock.now())  # the patrol record begins
        yield client, app.state.ctx, clock


def expected() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FIXTURES / "expected-night.json").read_text())
    return result


def hhmm(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(TZ).strftime("%H:%M")


def comparable(log: dict[str, Any]) -> dict[str, Any]:
    (building,) = log["buildings"]
    (route,) = building["routes"]
    return {
        "rounds": [
            {
                "number": r["number"],
                "starts_at": hhmm(r["starts_at"]),
                "due_at": hhmm(r["due_at"]),
                "status": r["status"],
                "scanned": [s["checkpoint"] for s in r["scans"]],
                "missing": r["missing"],
            }
            for r in route["rounds"]
        ],
        "scans": [
            {
                "checkpoint": s["checkpoint"],
                "at": hhmm(s["at"]),
                "by": s["by"],
                "source": s["source"],
                "round": s["round"],
                "off_round": s["off_round"],
            }
            for s in building["scans"]
        ],
    }


def replay_night(ctx: ServerContext, clock: ManualClock, app: Any, *, burst: bool) -> None:
    items = list(read_records(FIXTURES / "recorded-night.jsonl"))
    assert all(isinstance(i, DeviceEvent) for i in items)
    if burst:  # the gateway was cut off all night; its buffer arrives at 02:50
        clock.set(datetime(2026, 11, 25, 2, 50, tzinfo=TZ))
        ctx.pipeline.handle_batch(batch([], [i for i in items if isinstance(i, DeviceEvent)]))
    else:
        pending = list(items)
        while clock.now() < NIGHT_ENDS:
            clock.advance(timedelta(minutes=5))
            due = [i for i in pending if i.measured_at <= clock.now()]
            pending = [i for i in pending if i not in due]
            for item in due:  # one message at a time, as they came
                assert isinstance(item, DeviceEvent)
                ctx.pipeline.handle_batch(batch([], [item]))
            app.state.patrols.tick(clock.now())
    clock.set(NIGHT_ENDS)
    app.state.patrols.tick(clock.now())
    app.state.patrols.tick(clock.now())  # a second tick judges nothing again


@pytest.mark.parametrize("burst", [False, True], ids=["live", "burst"])
def test_recorded_night_gives_the_hand_worked_log_and_two_notices(
    server: Any, webhook: Webhook, burst: bool
) -> None:
    client, ctx, clock = server
    replay_night(ctx, clock, client.app, burst=burst)

    r = client.get(f"/api/patrols?building=dorm-a&date={NIGHT}", headers=token(client, "dorm-a"))
    assert r.status_code == 200, r.text
    want = expected()
    assert comparable(r.json()) == {"rounds": want["rounds"], "scans": want["scans"]}

    ctx.notifier.drain()
    wait_until(lambda: len(webhook.received) >= 4, 15, "four patrol notices")
    ctx.notifier.drain()
    told = webhook.by_path()
    assert told.get("/a", []) == want["told"]["dorm-a"]
    assert told.get("/sec", []) == want["told"]["security"]
    assert told.get("/b", []) == want["told"]["dorm-b"]
    assert len(webhook.received) == 4


def test_patrol_log_is_scoped_to_the_viewers_buildings(server: Any) -> None:
    client, ctx, clock = server
    replay_night(ctx, clock, client.app, burst=True)
    url = f"/api/patrols?building=dorm-a&date={NIGHT}"
    assert client.get(url, headers=token(client, "dorm-b")).status_code == 404
    assert client.get(url, headers=token(client, "maint")).status_code == 403
    assert client.get(url, headers=token(client, "admin")).status_code == 200
    # Without a building: the buildings with a route the viewer may see.
    mine = client.get(f"/api/patrols?date={NIGHT}", headers=token(client, "dorm-b")).json()
    assert mine["buildings"] == []
    week = {
        "building": "dorm-a",
        "week": "2026-W48",
        "rounds": 3,
        "completed": 1,
        "completion_rate": 0.3333,
    }
    mine_kpi = client.get("/api/patrols/kpis?building=dorm-a", headers=token(client, "dorm-a"))
    assert mine_kpi.json()["weeks"] == [week]
    assert client.get("/api/kpis", headers=token(client, "admin")).json()["patrols"] == [week]
    public = client.get("/api/public/kpis").json()["patrol_rounds"]
    assert public == [{k: v for k, v in week.items() if k != "building"}]


def test_qr_scan_on_the_phone_counts_as_the_guard_who_is_logged_in(server: Any) -> None:
    client, _ctx, clock = server
    admin = token(client, "admin")
    points = {c["id"]: c for c in client.get("/api/patrols/checkpoints", headers=admin).json()}
    assert set(points) == {"dorm-a-cp-01", "dorm-a-cp-02", "dorm-a-cp-03"}
    _, cp, code = points["dorm-a-cp-02"]["qr"].split(":")
    manager = token(client, "dorm-a")
    assert "qr" not in client.get("/api/patrols/checkpoints", headers=manager).json()[0]

    clock.set(datetime(2026, 11, 24, 22, 5, tzinfo=TZ))
    r = client.post("/api/patrols/scans", json={"checkpoint": cp, "code": code}, headers=manager)
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in ("checkpoint", "by", "source", "round", "off_round")} == {
        "checkpoint": "dorm-a-cp-02",
        "by": "dorm-a",
        "source": "qr",
        "round": 1,
        "off_round": False,
    }
    wrong = client.post(
        "/api/patrols/scans", json={"checkpoint": "dorm-a-cp-01", "code": code}, headers=manager
    )
    assert wrong.status_code == 422
    assert "code: not the QR code of checkpoint dorm-a-cp-01" in wrong.text
    other = client.post(
        "/api/patrols/scans", json={"checkpoint": cp, "code": code}, headers=token(client, "dorm-b")
    )
    assert other.status_code == 403
    unknown = client.post(
        "/api/patrols/scans", json={"checkpoint": "nowhere", "code": code}, headers=manager
    )
    assert unknown.status_code == 422 and "checkpoint: no checkpoint" in unknown.text
    log = client.get(f"/api/patrols?building=dorm-a&date={NIGHT}", headers=manager).json()
    assert [(s["checkpoint"], s["by"]) for s in log["buildings"][0]["scans"]] == [
        ("dorm-a-cp-02", "dorm-a")
    ]
