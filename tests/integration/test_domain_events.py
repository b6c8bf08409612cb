"""Issue 10 acceptance at the server: a rule's delay runs out on the clock, and a domain-event
listener that raises on every event holds back nothing (ack, live state, alerts) and is
counted on /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from core.clock import ManualClock
from core.wire import data_topic, encode_batch, encode_reading
from server.app import create_app
from server.events.types import DomainEvent
from server.settings import ServerSettings
from tests.harness import Mosquitto
from tests.helpers import batch, production_site, reading, token, wait_until

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
FRIDGE = "canteen-fridge-01"


def hourly_sensor_site(tmp_path: Path) -> Path:
    """Production rules, with the fridge's probe reporting hourly: its offline limit is 3 h."""
    path = production_site(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["rule_overrides"] = [{"rule": "sensor_offline", "device": FRIDGE, "set": {"after": "3h"}}]
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def active_rules(client: TestClient, user: str = "admin") -> set[str]:
    r = client.get("/api/alerts", params={"state": "active"}, headers=token(client, user))
    assert r.status_code == 200, r.text
    return {a["rule"] for a in r.json() if a["device_id"] == FRIDGE}


def test_a_fridge_reporting_9_degrees_once_then_hourly_raises_when_the_delay_runs_out(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path,
        broker="mqtt://127.0.0.1:1",
        site_file=hourly_sensor_site(tmp_path),
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        ctx: Any = client.app.state.ctx  # type: ignore[attr-defined]
        ctx.pipeline.handle_batch(batch([reading(FRIDGE, "temperature", 9.0, T0, seq=1)]))
        clock.set(T0 + timedelta(minutes=29))
        ctx.pipeline.tick(clock.now())
        assert active_rules(client) == set()
        clock.set(T0 + timedelta(minutes=31))
        ctx.pipeline.tick(clock.now())
        r = client.get("/api/alerts", params={"state": "active"}, headers=token(client, "food"))
        raised = {a["rule"]: a for a in r.json()}
        assert set(raised) == {"temp_high_warning", "temp_high_critical"}
        # Dated when the 30-minute delay ran out, not when the sensor next speaks.
        assert raised["temp_high_critical"]["raised_at"] == "2026-11-24T12:30:00Z"
        assert raised["temp_high_critical"]["value"] == 9.0
        orders = client.get("/api/work-orders", headers=token(client, "maint")).json()
        assert [(o["device_id"], o["priority"]) for o in orders] == [(FRIDGE, "P1")]
        # The next hourly reading, still warm, raises nothing new.
        clock.set(T0 + timedelta(minutes=60))
        ctx.pipeline.handle_batch(batch([reading(FRIDGE, "temperature", 9.2, clock.now(), seq=2)]))
        ctx.pipeline.tick(clock.now())
        assert active_rules(client, "food") == {"temp_high_warning", "temp_high_critical"}


@pytest.fixture
def consuming_server(
    tmp_path: Path, mosquitto: Mosquitto
) -> Iterator[tuple[ServerSettings, ManualClock]]:
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path,
        broker=f"mqtt://127.0.0.1:{mosquitto.port}",
        site_file=production_site(tmp_path),
        mqtt_client_id="server-events-test",
        tick_seconds=0.2,
    )
    yield settings, ManualClock(T0 + timedelta(hours=1))


def publish(port: int, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-gateway")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(data_topic("gw-canteen"), payload, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def uplink(first: int, minutes: range, value: float) -> bytes:
    readings = [
        reading(FRIDGE, "temperature", value, T0 + timedelta(minutes=m), seq=m) for m in minutes
    ]
    return encode_batch("gw-canteen", first, first, [encode_reading(r) for r in readings], [])


def test_a_listener_that_raises_on_every_event_holds_back_nothing(
    consuming_server: tuple[ServerSettings, ManualClock], mosquitto: Mosquitto
) -> None:
    settings, clock = consuming_server
    calls: list[str] = []

    def boom(ev: DomainEvent) -> None:
        calls.append(type(ev).__name__)
        raise RuntimeError("a broken consumer")

    with TestClient(create_app(settings, clock=clock), client=("127.0.0.1", 50000)) as client:
        ctx: Any = client.app.state.ctx  # type: ignore[attr-defined]
        ctx.bus.subscribe(DomainEvent, boom, name="boom")
        wait_until(lambda: ctx.consumer.connected, 10, "the server's uplink subscription")
        # 9 °C for 35 minutes in one batch: both temperature alerts raise on event time.
        publish(mosquitto.port, uplink(1, range(0, 40, 5), 9.0))
        wait_until(
            lambda: active_rules(client) == {"temp_high_warning", "temp_high_critical"},
            15,
            "the fridge's alerts despite the failing listener",
        )
        devices = client.get("/api/devices", headers=token(client, "admin")).json()
        device = next(d for d in devices if d["id"] == FRIDGE)
        assert device["values"]["temperature"]["value"] == 9.0 and device["online"]
        metrics = client.get("/metrics").text
        failures = [
            line
            for line in metrics.splitlines()
            if line.startswith("server_event_listener_failures_total{")
            and 'listener="boom"' in line
        ]
        assert any('event="AlertRaised"' in line for line in failures), metrics
        assert any('event="ReadingsAccepted"' in line for line in failures)
        assert {"AlertRaised", "ReadingsAccepted", "DeviceStateChanged"} <= set(calls)
        assert ctx.consumer.batches._value.get() == 1
    # Restart on the same persistent session: a batch left unacknowledged would come back
    # before the next one; only the marker arrives, so the first was acknowledged.
    with TestClient(create_app(settings, clock=clock), client=("127.0.0.1", 50000)) as client:
        ctx = client.app.state.ctx  # type: ignore[attr-defined]
        wait_until(lambda: ctx.consumer.connected, 10, "the restarted server's subscription")
        publish(mosquitto.port, uplink(2, range(40, 41), 9.7))

        def latest() -> float:
            devices = client.get("/api/devices", headers=token(client, "admin")).json()
            value: float = next(d for d in devices if d["id"] == FRIDGE)["values"]["temperature"][
                "value"
            ]
            return value

        wait_until(lambda: latest() == 9.7, 15, "the marker batch")
        assert ctx.consumer.batches._value.get() == 1
