"""Gateway ingest benchmark: the whole durable path against `mosquitto_sub`, same stream.

Not a test. Starts its own Mosquitto on a free loopback port, configures a site of 10,000
fridge sensors, and queues a stream of realistic device messages (3 metrics each: temperature,
door, battery; QoS 1) for two persistent sessions: `mosquitto_sub -q 1` and the gateway. Then
each drains the same stream in turn (one at a time, so they do not share the 2 cores):

- mosquitto_sub: until it has received every message (`-C N`);
- the gateway (`facility gateway`, its own process): MQTT in -> decode by profile -> durable
  outbox (SQLite WAL, on disk before the broker gets its PUBACK) -> time-series store (SQLite)
  committed, measured from its first received message to the store's last commit.

Prints one line: messages_per_s=N readings_per_s=N ratio_to_mosquitto_sub=R rss_mb=M
(rss = the gateway process's peak resident memory). Run: .venv/bin/python bench/ingest.py
[--messages 100000] [--devices 10000]
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
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.mqtturl import make_client, parse_broker_url  # noqa: E402
from tests.harness.services import free_port, start_mosquitto  # noqa: E402

TOPIC = "campus/bench/cold/{}/telemetry"
METRICS_PER_MESSAGE = 3


def write_site(path: Path, devices: int) -> list[str]:
    ids = [f"fridge-{i:05d}" for i in range(devices)]
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
                    for d in ids
                ],
            }
        )
    )
    return ids


def gateway_env(url: str, data: Path, site: Path, metrics_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "FACILITY_GATEWAY_GATEWAY_ID": "gw-bench",
        "FACILITY_GATEWAY_DATA_DIR": str(data),
        "FACILITY_GATEWAY_DEVICE_BROKER": url,
        "FACILITY_GATEWAY_SITE_FILE": str(site),
        "FACILITY_GATEWAY_METRICS_PORT": str(metrics_port),
        "FACILITY_LOG_LEVEL": "warning",
    }


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


def start_gateway(
    env: dict[str, str], log: Path, profile: str | None = None
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "facility.cli", "--log-level", "warning", "gateway"]
    if profile:  # py-spy (pip install py-spy) samples the gateway: collapsed stacks
        cmd = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", profile, "--", *cmd]
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait(pred: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--profile", help="write py-spy collapsed stacks of the gateway here")
    args = ap.parse_args()
    n = args.messages
    sub_exe = shutil.which("mosquitto_sub")
    if sub_exe is None:
        raise SystemExit("mosquitto_sub not found: bash scripts/install-system-deps.sh")

    tmp = Path(tempfile.mkdtemp(prefix="cfm-bench-"))
    # A gateway acks after its outbox commit, so it needs more messages in flight than
    # the default 20 to batch its disk writes (deploy/mosquitto/mosquitto.conf sets this).
    broker = start_mosquitto(tmp, extra_config=["max_inflight_messages 1000"])
    site = tmp / "site.yaml"
    ids = write_site(site, args.devices)
    metrics_port = free_port()
    env = gateway_env(broker.url, tmp / "gw", site, metrics_port)
    log = tmp / "gateway.log"
    try:
        # 1. Both persistent sessions exist before the stream starts.
        gw = start_gateway(env, log)
        wait(lambda: "as facility-gw-gw-bench " in broker.log(), 120, "gateway subscribed")
        time.sleep(1.0)
        gw.send_signal(signal.SIGTERM)
        gw.wait(30)
        sub_args = [
            sub_exe,
            "-h",
            "127.0.0.1",
            "-p",
            str(broker.port),
            "-q",
            "1",
            "-c",
            "-i",
            "bench-sub",
            "-t",
            "campus/bench/#",
        ]
        subprocess.run([*sub_args, "-E"], check=True, timeout=30)

        # 2. The stream: N messages, round-robin over the devices, queued for both sessions.
        ep = parse_broker_url(broker.url)
        pub = make_client(ep, "bench-pub")
        pub.max_inflight_messages_set(1000)
        pub.max_queued_messages_set(0)
        pub.connect(ep.host, ep.port)
        pub.loop_start()
        base = int(datetime.now(UTC).timestamp() * 1000) - n * 10
        infos: list[mqtt.MQTTMessageInfo] = []
        for i in range(n):
            dev = ids[i % len(ids)]
            body = b'{"seq": %d, "ts": %d, "t": %.2f, "door": %s, "bat": %d}' % (
                i // len(ids) + 1,
                base + i * 10,
                3.0 + (i % 40) / 20,
                b"true" if i % 17 == 0 else b"false",
                90 - i % 7,
            )
            infos.append(pub.publish(TOPIC.format(dev), body, qos=1))
            if len(infos) >= 1000:  # keep paho's own queue small
                for info in infos:
                    info.wait_for_publish(60)
                infos.clear()
        for info in infos:
            info.wait_for_publish(60)
        pub.disconnect()
        pub.loop_stop()

        # 3. mosquitto_sub drains its copy.
        t0 = time.monotonic()
        subprocess.run(
            [*sub_args, "-C", str(n)], check=True, timeout=600, stdout=subprocess.DEVNULL
        )
        sub_s = time.monotonic() - t0

        # 4. The gateway drains its copy into the store.
        readings = n * METRICS_PER_MESSAGE
        gw = start_gateway(env, log, args.profile)
        wait(
            lambda: (
                metric(metrics_port, "gateway_messages_received_total", '{transport="mqtt"}') > 0
            ),
            120,
            "first message",
        )
        t0 = time.monotonic()
        wait(
            lambda: metric(metrics_port, "gateway_sink_items_total", '{sink="tsdb"}') >= readings,
            900,
            "every reading in the store",
        )
        gw_s = time.monotonic() - t0
        rss = peak_rss_mb(gw.pid)
        gw.send_signal(signal.SIGTERM)
        gw.wait(30)
    finally:
        broker.stop()
    sub_rate = n / sub_s
    rate = n / gw_s
    print(
        f"messages_per_s={rate:.0f} readings_per_s={rate * METRICS_PER_MESSAGE:.0f} "
        f"ratio_to_mosquitto_sub={rate / sub_rate:.2f} rss_mb={rss:.0f}"
    )
    print(f"# mosquitto_sub: {sub_rate:.0f} messages/s; data in {tmp}", file=sys.stderr)


if __name__ == "__main__":
    main()
