"""Three `facility server` workers share the uplink through a real RabbitMQ; one is killed
with SIGKILL mid-stream (issue 15).

The same replay (6 gateways, 48 fridges, 80 minutes of readings each, eight of them too warm
for 40 minutes) goes once through the pipeline in this process (the one-worker run) and once
through the cluster. The cluster must end with the same alerts (device, rule, raised, resolved)
and work orders, none doubled, and every device's messages counted in order: each fridge
numbers its messages, and a message processed out of order would show as a gap or be
skipped (server/ingest/completeness.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, text

from core.clock import utcnow
from core.readings import unix_ms
from core.wire import decode_batch
from server.app import build_context
from server.settings import ServerSettings
from tests.harness import RabbitMQ, free_port
from tests.helpers import wait_until

GATEWAYS = 6
PER_GW = 8
MINUTES = 80
HOT = range(20, 60)  # minutes a fault fridge reads 9.5 °C
SECRET = "workers-test-secret-0123456789abcdef"


def _site(path: Path) -> list[str]:
    devices = [f"fridge-{g}-{i}" for g in range(GATEWAYS) for i in range(PER_GW)]
    path.write_text(
        yaml.safe_dump(
            {
                "site": "cluster",
                "name": "cluster test",
                "timezone": "Asia/Shanghai",
                "buildings": [{"id": "canteen", "name": "Canteen", "kind": "canteen"}],
                "devices": [
                    {
                        "id": d,
                        "profile": "cfm-sim-fridge",
                        "building": "canteen",
                        "location": d,
                        "gateway": f"gw-{d.split('-')[1]}",
                    }
                    for d in devices
                ],
            }
        )
    )
    return devices


def _replay(devices: list[str]) -> list[tuple[str, bytes]]:
    """(topic, payload) in publishing order: per gateway, 5 minutes of its fridges a batch."""
    # Measured over the last 80 minutes, received now (a gateway's buffer after an outage):
    # no fridge has been silent long enough for its offline rule while the clock ticks.
    received = unix_ms(utcnow())
    start = received - (MINUTES + 1) * 60_000
    out = []
    pos = dict.fromkeys(range(GATEWAYS), 0)
    for m0 in range(0, MINUTES, 5):
        for g in range(GATEWAYS):
            readings: list[dict[str, Any]] = []
            for m in range(m0, m0 + 5):
                t = start + m * 60_000
                for d in devices[g * PER_GW : (g + 1) * PER_GW]:
                    fault = d.endswith("-0") or d.endswith("-1")
                    v = 9.5 if fault and m in HOT else 3.5
                    readings.append(
                        {"id": f"{d}/temperature@{t}", "d": d, "m": "temperature", "v": v}
                        | {"u": "°C", "t": t, "r": received, "s": m + 1}
                    )
            first = pos[g] + 1
            pos[g] += len(readings)
            body = {"v": 1, "gw": f"gw-{g}", "first": first, "last": pos[g]}
            out.append((f"facility/v1/gw/gw-{g}/data", orjson.dumps(body | {"readings": readings})))
    return out


def _outcome(
    url: str,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    engine = create_engine(url)
    with engine.connect() as c:
        alerts = c.execute(
            text("SELECT device_id, rule, raised_at, resolved_at FROM alerts ORDER BY 1, 2, 3")
        ).all()
        orders = c.execute(
            text(
                "SELECT w.device_id, w.category, w.priority, a.rule FROM work_orders w "
                "JOIN alerts a ON a.id = w.alert_id ORDER BY 1, 2, 3, 4"
            )
        ).all()
        counts = c.execute(
            text("SELECT id, received, seq_gaps, last_seq FROM devices ORDER BY id")
        ).all()
    engine.dispose()
    norm = [(a[0], a[1], str(a[2])[:19], str(a[3])[:19]) for a in alerts]
    return norm, [tuple(o) for o in orders], [tuple(x) for x in counts]


@pytest.fixture
def workers(
    tmp_path: Path, rabbitmq: RabbitMQ, postgres_url: str
) -> Iterator[tuple[list[subprocess.Popen[bytes]], Path]]:
    site = tmp_path / "site.yaml"
    _site(site)
    env = {
        **os.environ,
        "FACILITY_SERVER_DATABASE_URL": postgres_url,
        "FACILITY_SERVER_SITE_FILE": str(site),
        "FACILITY_SERVER_DATA_DIR": str(tmp_path / "server"),
        "FACILITY_SERVER_SECRET_KEY": SECRET,
        "FACILITY_SERVER_UPLINK": "rabbitmq",
        "FACILITY_SERVER_AMQP_URL": rabbitmq.amqp_url,
        "FACILITY_SERVER_PARTITIONS": "6",
        "FACILITY_SERVER_PARTITION_GRACE": "PT3S",
        "FACILITY_SERVER_TICK_SECONDS": "1",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(3):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "facility.cli", "server", *worker_args(port, i)],
                    env=env,
                    stdout=(tmp_path / f"worker-{i}.log").open("ab"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            health = f"http://127.0.0.1:{port}/healthz"
            wait_until(partial(_up, health), 60, f"worker {i} up")  # one migrates at a time
        yield procs, site
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def worker_args(port: int, i: int) -> list[str]:
    return ["--port", str(port), "--worker-index", str(i), "--workers", "3"]


def _up(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _received(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as c:
        n = int(c.execute(text("SELECT coalesce(sum(received), 0) FROM devices")).scalar_one())
    engine.dispose()
    return n


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_kill_one_of_three_workers_mid_stream(
    tmp_path: Path, rabbitmq: RabbitMQ, postgres_url: str, workers: Any
) -> None:
    procs, site = workers
    devices = _site(site)
    replay = _replay(devices)
    total = len(devices) * MINUTES

    # The one-worker run: the same batches through the pipeline in this process.
    alone = ServerSettings(
        database_url=f"sqlite:///{tmp_path / 'alone.db'}",
        site_file=site,
        data_dir=tmp_path / "alone",
        secret_key=SECRET,
    )
    ctx = build_context(alone)
    for _topic, payload in replay:
        ctx.pipeline.handle_batch(decode_batch(payload))
    ctx.engine.dispose()
    expected = _outcome(f"sqlite:///{tmp_path / 'alone.db'}")

    gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-gateways")
    gw.connect(rabbitmq.host, rabbitmq.mqtt_port)
    gw.loop_start()
    try:
        half = len(replay) // 2
        for topic, payload in replay[:half]:
            gw.publish(topic, payload, qos=1).wait_for_publish(10)
        wait_until(lambda: _received(postgres_url) > total // 5, 60, "a fifth processed")
        procs[0].kill()  # SIGKILL: no goodbye, whatever it held is redelivered
        procs[0].wait(10)
        for topic, payload in replay[half:]:
            gw.publish(topic, payload, qos=1).wait_for_publish(10)
        wait_until(lambda: _received(postgres_url) >= total, 120, "every message counted")
    finally:
        gw.loop_stop()
        gw.disconnect()
    alerts, orders, counts = _outcome(postgres_url)
    assert alerts == expected[0]
    assert orders == expected[1]
    assert len(alerts) == 2 * 2 * GATEWAYS  # warning + critical for two fridges a gateway
    # In order, each message once: every fridge counted all its messages and no gap.
    assert counts == [(d, MINUTES, 0, MINUTES) for d in sorted(devices)]
    assert counts == expected[2]
