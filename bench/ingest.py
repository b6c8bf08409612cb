"""Gateway ingest benchmark: the whole durable path against `mosquitto_sub`, same stream.

Not a test. Starts its own Mosquitto on a free loopback port, configures a site of 10,000
fridge sensors, and offers a stream of realistic device messages (one topic per device; 3
metrics each: temperature, door, battery; device sequence number and clock; QoS 1) at a
steady rate, 23,000 messages/s by default (what `mosquitto_sub` takes on a 2-core machine).
The same stream is offered twice, to one subscriber at a time, so they never share the cores:

1. `mosquitto_sub -q 1`: timed from the first publish to its last message;
2. the gateway (`facility gateway`, its own process): MQTT in -> decode by profile ->
   durable outbox (SQLite WAL, on disk before the broker gets its PUBACK) -> time-series
   store committed (InfluxDB v2 write API by default, served by Debian's victoria-metrics;
   `--store sqlite` for the embedded SQL store); timed from the first publish to the
   store's commit of the last reading (the gateway's `gateway_sink_items_total`, polled).
   Then every reading is counted back out of the store: a run that lost or doubled one
   fails instead of printing a figure.

A subscriber slower than the stream leaves the rest queued at the broker (its persistent
session) and is timed until it has drained it, so the rate is what it sustains.

Prints one line: messages_per_s=N readings_per_s=N ratio_to_mosquitto_sub=R rss_mb=M
(rss = the gateway's peak resident memory, all its processes together: the sum of each
process's peak, the gateway and its sink process), and the details on stderr, among them
the CPU the gateway spent on the stream (both processes), the broker's and the store's: on
a busy machine steadier figures than the rates.
Run: .venv/bin/python bench/ingest.py [--messages 200000] [--rate 23000] [--devices 10000]
     [--store influx|sqlite] [--profile stacks.txt]

The stream is sent as pre-built MQTT 3.1.1 packets on a plain socket: paho spends about
100 us of CPU per publish here, so a paho publisher could offer only ~10,000 messages/s
and would take a core from the subscriber under test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness import (  # noqa: E402
    Mosquitto,
    VictoriaMetrics,
    descendants,
    free_port,
    start_mosquitto,
    start_victoria_metrics,
)

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


def metrics(port: int) -> dict[str, float]:
    """The gateway's Prometheus samples by name and labels; empty while it is not up."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", text, re.M)
    }


def all_stored(port: int, readings: int) -> bool:
    """The gateway accepted every reading, and its store took every item (readings and the
    device events it derived, door openings here) it accepted."""
    m = metrics(port)
    accepted = m.get("gateway_readings_accepted_total", 0.0)
    items = accepted + m.get("gateway_events_accepted_total", 0.0)
    return accepted >= readings and m.get('gateway_sink_items_total{sink="tsdb"}', 0.0) >= items


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used: what a run costs, whatever else the machine
    was doing (the rates above depend on the cores being free). 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    m = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(m.group(1)) / 1024 if m else 0.0


def process_group(pid: int) -> list[int]:
    """`pid` and its descendants (the gateway and its sink process)."""
    return [pid, *descendants(pid)]


class GroupWatch:
    """Peak memory and CPU of a process and its children, looked at every 0.2 s (a child
    that is gone keeps the peak and CPU last seen)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.cpu_start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def look(self) -> None:
        for p in process_group(self.pid):
            self.peak[p] = max(self.peak.get(p, 0.0), peak_rss_mb(p))
            cpu = cpu_seconds(p)
            if cpu:
                self.cpu[p] = cpu

    def start(self) -> None:
        self.look()
        self.cpu_start = dict(self.cpu)  # start-up (profiles, site) is not the stream's
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.look()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.look()

    @property
    def rss_mb(self) -> float:
        return sum(self.peak.values())

    @property
    def cpu_s(self) -> float:
        return sum(self.cpu_each.values())

    @property
    def cpu_each(self) -> dict[int, float]:
        return {p: c - self.cpu_start.get(p, 0.0) for p, c in self.cpu.items()}


def start_gateway(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "facility.cli", "--log-level", "warning", "gateway"]
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def count_stored(store: VictoriaMetrics | None, data: Path) -> tuple[int, int]:
    """Readings in the store, read back, and how many of them are distinct: samples of every
    field but `seq` (victoria-metrics names a series `measurement_field`) and their
    timestamps per series, or rows of the SQL store's table (its key makes them distinct)."""
    if store is not None:
        series = store.export('{__name__=~".+", __name__!~".*_seq|device_event_.*"}')
        total = sum(len(s["timestamps"]) for s in series)
        return total, sum(len(set(s["timestamps"])) for s in series)
    with sqlite3.connect(data / "timeseries.db") as db:
        (total,) = db.execute("SELECT count(*) FROM ts_readings").fetchone()
        (distinct,) = db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT device_id, metric, ts FROM ts_readings)"
        ).fetchone()
        return int(total), int(distinct)


def pid_of(service: Mosquitto | VictoriaMetrics) -> int:
    assert service.proc is not None
    return service.proc.pid


def wait(pred: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.1)


# -- the stream ------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = n >> 7, n & 0x7F
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def build_stream(ids: list[str], n: int, seq_base: int) -> list[bytes]:
    """N QoS 1 PUBLISH packets, round-robin over the devices, each device's message carrying
    its own sequence number and clock (ms, within the last few minutes)."""
    base = int(datetime.now(UTC).timestamp() * 1000) - n
    packets = []
    for i in range(n):
        body = b'{"seq": %d, "ts": %d, "t": %.2f, "door": %s, "bat": %d}' % (
            seq_base + i // len(ids),
            base + i,
            3.0 + (i % 40) / 20,
            b"true" if i % 17 == 0 else b"false",
            90 - i % 7,
        )
        var = _text(TOPIC.format(ids[i % len(ids)])) + (i % 65535 + 1).to_bytes(2, "big")
        packets.append(b"\x32" + _varint(len(var) + len(body)) + var + body)
    return packets


def offer_stream(host: str, port: int, packets: list[bytes], rate: float) -> float:
    """Send the packets at `rate` per second (in 5 ms slices) and wait for every PUBACK;
    returns the monotonic time of the first send."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = _text(f"bench-pub-{os.getpid()}-{time.monotonic_ns()}")
    connect = _text("MQTT") + b"\x04\x02\x00\x00" + client_id  # 3.1.1, clean, no keepalive
    sock.sendall(b"\x10" + _varint(len(connect)) + connect)
    if sock.recv(4) != b"\x20\x02\x00\x00":
        raise SystemExit("bench: broker refused the publisher")
    acked = 0
    total = len(packets)
    done = threading.Event()

    def read_acks() -> None:  # every reply is a 4-byte PUBACK
        nonlocal acked
        got = 0
        while got < 4 * total:
            data = sock.recv(65536)
            if not data:
                break
            got += len(data)
            acked = got // 4
        done.set()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    t0 = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - t0) * rate) + 1)
        due = min(due, acked + 30_000)  # packet ids must not wrap onto unacked ones
        if due > sent:
            sock.sendall(b"".join(packets[sent:due]))
            sent = due
        time.sleep(0.005)
    if not done.wait(600):
        raise SystemExit(f"bench: only {acked} of {total} publishes acknowledged")
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=23_000, help="messages/s offered")
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument(
        "--store",
        choices=["influx", "sqlite"],
        default="influx",
        help="influx: the production store's path (InfluxDB v2 write API, served here by "
        "Debian's victoria-metrics); sqlite: the embedded default",
    )
    ap.add_argument("--profile", help="write py-spy raw stacks of the gateway here")
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
    store = None
    if args.store == "influx":
        store = start_victoria_metrics(tmp)
        env |= {
            "FACILITY_GATEWAY_TSDB": "influx",
            "FACILITY_GATEWAY_INFLUX_URL": store.url,
            "FACILITY_GATEWAY_INFLUX_TOKEN": "bench",
        }
    log = tmp / "gateway.log"
    readings = n * METRICS_PER_MESSAGE
    gw: subprocess.Popen[bytes] | None = None
    try:
        # 1. mosquitto_sub takes the stream.
        sub_args = [sub_exe, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-c"]
        sub_args += ["-i", "bench-sub", "-t", "campus/bench/#"]
        subprocess.run([*sub_args, "-E"], check=True, timeout=30)  # its session exists
        sub = subprocess.Popen([*sub_args, "-C", str(n)], stdout=subprocess.DEVNULL)
        packets = build_stream(ids, n, 1)
        broker_cpu = cpu_seconds(pid_of(broker))
        t0 = offer_stream(broker.host, broker.port, packets, args.rate)
        pub_s = time.monotonic() - t0
        sub.wait(600)
        sub_s = time.monotonic() - t0
        if sub.returncode != 0:
            raise SystemExit(f"bench: mosquitto_sub exited with {sub.returncode}")
        sub_broker_cpu = cpu_seconds(pid_of(broker)) - broker_cpu

        # 2. The gateway takes the same stream (new sequence numbers, so new readings).
        gw = start_gateway(env, log)
        wait(lambda: "as facility-gw-gw-bench " in broker.log(), 120, "gateway connected")
        time.sleep(2.0)  # subscribed by now; its session would queue anything earlier anyway
        spy = None
        if args.profile:  # py-spy (in the dev extras) samples the gateway and its sink process
            spy_exe = str(Path(sys.executable).with_name("py-spy"))
            if not Path(spy_exe).exists():
                spy_exe = shutil.which("py-spy") or "py-spy"
            spy = subprocess.Popen(
                [
                    *(spy_exe, "record", "-r", "200", "-f", "raw", "-o", args.profile),
                    *("--threads", "--subprocesses", "-p", str(gw.pid)),
                ],
                stdout=subprocess.DEVNULL,
            )
        packets = build_stream(ids, n, 1_000_000)
        watch = GroupWatch(gw.pid)
        watch.start()
        broker_cpu = cpu_seconds(pid_of(broker))
        store_cpu = cpu_seconds(pid_of(store)) if store is not None else 0.0
        t0 = offer_stream(broker.host, broker.port, packets, args.rate)
        gw_pub_s = time.monotonic() - t0
        wait(
            lambda: all_stored(metrics_port, readings),
            900,
            "every reading in the store",
        )
        gw_s = time.monotonic() - t0
        watch.stop()
        gw_broker_cpu = cpu_seconds(pid_of(broker)) - broker_cpu
        gw_store_cpu = cpu_seconds(pid_of(store)) - store_cpu if store is not None else 0.0
        rss = watch.rss_mb
        cpu = watch.cpu_s
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        gw.send_signal(signal.SIGTERM)
        gw.wait(30)
        stored, distinct = count_stored(store, tmp / "gw")
        if stored != readings or distinct != readings:
            raise SystemExit(
                f"bench: the store holds {stored} readings ({distinct} distinct), "
                f"{readings} were sent"
            )
    finally:
        if gw is not None and gw.poll() is None:  # a failed run leaves no gateway behind
            os.killpg(gw.pid, signal.SIGKILL)
            gw.wait(10)
        broker.stop()
        if store is not None:
            store.stop()
    sub_rate = n / sub_s
    rate = n / gw_s
    print(
        f"messages_per_s={rate:.0f} readings_per_s={rate * METRICS_PER_MESSAGE:.0f} "
        f"ratio_to_mosquitto_sub={rate / sub_rate:.2f} rss_mb={rss:.0f}"
    )
    print(
        f"# offered {args.rate:.0f}/s; published in {pub_s:.1f} s (mosquitto_sub run) and "
        f"{gw_pub_s:.1f} s (gateway run); mosquitto_sub {sub_rate:.0f} messages/s; "
        f"{n} messages, {args.devices} devices, store {args.store} (holds {stored} readings, "
        f"each once); gateway CPU {cpu:.1f} s ({cpu / n * 100_000:.1f} s per 100k messages; "
        f"{len(watch.peak)} processes: {' + '.join(f'{v:.1f}' for v in watch.cpu_each.values())}"
        f" s, peak RSS {' + '.join(f'{v:.0f}' for v in watch.peak.values())} MB); broker CPU "
        f"{sub_broker_cpu:.1f} s (mosquitto_sub run), {gw_broker_cpu:.1f} s (gateway run); "
        f"store CPU {gw_store_cpu:.1f} s; load average {os.getloadavg()[0]:.2f}; "
        f"data in {tmp}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
