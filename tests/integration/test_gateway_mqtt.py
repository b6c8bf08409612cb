"""Gateway against a real Mosquitto: good payloads reach the store and the uplink; bad ones
are rejected with a counted reason and disturb nothing else; its retained status says when
the outbox falls behind and which serial devices stopped answering."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import create_engine, select

from core import tsdb_schema as ts
from core.clock import utcnow
from core.mqtturl import make_client, parse_broker_url
from core.profiles import load_profiles
from core.site import DeviceConfig
from core.wire import (
    DATA_SUBSCRIPTION,
    OUTBOX_ALERT_FILL,
    OUTBOX_CLEAR_FILL,
    STATUS_SUBSCRIPTION,
    decode_batch,
    wire_reading,
)
from gateway.app import Gateway
from gateway.health import HealthReporter
from gateway.metrics import GatewayMetrics
from gateway.outbox.outbox import Outbox
from gateway.settings import GatewaySettings
from gateway.sinks.uplink_mqtt import UplinkSink
from gateway.sources.serial.targets import PollTarget
from tests.helpers import wait_until

pytestmark = pytest.mark.integration
TOPIC = "campus/demo/cold/{}/telemetry"


class Uplink:
    """Collects what the gateway sends upstream."""

    def __init__(self, url: str) -> None:
        self.readings: dict[str, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        ep = parse_broker_url(url)
        self.client = make_client(ep, "test-uplink")
        self.client.on_message = self._on_message
        self.client.connect(ep.host, ep.port)
        self.client.subscribe([(DATA_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)])
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            if msg.topic.endswith("/status"):
                self.statuses.append(orjson.loads(msg.payload))
            else:
                for r in decode_batch(bytes(msg.payload)).readings:
                    self.readings[r.reading_id] = {"d": r.device_id, "m": r.metric, "v": r.value}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publisher(url: str) -> mqtt.Client:
    ep = parse_broker_url(url)
    client = make_client(ep, "test-device")
    client.connect(ep.host, ep.port)
    client.loop_start()
    return client


def publish(client: mqtt.Client, topic: str, payload: bytes) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(5)


@pytest.fixture
def gateway(mosquitto: Any, tmp_path: Path) -> Any:
    settings = GatewaySettings(
        gateway_id="gw-canteen", data_dir=tmp_path / "gw", device_broker=mosquitto.url
    )
    gw = Gateway(settings)
    uplink = Uplink(mosquitto.url)
    gw.start()
    wait_until(lambda: gw.source.connected and gw.uplink.connected, 10, "gateway connected")
    yield gw, uplink, settings
    gw.stop()
    uplink.close()


def stored(settings: GatewaySettings) -> list[tuple[str, str, float]]:
    engine = create_engine(settings.sql_url())
    with engine.connect() as conn:
        rows = conn.execute(
            select(ts.readings.c.device_id, ts.readings.c.metric, ts.readings.c.value_num)
        ).all()
    engine.dispose()
    return [(str(d), str(m), float(v)) for d, m, v in rows]


def rejected(gw: Gateway, reason: str) -> float:
    value = gw.metrics.registry.get_sample_value("gateway_rejections_total", {"reason": reason})
    return value or 0.0


def test_good_and_bad_payloads(gateway: Any, mosquitto: Any) -> None:
    gw, uplink, settings = gateway
    dev = publisher(mosquitto.url)
    ts_ms = int(utcnow().timestamp() * 1000)
    bad = {
        "not_json": (TOPIC.format("canteen-fridge-02"), b"{temperature: 3"),
        "wrong_type": (TOPIC.format("canteen-fridge-02"), b'{"seq": 1, "t": "cold"}'),
        "not_finite": (TOPIC.format("canteen-fridge-02"), b'{"seq": 2, "t": NaN}'),
        "out_of_range": (TOPIC.format("canteen-fridge-02"), b'{"seq": 3, "t": 412.0}'),
        "unknown_device": (TOPIC.format("ghost-fridge-09"), b'{"seq": 1, "t": 3.0}'),
        "unknown_topic": ("campus/demo/boiler/b1/telemetry", b'{"t": 60}'),
    }
    publish(
        dev,
        TOPIC.format("canteen-fridge-01"),
        b'{"seq": 1, "ts": %d, "t": 3.5, "door": false, "bat": 90}' % ts_ms,
    )
    for topic, payload in bad.values():
        publish(dev, topic, payload)
    publish(
        dev,
        TOPIC.format("canteen-fridge-01"),
        b'{"seq": 2, "ts": %d, "t": 3.7, "door": true, "bat": 90}' % (ts_ms + 1000),
    )
    dev.loop_stop()

    wait_until(lambda: len(stored(settings)) == 6, 15, "6 good readings in the store")
    wait_until(lambda: len(uplink.readings) == 6, 15, "6 good readings on the uplink")
    assert sorted(v for d, m, v in stored(settings) if m == "temperature") == [3.5, 3.7]
    assert {r["d"] for r in uplink.readings.values()} == {"canteen-fridge-01"}
    for reason in bad:
        assert rejected(gw, reason) == 1, reason
    assert uplink.statuses and uplink.statuses[-1]["state"] == "online"
    assert "canteen-fridge-01" in uplink.statuses[-1]["devices"]


def test_redelivered_message_is_stored_once(gateway: Any, mosquitto: Any) -> None:
    gw, uplink, settings = gateway
    dev = publisher(mosquitto.url)
    ts_ms = int(utcnow().timestamp() * 1000)
    payload = b'{"seq": 9, "ts": %d, "t": 4.0}' % ts_ms
    for _ in range(3):  # what a device retrying an unacknowledged QoS 1 publish does
        publish(dev, TOPIC.format("canteen-fridge-03"), payload)
    dev.loop_stop()
    wait_until(
        lambda: (
            gw.outbox.pending("tsdb") == 0
            and gw.metrics.registry.get_sample_value(
                "gateway_messages_received_total", {"transport": "mqtt"}
            )
            == 3
        ),
        10,
        "3 messages taken",
    )
    wait_until(lambda: gw.outbox.pending("uplink") == 0, 10, "uplink drained")
    assert stored(settings) == [("canteen-fridge-03", "temperature", 4.0)]
    assert len(uplink.readings) == 1


def test_status_is_published_when_the_outbox_crosses_the_shared_levels(
    mosquitto: Any, tmp_path: Path
) -> None:
    """The retained status goes out at once when the outbox passes OUTBOX_ALERT_FILL, stays
    "high" until it is back under OUTBOX_CLEAR_FILL (the server's own levels, core.wire), and
    when a serial device stops answering; otherwise only every `every_s` (a manual clock)."""
    assert OUTBOX_CLEAR_FILL < OUTBOX_ALERT_FILL
    cap = 100
    outbox = Outbox(tmp_path / "outbox.db", ["tsdb"], max_pending=cap)
    meter = PollTarget(
        DeviceConfig(id="meter-1", profile="eastron-sdm120", building="b", location="x"),
        load_profiles()["eastron-sdm120"],
    )
    listener = Uplink(mosquitto.url)
    uplink = UplinkSink(parse_broker_url(mosquitto.url), "gw-health", ["meter-1"])
    uplink.start()
    reporter = HealthReporter(
        fill=outbox.fill_ratio,
        uplink=uplink,
        serial_targets=[meter],
        metrics=GatewayMetrics(),
        every_s=60,
        cap=cap,
    )

    def fill_to(share: float) -> None:
        """Append or let the sink take items until the outbox holds `share` of its cap."""
        want = round(share * cap)
        held = outbox.pending("tsdb")
        if want > held:
            outbox.append_wire(
                [
                    wire_reading(f"d/m/{i}", "d", "m", 1.0, i, i, None, None, None)
                    for i in range(outbox.head, outbox.head + want - held)
                ],
                [],
            )
        else:
            outbox.commit("tsdb", outbox.head - want)

    try:
        wait_until(lambda: uplink.connected, 10, "uplink connected")
        t = 1000.0
        steps: list[tuple[float, bool]] = []
        for share, online in [
            (0.0, True),  # first look: always said
            (0.0, True),  # nothing new
            (OUTBOX_ALERT_FILL - 0.01, True),  # just under: still nothing to say
            (OUTBOX_ALERT_FILL, True),  # crossed: said at once
            (OUTBOX_CLEAR_FILL, True),  # down, but not under the clear level: still high
            (OUTBOX_CLEAR_FILL - 0.01, True),  # cleared: said at once
            (OUTBOX_CLEAR_FILL - 0.01, False),  # the meter stopped answering
        ]:
            fill_to(share)
            meter.online = online
            t += 1
            steps.append((outbox.fill_ratio(), reporter.check(t)))
        assert [sent for _fill, sent in steps] == [True, False, False, True, False, True, True]
        assert not reporter.check(t + 59)
        assert reporter.check(t + 60)  # nothing changed for a minute: said again anyway

        def said() -> list[dict[str, Any]]:
            with listener.lock:
                return [s for s in listener.statuses if s["gateway_id"] == "gw-health"]

        # The uplink says "online" itself on connecting; then the five statuses above.
        wait_until(lambda: len(said()) >= 6, 10, "statuses on the broker")
        fills = [s["outbox_fill"] for s in said()[-5:]]
        assert fills == pytest.approx([0.0, OUTBOX_ALERT_FILL] + [OUTBOX_CLEAR_FILL - 0.01] * 3)
        assert [s["offline_devices"] for s in said()[-5:]] == [[], [], [], ["meter-1"], ["meter-1"]]
        assert {s["state"] for s in said()} == {"online"}
    finally:
        uplink.close()
        listener.close()
        outbox.close()
