"""Notifications through Apprise to a real SMTP server (aiosmtpd) and a real HTTP webhook
receiver: routed by role and building, sent once, throttled into a digest, escalated when
nobody acknowledges."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from core.clock import ManualClock
from server.app import create_app
from server.settings import ServerSettings
from tests.harness import Smtp
from tests.helpers import batch, event, production_site, reading, token, wait_until

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Webhook:
    """A real HTTP server on a free loopback port collecting the JSON it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def site_with_channels(tmp: Path, smtp: Smtp, max_per_hour: int = 30) -> Path:
    doc = yaml.safe_load(production_site(tmp).read_text())

    def mail(to: str) -> str:
        return f"mailto://127.0.0.1:{smtp.port}?from=monitor@campus.test&to={to}&mode=insecure"

    doc["notifications"] = {
        "max_per_hour": max_per_hour,
        "escalation": {"after": "30m", "to": "admin", "remind_every": "30m", "max_reminders": 2},
        "channels": [
            {
                "id": "dorm-a",
                "url": mail("dorm-a@campus.test"),
                "role": "dorm_manager",
                "buildings": ["dorm-a"],
            },
            {
                "id": "dorm-b",
                "url": mail("dorm-b@campus.test"),
                "role": "dorm_manager",
                "buildings": ["dorm-b"],
            },
            {"id": "food", "url": mail("food@campus.test"), "role": "food_safety"},
            {"id": "admin", "url": mail("director@campus.test"), "role": "admin"},
            # The webhook's address comes from the environment, as a secret would.
            {
                "id": "maint-hook",
                "url": "json://127.0.0.1:${CFM_TEST_HOOK_PORT}/hook",
                "role": "maintenance",
                "min_severity": "info",
            },
        ],
    }
    path = tmp / "site-notify.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


@pytest.fixture
def server(
    tmp_path: Path, smtp_server: Smtp, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Any, ManualClock]]:
    monkeypatch.setenv("CFM_TEST_HOOK_PORT", str(webhook.port))
    clock = ManualClock(T0)
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "srv",
        broker="mqtt://127.0.0.1:1",
        site_file=site_with_channels(tmp_path, smtp_server),
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        yield client, client.app.state.ctx, clock  # type: ignore[attr-defined]


def to(smtp: Smtp, address: str) -> list[str]:
    return [m.subject for m in smtp.messages if address in m.rcpt_tos]


def test_dorm_alert_reaches_its_manager_only_and_only_once(server: Any, smtp_server: Smtp) -> None:
    _client, ctx, _clock = server
    held = batch([], [event("dorm-a-door-01", "door_held_open", T0)])
    ctx.processor.handle_batch(held)
    ctx.processor.handle_batch(held)  # a replayed batch
    ctx.notifier.drain()
    wait_until(lambda: to(smtp_server, "dorm-a@campus.test"), 10, "mail to dorm A's manager")
    assert to(smtp_server, "dorm-b@campus.test") == []
    assert len(to(smtp_server, "dorm-a@campus.test")) == 1
    assert "door held open" in to(smtp_server, "dorm-a@campus.test")[0]

    ctx.processor.handle_batch(
        batch([], [event("dorm-a-door-01", "door_closed", T0 + timedelta(minutes=2))])
    )
    ctx.notifier.drain()
    subjects = wait_until(
        lambda: [s for s in to(smtp_server, "dorm-a@campus.test") if "resolved" in s],
        10,
        "resolution mail",
    )
    assert len(subjects) == 1
    assert to(smtp_server, "dorm-b@campus.test") == []
    sent = ctx.registry.get_sample_value("notifications_sent_total", {"channel": "dorm-a"})
    assert sent == 2


def test_cold_storage_alert_to_food_safety_and_work_order_to_the_webhook(
    server: Any, smtp_server: Smtp, webhook: Webhook
) -> None:
    _client, ctx, _clock = server
    warm = [
        reading("canteen-fridge-01", "temperature", 9.5, T0 + timedelta(minutes=m))
        for m in range(0, 35, 5)
    ]
    ctx.processor.handle_batch(batch(warm))
    ctx.notifier.drain()
    wait_until(lambda: to(smtp_server, "food@campus.test"), 10, "mail to food safety")
    assert all("canteen-fridge-01" in s for s in to(smtp_server, "food@campus.test"))
    assert to(smtp_server, "dorm-a@campus.test") == []
    hook = wait_until(lambda: webhook.received, 10, "webhook call")
    assert any("work order" in h["title"] and "refrigeration" in h["message"] for h in hook)


def test_unacknowledged_alert_escalates_then_acknowledgement_stops_reminders(
    server: Any, smtp_server: Smtp
) -> None:
    client, ctx, clock = server
    ctx.processor.handle_batch(batch([], [event("dorm-a-door-02", "door_forced", T0)]))
    clock.set(T0 + timedelta(minutes=20))
    ctx.notifier.tick()
    ctx.notifier.drain()
    assert to(smtp_server, "director@campus.test") == []  # not yet: 30 min

    clock.set(T0 + timedelta(minutes=31))
    ctx.notifier.tick()
    ctx.notifier.tick()  # a second tick changes nothing: escalation is sent once
    ctx.notifier.drain()
    escalated = wait_until(lambda: to(smtp_server, "director@campus.test"), 10, "escalation")
    assert len(escalated) == 1 and "ESCALATED" in escalated[0]
    reminders = [s for s in to(smtp_server, "dorm-a@campus.test") if "REMINDER-1" in s]
    assert len(reminders) == 1
    alert = next(
        a
        for a in client.get("/api/alerts?state=active", headers=token(client, "admin")).json()
        if a["device_id"] == "dorm-a-door-02"
    )
    detail = client.get(f"/api/alerts/{alert['id']}", headers=token(client, "admin")).json()
    assert any(h["action"] == "escalated" for h in detail["history"])

    r = client.post(
        f"/api/alerts/{alert['id']}/ack",
        json={"comment": "guard sent"},
        headers=token(client, "dorm-a"),
    )
    assert r.status_code == 200, r.text
    before = len(smtp_server.messages)
    clock.set(T0 + timedelta(minutes=95))
    ctx.notifier.tick()
    ctx.notifier.drain()
    assert len(smtp_server.messages) == before  # acknowledged: no more reminders


def test_a_flood_is_throttled_into_one_digest(
    tmp_path: Path, smtp_server: Smtp, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFM_TEST_HOOK_PORT", str(webhook.port))
    clock = ManualClock(T0)
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "srv",
        broker="mqtt://127.0.0.1:1",
        site_file=site_with_channels(tmp_path, smtp_server, max_per_hour=2),
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        ctx.processor.handle_batch(
            batch([], [event(f"dorm-a-door-0{i}", "door_forced", T0) for i in range(1, 5)])
        )
        ctx.notifier.drain()
        wait_until(lambda: len(to(smtp_server, "dorm-a@campus.test")) == 2, 10, "two mails")
        assert (
            ctx.registry.get_sample_value("notifications_throttled_total", {"channel": "dorm-a"})
            == 2
        )
        clock.set(T0 + timedelta(minutes=61))  # the hour has passed: room again
        ctx.notifier.tick()
        digest = wait_until(
            lambda: [s for s in to(smtp_server, "dorm-a@campus.test") if "held back" in s],
            10,
            "digest",
        )
        assert digest == ["2 notifications held back (more than 2/h)"]
