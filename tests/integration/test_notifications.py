"""Notifications through Apprise to a real SMTP server (aiosmtpd) and a real HTTP webhook
receiver: routed by role and building, sent once, flapping and floods held for a digest
(flapping recognised across a restart), escalated along the site's chain after the
severity's time, reminded until acknowledged, failures counted, logged without secrets and
retried. Plus the alert actions that stop escalation (acknowledge, assign, resolve), the
live stream's scope, and the notification log's migrations on PostgreSQL and SQLite."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from core.clock import ManualClock
from server.app import create_app
from server.context import ServerContext
from server.db.base import UtcDateTime
from server.db.engine import alembic_config
from server.settings import ServerSettings
from tests.harness import Smtp, Webhook, start_smtp
from tests.helpers import batch, event, production_site, reading, token, wait_until
from tests.live_server import free_port, start_server

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOOK_TOKEN = "hook-secret-7f3a9c"  # a webhook path token, as group robots use
SMTP_PASSWORD = "smtp-secret-b81e44"


def mail(smtp: Smtp, to: str, login: str = "") -> str:
    return f"mailto://{login}127.0.0.1:{smtp.port}?from=monitor@campus.test&to={to}&mode=insecure"


def site_with_channels(tmp: Path, smtp: Smtp, **notifications: Any) -> Path:
    doc = yaml.safe_load(production_site(tmp).read_text())
    doc["notifications"] = {
        "escalation": {
            "after": {"critical": "10m", "major": "15m", "warning": "30m"},
            "chain": ["admin"],
            "chains": {"dorm_manager": ["security", "admin"]},
            "remind_every": "30m",
            "max_reminders": 2,
        },
        "channels": [
            {
                "id": "dorm-a",
                "url": mail(smtp, "dorm-a@campus.test"),
                "role": "dorm_manager",
                "buildings": ["dorm-a"],
            },
            {
                "id": "dorm-b",
                "url": mail(smtp, "dorm-b@campus.test"),
                "role": "dorm_manager",
                "buildings": ["dorm-b"],
            },
            {"id": "food", "url": mail(smtp, "food@campus.test"), "role": "food_safety"},
            {"id": "security", "url": mail(smtp, "guard@campus.test"), "role": "security"},
            {"id": "admin", "url": mail(smtp, "director@campus.test"), "role": "admin"},
            # The webhook's address and path token come from the environment, as secrets do.
            {
                "id": "maint-hook",
                "url": "json://127.0.0.1:${CFM_TEST_HOOK_PORT}/hook/${CFM_TEST_HOOK_TOKEN}",
                "role": "maintenance",
                "min_severity": "info",
            },
        ],
        **notifications,
    }
    path = tmp / "site-notify.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


@dataclass
class Server:
    client: TestClient
    ctx: ServerContext
    clock: ManualClock

    def feed(self, *events: Any, readings: list[Any] | None = None) -> None:
        """Ingest at the events' time and wait until the notifier has handled it all."""
        self.ctx.pipeline.handle_batch(batch(readings or [], list(events)))
        self.ctx.notifier.drain()

    def tick_at(self, at: datetime) -> None:
        self.clock.set(at)
        self.ctx.notifier.tick()
        self.ctx.notifier.drain()

    def metric(self, name: str, channel: str) -> float:
        return self.ctx.registry.get_sample_value(name, {"channel": channel}) or 0.0


def make_server(
    tmp_path: Path, site: Path, *, database_url: str | None = None
) -> tuple[TestClient, ManualClock]:
    clock = ManualClock(T0)
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "srv",
        broker="mqtt://127.0.0.1:1",
        site_file=site,
        database_url=database_url,
    )
    return TestClient(create_app(settings, clock=clock, consume=False)), clock


@pytest.fixture
def hook_env(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> Webhook:
    monkeypatch.setenv("CFM_TEST_HOOK_PORT", str(webhook.port))
    monkeypatch.setenv("CFM_TEST_HOOK_TOKEN", HOOK_TOKEN)
    return webhook


@pytest.fixture
def server(tmp_path: Path, smtp_server: Smtp, hook_env: Webhook) -> Iterator[Server]:
    client, clock = make_server(tmp_path, site_with_channels(tmp_path, smtp_server))
    with client:
        yield Server(client, client.app.state.ctx, clock)  # type: ignore[attr-defined]


def to(smtp: Smtp, address: str) -> list[str]:
    return [m.subject for m in smtp.messages if address in m.rcpt_tos]


def test_dorm_alert_reaches_its_manager_only_and_only_once(
    server: Server, smtp_server: Smtp
) -> None:
    held = event("dorm-a-door-01", "door_held_open", T0)
    server.feed(held)
    server.feed(held)  # a replayed batch
    wait_until(lambda: to(smtp_server, "dorm-a@campus.test"), 10, "mail to dorm A's manager")
    assert to(smtp_server, "dorm-b@campus.test") == []
    assert len(to(smtp_server, "dorm-a@campus.test")) == 1
    assert "door held open" in to(smtp_server, "dorm-a@campus.test")[0]

    server.feed(event("dorm-a-door-01", "door_closed", T0 + timedelta(minutes=2)))
    subjects = wait_until(
        lambda: [s for s in to(smtp_server, "dorm-a@campus.test") if "resolved" in s],
        10,
        "resolution mail",
    )
    assert len(subjects) == 1
    assert to(smtp_server, "dorm-b@campus.test") == []
    # A held-open door is the dorm manager's alone: nobody else was mailed.
    assert {r for m in smtp_server.messages for r in m.rcpt_tos} == {"dorm-a@campus.test"}
    assert server.metric("notifications_sent_total", "dorm-a") == 2


def test_cold_storage_alert_to_food_safety_and_work_order_to_the_webhook(
    server: Server, smtp_server: Smtp, hook_env: Webhook
) -> None:
    warm = [
        reading("canteen-fridge-01", "temperature", 9.5, T0 + timedelta(minutes=m))
        for m in range(0, 35, 5)
    ]
    server.feed(readings=warm)
    wait_until(lambda: to(smtp_server, "food@campus.test"), 10, "mail to food safety")
    assert all("canteen-fridge-01" in s for s in to(smtp_server, "food@campus.test"))
    assert to(smtp_server, "dorm-a@campus.test") == []
    assert to(smtp_server, "dorm-b@campus.test") == []
    hook = wait_until(lambda: hook_env.received, 10, "webhook call")
    assert any("work order" in h["title"] and "refrigeration" in h["message"] for h in hook)
    assert set(hook_env.paths) == {f"/hook/{HOOK_TOKEN}"}  # the secret was expanded


def test_escalation_follows_the_severity_time_and_the_chain_until_acknowledged(
    server: Server, smtp_server: Smtp
) -> None:
    server.feed(
        event("dorm-a-door-02", "door_forced", T0),  # critical: 10 min a step
        event("dorm-a-door-03", "door_held_open", T0),  # warning: 30 min a step
    )
    guard, director = "guard@campus.test", "director@campus.test"

    def escalations(address: str) -> list[str]:
        return [s for s in to(smtp_server, address) if "ESCALATED" in s]

    server.tick_at(T0 + timedelta(minutes=9))
    assert escalations(guard) == [] and escalations(director) == []

    server.tick_at(T0 + timedelta(minutes=10))
    server.tick_at(T0 + timedelta(minutes=11))  # a second tick changes nothing
    step1 = escalations(guard)
    assert len(step1) == 1 and "step 1" in step1[0] and "dorm-a-door-02" in step1[0]
    assert escalations(director) == []  # the chain's next role, not yet

    server.tick_at(T0 + timedelta(minutes=20))
    step2 = escalations(director)
    assert len(step2) == 1 and "step 2" in step2[0] and "dorm-a-door-02" in step2[0]
    assert not [s for s in escalations(guard) if "dorm-a-door-03" in s]  # warning: 30 min

    server.tick_at(T0 + timedelta(minutes=30))
    assert [s for s in escalations(guard) if "dorm-a-door-03" in s]
    # Everyone told about the forced door so far is reminded once per period.
    for address in ("dorm-a@campus.test", guard, director):
        reminders = [
            s for s in to(smtp_server, address) if "REMINDER 1" in s and "dorm-a-door-02" in s
        ]
        assert len(reminders) == 1, (address, to(smtp_server, address))

    client = server.client
    forced = next(
        a
        for a in client.get("/api/alerts?state=active", headers=token(client, "admin")).json()
        if a["device_id"] == "dorm-a-door-02"
    )
    detail = client.get(f"/api/alerts/{forced['id']}", headers=token(client, "admin")).json()
    assert [h["comment"][:6] for h in detail["history"] if h["action"] == "escalated"] == [
        "step 1",
        "step 2",
    ]
    r = client.post(
        f"/api/alerts/{forced['id']}/ack",
        json={"comment": "guard sent"},
        headers=token(client, "dorm-a"),
    )
    assert r.status_code == 200, r.text
    server.ctx.notifier.drain()
    # The acknowledgement reaches every channel that was told, once.
    for address in ("dorm-a@campus.test", guard, director):
        acks = [s for s in to(smtp_server, address) if "acknowledged by dorm-a" in s]
        assert len(acks) == 1, (address, to(smtp_server, address))
    before = [s for s in (m.subject for m in smtp_server.messages) if "dorm-a-door-02" in s]
    server.tick_at(T0 + timedelta(minutes=95))
    after = [s for s in (m.subject for m in smtp_server.messages) if "dorm-a-door-02" in s]
    assert after == before  # acknowledged: no more reminders or escalation


def test_a_flapping_door_pages_once_and_the_repeats_come_as_one_digest(
    server: Server, smtp_server: Smtp
) -> None:
    door = "dorm-a-door-04"
    for k in range(4):  # held open and closed again every 5 minutes
        at = T0 + timedelta(minutes=5 * k)
        server.clock.set(at)
        server.feed(event(door, "door_held_open", at))
        server.clock.set(at + timedelta(minutes=1))
        server.feed(event(door, "door_closed", at + timedelta(minutes=1)))
    mails = to(smtp_server, "dorm-a@campus.test")
    assert len(mails) == 2, mails  # the first alert raised and resolved, nothing more
    assert "ALERT" in mails[0] and "resolved" in mails[1]
    assert server.metric("notifications_throttled_total", "dorm-a") == 6  # 3 alerts x 2

    server.tick_at(T0 + timedelta(minutes=20))  # held 15 min so far: not yet
    assert len(to(smtp_server, "dorm-a@campus.test")) == 2
    server.tick_at(T0 + timedelta(minutes=36))
    server.tick_at(T0 + timedelta(minutes=37))
    digests = [m for m in smtp_server.messages if "held back" in m.subject]
    assert [m.subject for m in digests] == ["6 notifications held back (repeats or over 30/h)"]
    assert digests[0].rcpt_tos == ("dorm-a@campus.test",)
    assert digests[0].text.count(door) == 6
    assert server.metric("notifications_digests_total", "dorm-a") == 1


def test_a_door_flapping_across_a_restart_is_still_held(
    tmp_path: Path, smtp_server: Smtp, hook_env: Webhook
) -> None:
    # Flap state comes from the notification log, like the hourly budget: a restart between
    # two raises of the same door does not page the dorm manager again.
    site, door = site_with_channels(tmp_path, smtp_server), "dorm-a-door-04"

    def mails() -> list[str]:
        return to(smtp_server, "dorm-a@campus.test")

    client, clock = make_server(tmp_path, site)
    with client:
        s = Server(client, client.app.state.ctx, clock)  # type: ignore[attr-defined]
        s.feed(event(door, "door_held_open", T0))
        clock.set(T0 + timedelta(minutes=1))
        s.feed(event(door, "door_closed", T0 + timedelta(minutes=1)))
    assert len(mails()) == 2, mails()  # raised and resolved

    client, clock = make_server(tmp_path, site)  # a new server and notifier, same database
    with client:
        s = Server(client, client.app.state.ctx, clock)  # type: ignore[attr-defined]
        for minutes, kind in ((5, "door_held_open"), (6, "door_closed")):
            clock.set(T0 + timedelta(minutes=minutes))
            s.feed(event(door, kind, clock.now()))
        assert len(mails()) == 2, mails()
        assert s.metric("notifications_throttled_total", "dorm-a") == 2
        # The window slid with the held raise at 5 min: 35 minutes after it, news again.
        clock.set(T0 + timedelta(minutes=40))
        s.feed(event(door, "door_held_open", clock.now()))
        assert len(mails()) == 3 and "ALERT" in mails()[2], mails()


def test_a_flood_is_throttled_into_one_digest(
    tmp_path: Path, smtp_server: Smtp, hook_env: Webhook
) -> None:
    site = site_with_channels(
        tmp_path, smtp_server, max_per_hour=2, escalation={"after": {}, "remind_every": 0}
    )
    client, clock = make_server(tmp_path, site)
    with client:
        s = Server(client, client.app.state.ctx, clock)  # type: ignore[attr-defined]
        s.feed(*(event(f"dorm-a-door-0{i}", "door_forced", T0) for i in range(1, 5)))
        assert len(to(smtp_server, "dorm-a@campus.test")) == 2
        assert s.metric("notifications_throttled_total", "dorm-a") == 2
        s.tick_at(T0 + timedelta(minutes=40))  # the digest is due, but the hour is full
        assert len(to(smtp_server, "dorm-a@campus.test")) == 2
        s.tick_at(T0 + timedelta(minutes=61))  # the hour has passed: room again
        digest = [m for m in to(smtp_server, "dorm-a@campus.test") if "held back" in m]
        assert digest == ["2 notifications held back (repeats or over 2/h)"]


def test_a_failed_delivery_is_counted_logged_without_the_secret_and_retried(
    tmp_path: Path, smtp_server: Smtp, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens here yet: the receiver is down
    monkeypatch.setenv("CFM_TEST_HOOK_PORT", str(port))
    monkeypatch.setenv("CFM_TEST_HOOK_TOKEN", HOOK_TOKEN)
    client, clock = make_server(tmp_path, site_with_channels(tmp_path, smtp_server))
    with client:
        s = Server(client, client.app.state.ctx, clock)  # type: ignore[attr-defined]
        r = client.post(
            "/api/work-orders",
            headers=token(client, "maint"),
            json={
                "title": "Lamp broken",
                "category": "electrical",
                "location": "Dorm A corridor",
                "building": "dorm-a",
            },
        )
        assert r.status_code == 201, r.text
        s.ctx.notifier.drain()
        assert s.metric("notifications_failed_total", "maint-hook") == 1
        assert s.metric("notifications_sent_total", "maint-hook") == 0
        assert "notification to channel maint-hook failed" in caplog.text

        hook = Webhook(port)  # the receiver is back
        try:
            s.tick_at(T0 + timedelta(minutes=4))  # too soon for the next round
            assert hook.received == []
            s.tick_at(T0 + timedelta(minutes=6))
            s.tick_at(T0 + timedelta(minutes=7))  # retried once, not on every tick
            assert [h["title"] for h in hook.received] == [
                f"[P3] work order #{r.json()['id']}: Lamp broken"
            ]
            assert hook.paths == [f"/hook/{HOOK_TOKEN}"]
        finally:
            hook.close()
        assert s.metric("notifications_sent_total", "maint-hook") == 1
        with s.ctx.sessions() as session:
            row = session.execute(
                text("SELECT status, attempts FROM notification_log WHERE channel = 'maint-hook'")
            ).one()
        assert tuple(row) == ("sent", 4)  # three tries, then one in the retry round
    # Apprise logs the webhook's full URL at debug level: it was there, masked.
    assert "/hook/***" in caplog.text
    assert HOOK_TOKEN not in caplog.text


def test_smtp_password_comes_from_the_environment_and_stays_out_of_the_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any, hook_env: Webhook
) -> None:
    caplog.set_level(logging.DEBUG)
    smtp = start_smtp(tmp_path, username="monitor", password=SMTP_PASSWORD)
    try:
        monkeypatch.setenv("CFM_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
        doc = yaml.safe_load(site_with_channels(tmp_path, smtp).read_text())
        for ch in doc["notifications"]["channels"]:
            if ch["id"] == "dorm-b":
                ch["url"] = mail(smtp, "dorm-b@campus.test", "monitor:${CFM_TEST_SMTP_PASSWORD}@")
        site = tmp_path / "site-auth.yaml"
        site.write_text(yaml.safe_dump(doc))
        assert SMTP_PASSWORD not in site.read_text()
        client, clock = make_server(tmp_path, site)
        with client:
            s = Server(client, client.app.state.ctx, clock)  # type: ignore[attr-defined]
            s.feed(event("dorm-b-door-01", "door_held_open", T0))
            # This server requires AUTH and checks the password: delivery proves the secret
            # was expanded from the environment.
            got = smtp.wait_for(lambda m: "dorm-b@campus.test" in m.rcpt_tos)
            assert "dorm-b-door-01" in got.subject
        assert SMTP_PASSWORD not in caplog.text
    finally:
        smtp.stop()


def test_a_missing_secret_stops_start_up_naming_the_variable(
    tmp_path: Path, smtp_server: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CFM_TEST_HOOK_TOKEN", raising=False)
    monkeypatch.setenv("CFM_TEST_HOOK_PORT", "1")
    with pytest.raises(ValueError, match="CFM_TEST_HOOK_TOKEN is not set"):
        make_server(tmp_path, site_with_channels(tmp_path, smtp_server))


def test_acknowledge_assign_and_resolve_keep_who_when_and_why(
    server: Server, smtp_server: Smtp
) -> None:
    client, clock = server.client, server.clock
    server.feed(event("dorm-a-door-01", "door_forced", T0))
    alert = client.get("/api/alerts?state=active", headers=token(client, "dorm-a")).json()[0]
    url = f"/api/alerts/{alert['id']}"
    dorm_b, dorm_a, maint = (token(client, u) for u in ("dorm-b", "dorm-a", "maint"))
    assert client.post(f"{url}/ack", headers=dorm_b).status_code == 404  # not their building
    bad = client.post(f"{url}/ack", json={"assignee": "nobody"}, headers=dorm_a)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("assignee:")

    clock.set(T0 + timedelta(minutes=3))
    r = client.post(f"{url}/ack", json={"comment": "on my way"}, headers=dorm_a)
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged_by"] == "dorm-a" and r.json()["assignee"] == "dorm-a"
    assert client.post(f"{url}/ack", headers=dorm_a).status_code == 409

    clock.set(T0 + timedelta(minutes=5))
    r = client.post(
        f"{url}/assign", json={"assignee": "maint", "comment": "lock is bent"}, headers=dorm_a
    )
    assert r.status_code == 200 and r.json()["assignee"] == "maint", r.text
    clock.set(T0 + timedelta(minutes=50))
    r = client.post(f"{url}/resolve", json={"comment": "lock replaced"}, headers=maint)
    assert r.status_code == 200 and r.json()["resolved_by"] == "maint", r.text
    assert client.post(f"{url}/assign", json={"assignee": "admin"}, headers=maint).status_code == (
        409
    )

    history = client.get(url, headers=maint).json()["history"]
    assert [(h["action"], h["actor"], h["at"][11:16], h["comment"]) for h in history] == [
        ("raised", "system", "12:00", history[0]["comment"]),
        ("acknowledged", "dorm-a", "12:03", "on my way"),
        ("assigned", "dorm-a", "12:03", "assigned to dorm-a"),
        ("assigned", "dorm-a", "12:05", "assigned to maint: lock is bent"),
        ("resolved", "maint", "12:50", "lock replaced"),
    ]
    server.ctx.notifier.drain()
    mails = to(smtp_server, "dorm-a@campus.test")
    assert len(mails) == 3 and "acknowledged by dorm-a" in mails[1] and "resolved" in mails[2]
    acked = next(m for m in smtp_server.messages if "acknowledged" in m.subject)
    assert "assigned to dorm-a" in acked.text
    # Acknowledged at 3 min: the critical's 10-minute escalation never happens.
    server.tick_at(T0 + timedelta(minutes=30))
    assert not [m for m in smtp_server.messages if "ESCALATED" in m.subject]


def test_stream_shows_dorm_a_alerts_to_dorm_a_only(tmp_path: Path) -> None:
    live = start_server(tmp_path)
    got: dict[str, list[dict[str, Any]]] = {"dorm-a": [], "dorm-b": []}
    ready = threading.Barrier(3)
    # dorm-a listens until its alert is acknowledged; dorm-b until its second alert.
    done = {
        "dorm-a": lambda a: a["state"] == "acknowledged",
        "dorm-b": lambda a: a["device_id"] == "dorm-b-door-03",
    }

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
                    if done[user](got[user][-1]):
                        return

    threads = [threading.Thread(target=listen, args=(u,), daemon=True) for u in got]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=10)
        now = datetime.now(UTC)
        process = live.ctx.pipeline.handle_batch
        process(batch([], [event("dorm-b-door-02", "door_forced", now)]))
        process(batch([], [event("dorm-a-door-01", "door_held_open", now)]))
        mine = live.get("/api/alerts?state=active", "dorm-a")
        assert [a["device_id"] for a in mine] == ["dorm-a-door-01"]
        r = httpx.post(
            f"{live.url}/api/alerts/{mine[0]['id']}/ack",
            json={"comment": "seen", "assignee": "dorm-a"},
            headers=live.headers("dorm-a"),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        process(batch([], [event("dorm-b-door-03", "door_forced", now)]))
        for t in threads:
            t.join(timeout=10)
        assert [(a["device_id"], a["state"]) for a in got["dorm-a"]] == [
            ("dorm-a-door-01", "active"),
            ("dorm-a-door-01", "acknowledged"),
        ]
        assert got["dorm-a"][1]["assignee"] == "dorm-a"
        assert [a["device_id"] for a in got["dorm-b"]] == ["dorm-b-door-02", "dorm-b-door-03"]
    finally:
        live.stop()


def test_notification_log_migrates_and_deduplicates_on_postgresql(
    tmp_path: Path, smtp_server: Smtp, hook_env: Webhook, postgres_url: str
) -> None:
    site = site_with_channels(tmp_path, smtp_server)
    client, _clock = make_server(tmp_path, site, database_url=postgres_url)
    with client:
        s = Server(client, client.app.state.ctx, _clock)  # type: ignore[attr-defined]
        held = event("dorm-a-door-01", "door_held_open", T0)
        s.feed(held)
        s.feed(held)
        wait_until(lambda: to(smtp_server, "dorm-a@campus.test"), 10, "mail to dorm A")
        assert len(to(smtp_server, "dorm-a@campus.test")) == 1
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert engine.dialect.name == "postgresql"
            columns = {c["name"] for c in inspect(conn).get_columns("notification_log")}
            assert {"subject", "channel", "event", "status", "attempts"} <= columns
            uniques = inspect(conn).get_unique_constraints("notification_log")
            assert [u["column_names"] for u in uniques] == [["subject", "channel", "event"]]
            revisions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            head = ScriptDirectory.from_config(alembic_config(postgres_url)).get_current_head()
            assert list(revisions) == [head]
            rows = conn.execute(
                text("SELECT channel, event, status FROM notification_log ORDER BY id")
            ).all()
        assert [tuple(r) for r in rows] == [("dorm-a", "raised", "sent")]
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_flap_migration_keys_the_rows_written_before_it(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'old.db'}"
        if dialect == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    cfg = alembic_config(url)
    command.upgrade(cfg, "0004")
    alerts = sa.table(
        "alerts",
        *(sa.column(c) for c in ("id", "device_id", "rule", "severity", "state", "message")),
        sa.column("raised_at", UtcDateTime()),
        sa.column("condition_unknown", sa.Boolean()),
    )
    log = sa.table(
        "notification_log",
        *(sa.column(c) for c in ("subject", "channel", "event", "status", "attempts")),
        *(sa.column(c) for c in ("title", "error")),
        sa.column("at", UtcDateTime()),
    )
    later = T0 + timedelta(minutes=3)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(alerts),
                [
                    {
                        "id": 12,
                        "device_id": "dorm-a-door-04",
                        "rule": "door_held_open",
                        "severity": "warning",
                        "state": "resolved",
                        "message": "",
                        "raised_at": T0,
                        "condition_unknown": False,
                    },
                ],
            )
            conn.execute(
                sa.insert(log),
                [
                    {
                        "subject": subject,
                        "channel": "dorm-a",
                        "event": ev,
                        "status": "sent",
                        "attempts": 1,
                        "title": "",
                        "error": "",
                        "at": at,
                    }
                    for subject, ev, at in (
                        ("alert:12", "raised", T0),
                        ("alert:12", "resolved", later),
                        ("wo:12", "opened", T0),  # a work order's message has no device|rule
                    )
                ],
            )
        command.upgrade(cfg, "0005")
        keyed = sa.table(
            "notification_log",
            *(sa.column(c) for c in ("id", "subject", "event", "flap_key")),
            sa.column("at", UtcDateTime()),
            sa.column("claimed_at", UtcDateTime()),
        )
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    keyed.c.subject, keyed.c.event, keyed.c.flap_key, keyed.c.claimed_at
                ).order_by(keyed.c.id)
            ).all()
        assert [tuple(r) for r in rows] == [
            ("alert:12", "raised", "dorm-a-door-04|door_held_open", T0),
            ("alert:12", "resolved", "dorm-a-door-04|door_held_open", later),
            ("wo:12", "opened", None, T0),
        ]
        command.downgrade(cfg, "0004")
        with engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("notification_log")}
        assert "flap_key" not in columns and "claimed_at" not in columns
    finally:
        engine.dispose()
