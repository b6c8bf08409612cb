"""The gateway as the processes it runs as: `facility gateway` and its sink process (the
time-series sink, gateway/sinks/worker.py), started and stopped as one command, against a
real Mosquitto and store.

- SIGTERM stops both, in order, and loses nothing;
- SIGKILL of the whole process group mid-stream, then a restart: every reading the broker
  acknowledged to the device is stored once;
- a sink process killed on its own is started again, counted on the gateway's /metrics,
  and nothing it had in hand is lost or doubled;
- what the sink process sees (items taken, write errors, its log lines) reaches the
  gateway's /metrics endpoint and log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import Mosquitto, VictoriaMetrics, descendants, free_port
from tests.helpers import wait_until
from tests.integration.test_durability import FRIDGE, Device, sqlite_seqs

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


class GatewayCommand:
    """`facility gateway` as deployed: its own process group, JSON log to a file."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.log_path = tmp / "gateway.log"
        self.env = env
        self.metrics_port = int(env["FACILITY_GATEWAY_METRICS_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        facility = Path(sys.executable).with_name("facility")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(facility), "--log-format", "json", "gateway"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.proc

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sink_process(self) -> int:
        """The pid of its running sink process (waits for one)."""

        def one() -> int | None:
            found = [p for p in descendants(self.pid) if alive(p)]
            return found[0] if len(found) == 1 else None

        pid = wait_until(one, 30, "the gateway's sink process")
        assert pid is not None
        assert "gateway.sinks.worker" in Path(f"/proc/{pid}/cmdline").read_text()
        return pid

    def metrics(self) -> dict[str, float]:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        return {
            m.group(1): float(m.group(2))
            for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", text, re.M)
        }

    def subscribed(self) -> int:
        return self.log().count("subscribed to")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def device(mosquitto: Mosquitto) -> Iterator[Device]:
    d = Device(mosquitto, "proc-device")
    yield d
    d.close()


@pytest.fixture
def gateway_env(mosquitto: Mosquitto, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "FACILITY_GATEWAY_GATEWAY_ID": "gw-canteen",
        "FACILITY_GATEWAY_DATA_DIR": str(tmp_path / "gw"),
        "FACILITY_GATEWAY_DEVICE_BROKER": mosquitto.url,
        "FACILITY_GATEWAY_METRICS_PORT": str(free_port()),
    }


def test_sigterm_stops_the_gateway_and_its_sink_process_and_loses_nothing(
    gateway_env: dict[str, str], device: Device, tmp_path: Path
) -> None:
    gw = GatewayCommand(tmp_path, gateway_env)
    gw.start()
    db = tmp_path / "gw" / "timeseries.db"
    try:
        wait_until(lambda: gw.subscribed() >= 1, 30, "gateway subscribed")
        sink = gw.sink_process()
        for seq in range(1, 301):
            device.send(seq)
        wait_until(device.all_published, 30, "broker took every message")
        os.kill(gw.pid, signal.SIGTERM)  # the main process only, as a terminal or kill does
        assert gw.proc is not None
        assert gw.proc.wait(40) == 0
        assert not alive(sink), "the sink process outlived its gateway"
        # What was acknowledged before the stop is either stored or still in the outbox.
        gw.start()
        wait_until(lambda: len(sqlite_seqs(db)) >= 300, 60, "everything stored")
    finally:
        gw.stop()
    assert sqlite_seqs(db) == list(range(1, 301))


def test_whole_gateway_killed_mid_stream_then_restarted_stores_every_reading_once(
    gateway_env: dict[str, str], device: Device, tmp_path: Path
) -> None:
    gw = GatewayCommand(tmp_path, gateway_env)
    db = tmp_path / "gw" / "timeseries.db"
    n = 3000
    gw.start()
    try:
        wait_until(lambda: gw.subscribed() >= 1, 30, "gateway subscribed")
        sink = gw.sink_process()
        for seq in range(1, n + 1):
            device.send(seq)
            if seq == 1000:
                wait_until(lambda: len(sqlite_seqs(db)) > 100, 30, "readings flowing")
                os.killpg(gw.pid, signal.SIGKILL)  # gateway and sink process, mid-batch
                assert gw.proc is not None
                gw.proc.wait(10)
                wait_until(lambda: not alive(sink), 10, "the sink process gone")
        wait_until(device.all_published, 30, "broker took every message")
        assert len(sqlite_seqs(db)) < n
        gw.start()
        wait_until(lambda: len(sqlite_seqs(db)) >= n, 90, "every reading stored")
    finally:
        gw.stop()
    assert sqlite_seqs(db) == list(range(1, n + 1))


def test_a_killed_sink_process_is_started_again_counted_and_loses_nothing(
    gateway_env: dict[str, str],
    device: Device,
    victoria_metrics: VictoriaMetrics,
    tmp_path: Path,
) -> None:
    """InfluxDB's v2 write API (victoria-metrics): the store that counts a doubled point."""
    env = gateway_env | {
        "FACILITY_GATEWAY_TSDB": "influx",
        "FACILITY_GATEWAY_INFLUX_URL": victoria_metrics.url,
    }
    gw = GatewayCommand(tmp_path, env)
    selector = f'chilled_fridge_seq{{device="{FRIDGE}"}}'
    n = 2000
    gw.start()
    try:
        wait_until(lambda: gw.subscribed() >= 1, 30, "gateway subscribed")
        first = gw.sink_process()
        wait_until(lambda: "gateway_sink_process_restarts_total" in gw.metrics(), 30, "metrics")
        assert gw.metrics()["gateway_sink_process_restarts_total"] == 0
        for seq in range(1, n + 1):
            device.send(seq)
            if seq == 700:
                victoria_metrics.wait_for_export(
                    selector, lambda s: bool(s) and len(s[0]["values"]) > 100, timeout=30
                )
                os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: gw.metrics().get("gateway_sink_process_restarts_total") == 1,
            30,
            "the restart counted on /metrics",
        )
        second = gw.sink_process()
        assert second != first
        series = victoria_metrics.wait_for_export(
            selector, lambda s: bool(s) and len(s[0]["values"]) >= n, timeout=60
        )
        assert gw.proc is not None and gw.proc.poll() is None  # the gateway itself stayed up
        taken = gw.metrics()['gateway_sink_items_total{sink="tsdb"}']
        assert taken >= 3 * n  # the sink process's count, on the gateway's endpoint
    finally:
        gw.stop()
    assert sorted(series[0]["values"]) == list(range(1, n + 1))
    assert len(series[0]["timestamps"]) == len(set(series[0]["timestamps"])) == n
    assert re.search(r'"msg": "sink process for tsdb exited \(code -9\)', gw.log())


def test_the_sink_process_reports_errors_and_log_lines_through_the_gateway(
    gateway_env: dict[str, str],
    device: Device,
    victoria_metrics: VictoriaMetrics,
    tmp_path: Path,
) -> None:
    env = gateway_env | {
        "FACILITY_GATEWAY_TSDB": "influx",
        "FACILITY_GATEWAY_INFLUX_URL": victoria_metrics.url,
    }
    victoria_metrics.stop()  # the store is down: the sink process fails, retries and says so
    gw = GatewayCommand(tmp_path, env)
    gw.start()
    try:
        wait_until(lambda: gw.subscribed() >= 1, 30, "gateway subscribed")
        for seq in range(1, 51):
            device.send(seq)
        wait_until(
            lambda: gw.metrics().get('gateway_sink_write_errors_total{sink="tsdb"}', 0) >= 1,
            30,
            "the write error counted on the gateway's /metrics",
        )
        assert gw.metrics()['gateway_outbox_pending{sink="tsdb"}'] > 0
        wait_until(lambda: "sink tsdb: tsdb: NewConnectionError" in gw.log(), 10, "logged")
        line = next(x for x in gw.log().splitlines() if "Connection refused" in x)
        assert '"logger": "gateway.sinks.loop"' in line  # the sink process's own logger
        assert '"thread": "sink-process/MainThread"' in line
        victoria_metrics.start()
        wait_until(
            lambda: gw.metrics().get('gateway_outbox_pending{sink="tsdb"}', 1) == 0,
            60,
            "the outbox drained once the store is back",
        )
    finally:
        gw.stop()
