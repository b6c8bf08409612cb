"""Issue 14 in the demo site, through the real pipeline on a manual clock: classroom CO2 is
judged during lessons only (and not on a holiday), a fire exit opened after curfew alerts
dorm A's manager only, dry soil opens a greening order and a full bin a cleaning order with
their own time limits (working days skip the calendar's closures), and an order past its
deadline is told once to its assignee and the lead, through real Apprise json:// channels."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient

from core.clock import ManualClock
from core.site import DEFAULT_SITE_FILE
from server.app import create_app
from server.context import ServerContext
from server.settings import ServerSettings
from tests.harness import Webhook
from tests.helpers import batch, event, reading, token, wait_until

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
TUESDAY = datetime(2026, 11, 24, tzinfo=TZ)  # in the autumn term of the demo calendar
NATIONAL_DAY = datetime(2026, 10, 1, tzinfo=TZ)  # a Thursday in term, closed for the holiday


def at(day: datetime, hhmm: str) -> datetime:
    h, m = (int(p) for p in hhmm.split(":"))
    return day.replace(hour=h, minute=m)


def demo_site_with_channels(tmp: Path, hook: Webhook) -> Path:
    """The demo site as shipped (its demo delays included) plus a json:// channel per
    audience, told apart by path at the webhook."""
    doc = yaml.safe_load(DEFAULT_SITE_FILE.read_text())
    url = f"json://127.0.0.1:{hook.port}"
    doc["notifications"] = {
        "channels": [
            {"id": "dorm-a", "role": "dorm_manager", "buildings": ["dorm-a"], "url": f"{url}/a"},
            {"id": "dorm-b", "role": "dorm_manager", "buildings": ["dorm-b"], "url": f"{url}/b"},
            {"id": "security", "role": "security", "url": f"{url}/sec"},
            {"id": "lead", "role": "maintenance", "min_severity": "info", "url": f"{url}/lead"},
            {"id": "wang", "role": "maintenance", "user": "maint", "url": f"{url}/wang"},
        ]
    }
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


@pytest.fixture
def server(tmp_path: Path, webhook: Webhook) -> Iterator[tuple[TestClient, ServerContext, Any]]:
    clock = ManualClock(at(TUESDAY, "08:00"))
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path,
        broker="mqtt://127.0.0.1:1",
        site_file=demo_site_with_channels(tmp_path, webhook),
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        yield client, client.app.state.ctx, clock  # type: ignore[attr-defined]


def feed(
    ctx: ServerContext,
    clock: ManualClock,
    device: str,
    metric: str,
    values: list[Any],
    start: datetime,
) -> None:
    """Readings 10 s apart, each in its own batch with the clock at its time."""
    for i, value in enumerate(values):
        t = start + timedelta(seconds=10 * i)
        clock.set(t)
        ctx.pipeline.handle_batch(batch([reading(device, metric, value, t, seq=i, unit=None)]))
        ctx.pipeline.tick(t)


def alerts(client: TestClient, user: str) -> list[tuple[str, str]]:
    rows = client.get("/api/alerts", headers=token(client, user)).json()
    return sorted((a["device_id"], a["rule"]) for a in rows)


def test_co2_rise_during_a_lesson_alerts_and_the_same_at_night_does_not(server: Any) -> None:
    client, ctx, clock = server
    feed(ctx, clock, "classroom-101-air", "co2", [1300] * 6, at(TUESDAY, "21:00"))
    assert alerts(client, "maint") == []
    feed(ctx, clock, "classroom-101-air", "co2", [1300] * 6, at(TUESDAY + timedelta(1), "09:00"))
    # (silent since last night: its offline alert is the one beside it)
    assert alerts(client, "maint") == [
        ("classroom-101-air", "co2_high"),
        ("classroom-101-air", "sensor_offline"),
    ]


def test_on_a_holiday_the_lesson_rule_stays_silent(server: Any) -> None:
    client, ctx, clock = server
    feed(ctx, clock, "classroom-101-air", "co2", [1600] * 12, at(NATIONAL_DAY, "09:00"))
    assert alerts(client, "maint") == []


def test_door_opened_after_curfew_alerts_dorm_a_manager_only(server: Any, webhook: Webhook) -> None:
    client, ctx, clock = server
    for hhmm in ("22:30", "23:40"):  # the demo dorms' curfew is 23:00
        clock.set(at(TUESDAY, hhmm))
        ctx.pipeline.handle_batch(
            batch([], [event("dorm-a-door-04", "door_opened", at(TUESDAY, hhmm))])
        )
    assert alerts(client, "dorm-a") == [("dorm-a-door-04", "door_opened_after_curfew")]
    assert alerts(client, "dorm-b") == []
    ctx.notifier.drain()
    wait_until(lambda: webhook.received, 15, "the after-curfew notice")
    ctx.notifier.drain()
    assert webhook.by_path() == {"/a": ["[warning] ALERT: dorm-a-door-04 door opened after curfew"]}
    # The main entrance keeps late returns as records: no alarm there.
    clock.set(at(TUESDAY, "23:45"))
    ctx.pipeline.handle_batch(batch([], [event("dorm-a-door-01", "door_opened", clock.now())]))
    assert alerts(client, "dorm-a") == [("dorm-a-door-04", "door_opened_after_curfew")]


def orders(client: TestClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = client.get(
        "/api/work-orders", headers=token(client, "maint")
    ).json()
    return result


def test_dry_soil_opens_a_greening_order_due_the_next_working_day(server: Any) -> None:
    client, ctx, clock = server
    feed(ctx, clock, "garden-soil-01", "soil_moisture", [26, 16], at(TUESDAY, "10:00"))
    assert orders(client) == []  # one dry reading is not enough (two in a row)
    feed(ctx, clock, "garden-soil-01", "soil_moisture", [15], at(TUESDAY, "10:05"))
    (wo,) = orders(client)
    assert (wo["category"], wo["priority"], wo["device_id"]) == ("greening", "P3", "garden-soil-01")
    opened = datetime.fromisoformat(wo["created_at"])
    assert datetime.fromisoformat(wo["due_at"]) == opened + timedelta(days=1)  # Wednesday
    assert datetime.fromisoformat(wo["respond_due_at"]) == opened + timedelta(hours=4)


def test_greening_working_day_skips_the_calendars_closures(server: Any) -> None:
    client, ctx, clock = server
    eve = datetime(2026, 9, 30, tzinfo=TZ)  # the day before the National Day week
    feed(ctx, clock, "garden-soil-01", "soil_moisture", [15, 14], at(eve, "10:00"))
    (wo,) = orders(client)
    due = datetime.fromisoformat(wo["due_at"]).astimezone(TZ)
    assert due == datetime(2026, 10, 8, 10, 0, 10, tzinfo=TZ)  # closed 1-7 Oct


def test_overdue_order_is_told_once_to_its_assignee_and_the_lead(
    server: Any, webhook: Webhook
) -> None:
    client, ctx, clock = server
    feed(ctx, clock, "garden-soil-01", "soil_moisture", [15, 14], at(TUESDAY, "10:00"))
    (wo,) = orders(client)
    admin = token(client, "admin")
    r = client.post(
        f"/api/work-orders/{wo['id']}/transitions",
        json={"to": "assigned", "assignee": "maint"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    app: Any = client.app
    clock.set(datetime.fromisoformat(wo["due_at"]) - timedelta(minutes=1))
    app.state.overdue.tick()
    clock.set(datetime.fromisoformat(wo["due_at"]) + timedelta(minutes=1))
    app.state.overdue.tick()
    app.state.overdue.tick()
    ctx.notifier.drain()
    title = f"[P3] OVERDUE work order #{wo['id']}: garden-soil-01: soil dry"
    wait_until(lambda: title in webhook.by_path().get("/wang", []), 15, "the assignee's notice")
    ctx.notifier.drain()
    told = webhook.by_path()  # the own channel hears its role's news too (the order opening)
    assert told["/wang"].count(title) == 1
    assert told["/lead"].count(title) == 1
    assert "/a" not in told and "/sec" not in told
    history = client.get(f"/api/work-orders/{wo['id']}", headers=admin).json()["history"]
    assert sum("past its repair deadline" in h["comment"] for h in history) == 1


def test_a_bin_filling_up_opens_a_cleaning_order_that_overflow_makes_urgent(server: Any) -> None:
    client, ctx, clock = server
    feed(ctx, clock, "canteen-bin-01", "fill_level", [40, 65, 78], at(TUESDAY, "11:00"))
    assert orders(client) == []
    feed(ctx, clock, "canteen-bin-01", "fill_level", [84], at(TUESDAY, "11:10"))
    (wo,) = orders(client)
    assert (wo["category"], wo["priority"], wo["device_id"]) == ("cleaning", "P3", "canteen-bin-01")
    opened = datetime.fromisoformat(wo["created_at"])
    assert datetime.fromisoformat(wo["due_at"]) - opened == timedelta(hours=4)
    assert datetime.fromisoformat(wo["respond_due_at"]) - opened == timedelta(hours=1)
    feed(ctx, clock, "canteen-bin-01", "fill_level", [97], at(TUESDAY, "11:40"))
    (urgent,) = orders(client)  # the same order, escalated: one per device and category
    assert (urgent["id"], urgent["priority"]) == (wo["id"], "P2")
    assert datetime.fromisoformat(urgent["due_at"]) - opened == timedelta(hours=2)
    assert alerts(client, "maint") == [
        ("canteen-bin-01", "bin_full"),
        ("canteen-bin-01", "bin_overflow"),
    ]
