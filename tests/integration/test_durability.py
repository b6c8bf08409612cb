"""Nothing lost, nothing doubled, against real faults: the store down under load, the gateway
killed with SIGKILL mid-stream, the broker restarted, the server restarted mid-delay.

Each test numbers the device's messages (seq) and checks the store holds every number once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient

from core.clock import ManualClock
from core.mqtturl import make_client, parse_broker_url
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from server.app import create_app
from server.settings import ServerSettings
from tests.harness import Mosquitto, VictoriaMetrics
from tests.helpers import batch, production_site, reading, token, wait_until
from tests.integration.test_gateway_mqtt import TOPIC

pytestmark = pytest.mark.integration
FRIDGE = "canteen-fridge-03"


class Device:
    """A fridge sensor numbering its messages; QoS 1, queueing while the broker is away."""

    def __init__(self, broker: Mosquitto, name: str = "dur-device") -> None:
        ep = parse_broker_url(broker.url)
        self.client = make_client(ep, name)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        self.client.connect_async(ep.host, ep.port, keepalive=10)
        self.client.loop_start()
        self.base_ms = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
        self.infos: list[mqtt.MQTTMessageInfo] = []

    def send(self, seq: int) -> None:
        # Distinct measurement times, 100 ms apart, in the recent past (trusted clock).
        body = b'{"seq": %d, "ts": %d, "t": %.2f, "door": false, "bat": 90}' % (
            seq,
            self.base_ms + seq * 100,
            3 + (seq % 50) / 100,
        )
        self.infos.append(self.client.publish(TOPIC.format(FRIDGE), body, qos=1))

    def all_published(self) -> bool:
        return all(i.is_published() for i in self.infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sqlite_seqs(db: Path) -> list[int]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            rows = conn.execute(
                "SELECT seq FROM ts_readings WHERE device_id = ? AND metric = 'temperature'",
                (FRIDGE,),
            ).fetchall()
        except sqlite3.OperationalError:
            return []  # table not made yet
    return sorted(r[0] for r in rows)


@pytest.fixture
def device(mosquitto: Mosquitto) -> Iterator[Device]:
    d = Device(mosquitto)
    yield d
    d.close()


def gateway_settings(tmp: Path, broker: Mosquitto, **kw: Any) -> GatewaySettings:
    return GatewaySettings(
        gateway_id="gw-canteen", data_dir=tmp / "gw", device_broker=broker.url, **kw
    )


def test_store_down_under_load_then_back_every_reading_once(
    mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, device: Device, tmp_path: Path
) -> None:
    gw = Gateway(
        gateway_settings(tmp_path, mosquitto, tsdb="influx", influx_url=victoria_metrics.url)
    )
    gw.start()
    n = 600
    selector = f'chilled_fridge_seq{{device="{FRIDGE}"}}'
    try:
        wait_until(lambda: gw.source.connected, 10, "gateway connected")
        for seq in range(1, 201):
            device.send(seq)
        victoria_metrics.wait_for_export(
            selector, lambda s: bool(s) and len(s[0]["values"]) > 50, timeout=20
        )
        victoria_metrics.stop()  # the store goes away while devices keep sending
        for seq in range(201, n + 1):
            device.send(seq)
        wait_until(device.all_published, 20, "device messages taken by the broker")
        wait_until(lambda: gw.outbox.pending("tsdb") > 0, 20, "readings held in the outbox")
        assert gw.uplink.name in gw.sink_names
        victoria_metrics.start()
        series = victoria_metrics.wait_for_export(
            selector, lambda s: bool(s) and len(s[0]["values"]) >= n, timeout=60
        )
    finally:
        gw.stop()
    assert sorted(series[0]["values"]) == list(range(1, n + 1))
    assert len(series[0]["timestamps"]) == len(set(series[0]["timestamps"])) == n
    errors = gw.metrics.registry.get_sample_value(
        "gateway_sink_write_errors_total", {"sink": "tsdb"}
    )
    assert errors and errors >= 1  # the outage was seen, and retried


def test_gateway_killed_mid_stream_loses_and_doubles_nothing(
    mosquitto: Mosquitto, device: Device, tmp_path: Path
) -> None:
    data = tmp_path / "gw"
    env = {
        **os.environ,
        "FACILITY_GATEWAY_GATEWAY_ID": "gw-canteen",
        "FACILITY_GATEWAY_DATA_DIR": str(data),
        "FACILITY_GATEWAY_DEVICE_BROKER": mosquitto.url,
    }
    log = (tmp_path / "gw.log").open("ab")

    def start_gateway() -> subprocess.Popen[bytes]:
        # The installed command, as deployed; structured (JSON) logs.
        facility = Path(sys.executable).with_name("facility")
        return subprocess.Popen(
            [str(facility), "--log-format", "json", "gateway"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def connected_log_lines() -> int:
        return (tmp_path / "gw.log").read_text(errors="replace").count("subscribed to")

    n = 2000
    proc = start_gateway()
    try:
        wait_until(lambda: connected_log_lines() >= 1, 30, "gateway subscribed")
        for seq in range(1, n + 1):
            device.send(seq)
            if seq == 600:
                wait_until(lambda: len(sqlite_seqs(data / "timeseries.db")) > 100, 30, "flowing")
                os.kill(proc.pid, signal.SIGKILL)  # mid-stream, batches in flight
                proc.wait(10)
        wait_until(device.all_published, 30, "broker took every message")
        stored_at_kill = len(sqlite_seqs(data / "timeseries.db"))
        assert stored_at_kill < n
        proc = start_gateway()
        wait_until(lambda: len(sqlite_seqs(data / "timeseries.db")) >= n, 90, "all stored")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        log.close()
    assert sqlite_seqs(data / "timeseries.db") == list(range(1, n + 1))
    lines = (tmp_path / "gw.log").read_text().splitlines()
    logged = [json.loads(line) for line in lines if line.startswith("{")]
    assert any("subscribed to" in e["msg"] for e in logged)
    assert {"ts", "level", "logger", "msg"} <= set(logged[0])


def test_broker_restart_under_the_running_gateway_loses_nothing(
    mosquitto: Mosquitto, device: Device, tmp_path: Path
) -> None:
    """The gateway stays up: its persistent session (clean session off, QoS 1) lets the
    broker redeliver what it had sent but not yet seen acknowledged, and keep what
    arrives for it until it has reconnected."""
    settings = gateway_settings(tmp_path, mosquitto)
    db = settings.data_dir / "timeseries.db"
    gw = Gateway(settings)
    gw.start()
    try:
        wait_until(lambda: gw.source.connected, 10, "gateway connected")
        for seq in range(1, 301):
            device.send(seq)
            if seq == 150:
                mosquitto.restart()  # messages in flight both ways at this moment
        wait_until(lambda: len(sqlite_seqs(db)) >= 300, 60, "everything stored")
    finally:
        gw.stop()
    assert sqlite_seqs(db) == list(range(1, 301))


def test_broker_restart_keeps_the_gateways_queued_messages(
    mosquitto: Mosquitto, device: Device, tmp_path: Path
) -> None:
    settings = gateway_settings(tmp_path, mosquitto)
    db = settings.data_dir / "timeseries.db"
    gw = Gateway(settings)
    gw.start()
    wait_until(lambda: gw.source.connected, 10, "gateway connected")
    for seq in range(1, 101):
        device.send(seq)
    wait_until(lambda: len(sqlite_seqs(db)) == 100, 20, "first hundred stored")
    gw.stop()  # the gateway goes offline; its persistent session stays with the broker
    for seq in range(101, 301):
        device.send(seq)
    wait_until(device.all_published, 20, "queued at the broker")
    mosquitto.restart()  # clean restart: sessions and queued QoS 1 messages are saved
    for seq in range(301, 401):
        device.send(seq)  # the device queues these until the broker is back
    gw = Gateway(settings)
    gw.start()
    try:
        wait_until(lambda: len(sqlite_seqs(db)) >= 400, 60, "everything stored")
    finally:
        gw.stop()
    assert sqlite_seqs(db) == list(range(1, 401))


def test_server_restart_resumes_state_alerts_and_a_half_elapsed_delay(tmp_path: Path) -> None:
    """temp_high_warning waits 30 min above 5 °C; the server restarts 15 min into it."""
    t0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    clock = ManualClock(t0)
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "srv",
        broker="mqtt://127.0.0.1:1",
        site_file=production_site(tmp_path),
    )

    def feed(client: TestClient, readings: list[Any]) -> None:
        client.app.state.ctx.pipeline.handle_batch(batch(readings))  # type: ignore[attr-defined]

    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        feed(
            client,
            [
                reading("canteen-fridge-01", "temperature", 9.0, t0 + timedelta(minutes=m))
                for m in range(0, 35, 5)
            ],
        )  # critical (> 8 °C, 30 min) raised at 30 min
        feed(
            client,
            [
                reading("canteen-fridge-02", "temperature", 6.0, t0 + timedelta(minutes=m))
                for m in range(0, 16, 5)
            ],
        )  # warning pending since t0, 15 min in
        before = client.get("/api/alerts?state=active", headers=token(client, "maint")).json()
    assert sorted((a["device_id"], a["rule"]) for a in before) == [
        ("canteen-fridge-01", "temp_high_critical"),
        ("canteen-fridge-01", "temp_high_warning"),
    ]

    clock.set(t0 + timedelta(minutes=20))
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        maint = token(client, "maint")
        after = client.get("/api/alerts?state=active", headers=maint).json()
        assert sorted(a["id"] for a in after) == sorted(a["id"] for a in before)
        devices = {d["id"]: d for d in client.get("/api/devices", headers=maint).json()}
        assert devices["canteen-fridge-02"]["values"]["temperature"]["value"] == 6.0
        # The delay resumes from t0, not from the restart: 30 min after t0 it is raised.
        feed(client, [reading("canteen-fridge-02", "temperature", 6.1, t0 + timedelta(minutes=25))])
        assert not [
            a
            for a in client.get("/api/alerts?state=active", headers=maint).json()
            if a["device_id"] == "canteen-fridge-02"
        ]
        feed(client, [reading("canteen-fridge-02", "temperature", 6.2, t0 + timedelta(minutes=30))])
        raised = [
            a
            for a in client.get("/api/alerts?state=active", headers=maint).json()
            if a["device_id"] == "canteen-fridge-02"
        ]
        assert [a["rule"] for a in raised] == ["temp_high_warning"]
        assert raised[0]["raised_at"].startswith("2026-11-24T12:30:00")


def test_outbox_at_80_percent_alerts_and_at_the_cap_refuses_without_deleting(
    mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, device: Device, tmp_path: Path
) -> None:
    cap = 300  # items; a fridge message here is 3 readings
    gw = Gateway(
        gateway_settings(
            tmp_path,
            mosquitto,
            tsdb="influx",
            influx_url=victoria_metrics.url,
            outbox_max_pending=cap,
            status_every_s=1.0,
        )
    )
    server = create_app(
        ServerSettings(demo=True, data_dir=tmp_path / "srv", broker=mosquitto.url, tick_seconds=1)
    )
    victoria_metrics.stop()  # the store is down from the start: the outbox fills
    gw.start()
    try:
        with TestClient(server) as client:
            maint = token(client, "maint")

            def outbox_alerts(state: str) -> list[dict[str, Any]]:
                got = client.get(f"/api/alerts?state={state}", headers=maint).json()
                return [a for a in got if a["rule"] == "gateway_outbox_high"]

            wait_until(lambda: gw.source.connected, 10, "gateway connected")
            for seq in range(1, 91):  # 270 items: 90 % of the cap
                device.send(seq)
            wait_until(lambda: gw.outbox.pending("tsdb") == 270, 20, "outbox at 90 %")
            alert = wait_until(lambda: outbox_alerts("active"), 20, "outbox alert")
            assert alert[0]["device_id"] == "gateway:gw-canteen"

            for seq in range(91, 121):  # past the cap: refused, counted; nothing dropped
                device.send(seq)

            def refused() -> float:
                v = gw.metrics.registry.get_sample_value(
                    "gateway_rejections_total", {"reason": "outbox_full"}
                )
                return v or 0.0

            wait_until(lambda: refused() >= 1, 20, "refusals counted")
            assert 270 <= gw.outbox.pending("tsdb") <= cap

            victoria_metrics.start()
            wait_until(lambda: gw.outbox.pending("tsdb") == 0, 60, "outbox drained")
            wait_until(lambda: outbox_alerts("resolved"), 20, "outbox alert resolved")
    finally:
        gw.stop()
    stored = victoria_metrics.export(f'chilled_fridge_seq{{device="{FRIDGE}"}}', start="0")
    # Every message taken before the cap is there: the held data was never deleted.
    assert set(range(1, 91)) <= set(stored[0]["values"])
