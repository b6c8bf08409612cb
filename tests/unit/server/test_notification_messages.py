"""Who is told and what they read: routing by role, building and minimum severity, the
escalation chain, and the text of each kind of message, from snapshots alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from core.site import NotificationChannel, Notifications
from server.events.types import AlertSnapshot, WorkOrderSnapshot
from server.notifications import render
from server.notifications.routing import Routing

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

CONFIG = Notifications.model_validate(
    {
        "escalation": {"chain": ["admin"], "chains": {"dorm_manager": ["security", "admin"]}},
        "channels": [
            {"id": "dorm-a", "url": "json://a", "role": "dorm_manager", "buildings": ["dorm-a"]},
            {"id": "dorm-b", "url": "json://b", "role": "dorm_manager", "buildings": ["dorm-b"]},
            {"id": "food", "url": "json://f", "role": "food_safety", "min_severity": "major"},
            {"id": "maint", "url": "json://m", "role": "maintenance", "min_severity": "info"},
            {
                "id": "maint-dorm-a",
                "url": "json://n",
                "role": "maintenance",
                "buildings": ["dorm-a"],
            },
        ],
    }
)
NOTIFY = {
    ("dorm-a-door-01", "door_held_open"): ("dorm_manager",),
    ("canteen-fridge-01", "fridge_too_warm"): ("food_safety", "maintenance"),
    ("canteen-fridge-01", "quiet_rule"): (),
}


def notify_roles(device_id: str, rule: str) -> tuple[str, ...] | None:
    return NOTIFY.get((device_id, rule))


ROUTING = Routing(CONFIG, notify_roles)


def alert(**changes: object) -> AlertSnapshot:
    base = AlertSnapshot(
        id=7,
        device_id="dorm-a-door-01",
        building="dorm-a",
        device_class="door",
        rule="door_held_open",
        severity="warning",
        state="active",
        message="door held open for 3 min",
        raised_at=T0,
        value=None,
        peak=None,
        acknowledged_at=None,
        acknowledged_by=None,
        resolved_at=None,
        resolved_by=None,
        assignee=None,
        work_order_id=None,
        condition_unknown=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def order(**changes: object) -> WorkOrderSnapshot:
    base = WorkOrderSnapshot(
        id=5,
        source="manual",
        device_id=None,
        device_class=None,
        alert_id=None,
        building="dorm-a",
        location="Dorm A corridor",
        category="electrical",
        priority="P3",
        status="open",
        title="Lamp broken",
        description="",
        assignee=None,
        created_at=T0,
        respond_due_at=T0 + timedelta(hours=4),
        due_at=T0 + timedelta(days=3),
        accepted_at=None,
        resolved_at=None,
        verified_at=None,
        reopen_count=0,
        satisfaction=None,
        condition_cleared=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def ids(channels: Iterable[NotificationChannel]) -> list[str]:
    return [ch.id for ch in channels]


# -- routing -------------------------------------------------------------------------------


def test_a_dorm_alert_reaches_the_manager_of_its_building_only() -> None:
    assert ids(ROUTING.alert_channels(alert())) == ["dorm-a"]
    assert ids(ROUTING.alert_channels(alert(building="dorm-b"))) == ["dorm-b"]


def test_a_channel_hears_nothing_below_its_minimum_severity() -> None:
    fridge = alert(device_id="canteen-fridge-01", rule="fridge_too_warm", building="canteen")
    assert ids(ROUTING.alert_channels(replace(fridge, severity="major"))) == ["food", "maint"]
    assert ids(ROUTING.alert_channels(replace(fridge, severity="warning"))) == ["maint"]


def test_system_alerts_go_to_maintenance_and_an_empty_notify_to_nobody() -> None:
    gateway = alert(device_id="gw-canteen", rule="gateway_outbox_high", building=None)
    assert ROUTING.roles(gateway) == ("maintenance",)
    assert ids(ROUTING.alert_channels(gateway)) == ["maint"]  # not the dorm-a-only one
    quiet = alert(device_id="canteen-fridge-01", rule="quiet_rule")
    assert ROUTING.roles(quiet) == ()
    assert ROUTING.alert_channels(quiet, ("admin",)) == []


def test_escalation_follows_the_chain_of_the_rules_first_role() -> None:
    assert ROUTING.chain(alert()) == ("security", "admin")
    fridge = alert(device_id="canteen-fridge-01", rule="fridge_too_warm")
    assert ROUTING.chain(fridge) == ("admin",)


def test_every_new_work_order_reaches_maintenance_of_its_building() -> None:
    assert ids(ROUTING.work_order_channels(order())) == ["maint", "maint-dorm-a"]
    assert ids(ROUTING.work_order_channels(order(building="dorm-b"))) == ["maint"]


# -- text ----------------------------------------------------------------------------------


def test_alert_titles_say_what_happened() -> None:
    def title(event: str, **changes: object) -> str:
        return render.alert_text("Campus", alert(**changes), event).title

    assert title("raised") == "[warning] ALERT: dorm-a-door-01 door held open"
    assert title("escalated-2") == (
        "[warning] ESCALATED (step 2, not acknowledged): dorm-a-door-01 door held open"
    )
    assert title("reminder-1").startswith("[warning] REMINDER 1 (not acknowledged): ")
    assert title("acknowledged", acknowledged_by="dorm-a").startswith(
        "[warning] acknowledged by dorm-a: "
    )
    assert title("acknowledged").startswith("[warning] acknowledged by someone: ")
    assert title("resolved").startswith("[warning] resolved: ")


def test_an_alert_body_names_site_building_state_and_assignee() -> None:
    body = render.alert_text("Campus", alert(assignee="maint"), "raised").body
    assert body.splitlines() == [
        "Campus, dorm-a: door held open for 3 min",
        "raised 2026-11-24T12:00:00+00:00; state active; alert #7",
        "assigned to maint",
    ]
    gateway = render.alert_text("Campus", alert(building=None), "raised").body
    assert gateway.startswith("Campus, campus: ")


def test_a_work_order_message_names_priority_title_place_and_deadline() -> None:
    text = render.work_order_text("Campus", order())
    assert text.title == "[P3] work order #5: Lamp broken"
    assert text.body == (
        "Campus: Dorm A corridor\ncategory electrical, due 2026-11-27T12:00:00+00:00; source manual"
    )
    assert render.work_order_text("Campus", order(title="")).title.endswith(": electrical")


def test_a_digest_lists_the_held_titles() -> None:
    text = render.digest_text(["[warning] ALERT: a", "[warning] resolved: a"], 30)
    assert text.title == "2 notifications held back (repeats or over 30/h)"
    assert text.body == "- [warning] ALERT: a\n- [warning] resolved: a"


def test_the_escalation_note_says_how_long_and_who() -> None:
    wait = timedelta(minutes=20)
    assert render.escalation_note(2, wait, "admin", told=True) == (
        "step 2: not acknowledged after 20 min; told admin"
    )
    assert render.escalation_note(1, wait, "security", told=False).endswith(
        "no channel for security"
    )
