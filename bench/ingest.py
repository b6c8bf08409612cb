"""Gateway ingest benchmark: the whole durable path beside `mosquitto_sub`, on one live stream.

Not a test. Starts its own Mosquitto on a free loopback port (and VictoriaMetrics with
`--store vm`), configures a site of 10,000 fridge sensors, and starts two subscribers of
the device topics, both QoS 1 with persistent sessions:

- `mosquitto_sub -q 1` (the C client, printing to /dev/null), and
- the gateway (`facility gateway`, its own process): MQTT in -> decode by profile ->
  durable outbox (SQLite WAL, on disk before the broker gets its PUBACK) -> time-series
  store (SQLite by default, or VictoriaMetrics through the InfluxDB v2 write API) committed.

Then publisher processes (2 by default, each one paho client for its share of the
devices) send N realistic device messages (3 metrics each: temperature, door, battery; seq
and device time; QoS 1) round-robin over the devices as fast as the broker takes them.
Each subscriber's rate is N over the time from the first publish to its last message
handled: for mosquitto_sub its exit after N messages, for the gateway the store's commit
of the last reading. All of it shares the machine's cores. With `--mode drain` both
sessions are offline while the stream is queued, then each drains its queue alone (from
its first message): the gateway's capacity against mosquitto_sub's.

Prints one line: messages_per_s=N readings_per_s=N ratio_to_mosquitto_sub=R rss_mb=M
(rss = the gateway process's peak resident memory). Run: .venv/bin/python bench/ingest.py
[--messages 200000] [--devices 10000] [--publishers 2] [--mode live|drain]
[--store sql|vm] [--profile FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.mqtturl import make_client, parse_broker_url  # noqa: E402
from tests.harness.services import (  # noqa: E402
    free_port,
    start_mosquitto,
    start_victoria_metrics,
)

TOPIC = "campus/bench/cold/{}/telemetry"
METRICS_PER_MESSAGE = 3


def device_ids(devices: int) -> list[str]:
    return [f"fridge-{i:05d}" for i in range(devices)]


def write_site(path: Path, devices: int) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "site": "bench",
                "name": "benchmark campus",
                "timezone": "Asia/Shanghai",
                "buildings": [{"id": "canteen", "name": "Canteen", "kind": "canteen"}],
                "devices": [
                    {
                        "id": d,
                        "profile": "cfm-sim-fridge",
                        "building": "canteen",
                        "location": d,
                        "gateway": "gw-bench",
                    }
                    for d in device_ids(devices)
                ],
            }
        )
    )


def publish(url: str, n: int, devices: int, part: int, parts: int) -> None:
    """Devices part, part + parts, ... in their own process: prints the start time, then
    sends their share of the N messages."""
    ids = device_ids(devices)[part::parts]
    ep = parse_broker_url(url)
    pub = make_client(ep, f"bench-pub-{part}")
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect(ep.host, ep.port)
    pub.loop_start()
    base = int(datetime.now(UTC).timestamp() * 1000) - n * 5
    print(f"{time.time():.6f}", flush=True)
    info = None
    for i in range(part, n, parts):
        body = b'{"seq": %d, "ts": %d, "t": %.2f, "door": %s, "bat": %d}' % (
            i // devices + 1,
            base + i * 5,
            3.0 + (i % 40) / 20,
            b"true" if i % 17 == 0 else b"false",
            90 - i % 7,
        )
        info = pub.publish(TOPIC.format(ids[(i // parts) % len(ids)]), body, qos=1)
        if i % 1000 == 999:
            info.wait_for_publish(120)  # keep paho's own queue short
    if info is not None:
        info.wait_for_publish(120)
    pub.disconnect()
    pub.loop_stop()


def metric(port: int, name: str, labels: str = "") -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(m.group(1)) / 1024 if m else 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait(pred: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(step)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--store", choices=["sql", "vm"], default="sql")
    ap.add_argument("--profile", help="write py-spy collapsed stacks of the gateway here")
    ap.add_argument(
        "--mode",
        choices=["live", "drain"],
        default="live",
        help="live: both subscribers online during the stream; drain: each drains it queued",
    )
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes")
    ap.add_argument("--publish", help=argparse.SUPPRESS)  # internal: a publisher process
    ap.add_argument("--part", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    n: int = args.messages
    if args.publish:
        publish(args.publish, n, args.devices, args.part, args.publishers)
        return
    sub_exe = shutil.which("mosquitto_sub")
    if sub_exe is None:
        raise SystemExit("mosquitto_sub not found: bash scripts/install-system-deps.sh")

    tmp = Path(tempfile.mkdtemp(prefix="cfm-bench-"))
    # The gateway acks after its outbox commit, so it needs more messages in flight than
    # Mosquitto's default 20 to batch its disk writes (deploy/mosquitto/mosquitto.conf).
    broker = start_mosquitto(tmp, extra_config=["max_inflight_messages 1000"])
    vm = start_victoria_metrics(tmp) if args.store == "vm" else None
    site = tmp / "site.yaml"
    write_site(site, args.devices)
    metrics_port = free_port()
    env = {
        **os.environ,
        "FACILITY_GATEWAY_GATEWAY_ID": "gw-bench",
        "FACILITY_GATEWAY_DATA_DIR": str(tmp / "gw"),
        "FACILITY_GATEWAY_DEVICE_BROKER": broker.url,
        "FACILITY_GATEWAY_SITE_FILE": str(site),
        "FACILITY_GATEWAY_METRICS_PORT": str(metrics_port),
    }
    if vm is not None:
        env |= {"FACILITY_GATEWAY_TSDB": "influx", "FACILITY_GATEWAY_INFLUX_URL": vm.url}
    facility = Path(sys.executable).with_name("facility")
    gw_cmd = [str(facility), "--log-level", "warning", "gateway"]
    procs: list[subprocess.Popen[bytes]] = []
    spy: subprocess.Popen[bytes] | None = None
    readings = n * METRICS_PER_MESSAGE

    def start_gateway() -> subprocess.Popen[bytes]:
        gw = subprocess.Popen(
            gw_cmd,
            env=env,
            stdout=(tmp / "gateway.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(gw)
        return gw

    def stored() -> bool:
        return metric(metrics_port, "gateway_sink_items_total", '{sink="tsdb"}') >= readings

    def start_publishers() -> list[subprocess.Popen[bytes]]:
        pub_args = ["--publish", broker.url, "--messages", str(n), "--devices", str(args.devices)]
        pub_args += ["--publishers", str(args.publishers)]
        publishers = [
            subprocess.Popen(
                [sys.executable, __file__, *pub_args, "--part", str(k)],
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
            for k in range(args.publishers)
        ]
        procs.extend(publishers)
        return publishers

    def profile(pid: int) -> subprocess.Popen[bytes] | None:
        """py-spy (pip install py-spy) samples the gateway's Python while it holds the GIL."""
        if not args.profile:
            return None
        spy_exe = str(Path(sys.executable).with_name("py-spy"))
        spy_args = ["record", "-r", "100", "--gil", "-f", "raw", "-o", args.profile]
        return subprocess.Popen(
            [spy_exe, *spy_args, "--pid", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    try:
        gw = start_gateway()
        wait(lambda: "as facility-gw-gw-bench " in broker.log(), 120, "gateway connected")
        time.sleep(1.0)  # its subscriptions acknowledged
        sub_args = [sub_exe, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-c"]
        sub_args += ["-i", "bench-sub", "-t", "campus/bench/#"]
        subprocess.run([*sub_args, "-E"], check=True, timeout=30)  # its session exists
        if args.mode == "drain":
            # Both sessions are offline while the stream is queued for them; then each
            # drains its queue alone: the gateway's capacity against mosquitto_sub's.
            gw.send_signal(signal.SIGTERM)
            gw.wait(60)
            publishers = start_publishers()
            t0 = min(float(p.stdout.readline()) for p in publishers if p.stdout is not None)
            for p in publishers:
                p.wait(1800)
            pub_end = time.time()
            gw = start_gateway()
            spy = profile(gw.pid)
            received = "gateway_messages_received_total"
            wait(lambda: metric(metrics_port, received, '{transport="mqtt"}') > 0, 300, "start")
            cpu0, gw_start = cpu_s(gw.pid), time.time()
            wait(stored, 1800, "every reading in the store", step=0.2)
            gw_end = time.time()
            rss = peak_rss_mb(gw.pid)
            gw_cpu_us = (cpu_s(gw.pid) - cpu0) / n * 1e6
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
                spy = None
            gw.send_signal(signal.SIGTERM)
            gw.wait(60)
            sub_start = time.time()
            subprocess.run([*sub_args, "-C", str(n)], stdout=subprocess.DEVNULL, timeout=1800)
            sub_end = time.time()
            sub_rate, rate = n / (sub_end - sub_start), n / (gw_end - gw_start)
        else:
            sub = subprocess.Popen(
                [*sub_args, "-C", str(n)], stdout=subprocess.DEVNULL, start_new_session=True
            )
            procs.append(sub)
            spy = profile(gw.pid)
            time.sleep(0.5)
            publishers = start_publishers()
            cpu0 = cpu_s(gw.pid)
            t0 = min(float(p.stdout.readline()) for p in publishers if p.stdout is not None)
            sub_end = gw_end = pub_end = 0.0
            deadline = time.monotonic() + 1800
            while not (sub_end and gw_end):
                if time.monotonic() > deadline:
                    raise SystemExit("bench: timed out (30 min)")
                if not pub_end and all(p.poll() is not None for p in publishers):
                    pub_end = time.time()
                if not sub_end and sub.poll() is not None:
                    sub_end = time.time()
                if gw.poll() is not None:
                    raise SystemExit(f"bench: the gateway exited; log {tmp / 'gateway.log'}")
                if not gw_end and stored():
                    gw_end = time.time()
                time.sleep(0.2)  # each look at the metrics costs the gateway a little
            rss = peak_rss_mb(gw.pid)
            gw_cpu_us = (cpu_s(gw.pid) - cpu0) / n * 1e6
            sub_rate, rate = n / (sub_end - t0), n / (gw_end - t0)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        if vm is not None:
            vm.stop()
        broker.stop()
    print(
        f"# {args.mode}: publishers {n / (pub_end - t0):.0f} messages/s, mosquitto_sub "
        f"{sub_rate:.0f}/s, gateway {gw_cpu_us:.0f} us CPU per message, store {args.store}; "
        f"data in {tmp}",
        file=sys.stderr,
        flush=True,
    )
    print(
        f"messages_per_s={rate:.0f} readings_per_s={rate * METRICS_PER_MESSAGE:.0f} "
        f"ratio_to_mosquitto_sub={rate / sub_rate:.2f} rss_mb={rss:.0f}"
    )


if __name__ == "__main__":
    main()
