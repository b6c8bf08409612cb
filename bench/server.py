"""Server benchmark: uplink batches through the running server, its CPU, fault->alert latency
and the API under load.

Not a test. Starts its own broker (Mosquitto, or RabbitMQ with its MQTT plugin for several
workers) and PostgreSQL on free loopback ports, writes a site of 5,000 chilled fridges behind
20 gateways, makes an admin, and starts `facility server` processes (one, or `--workers N`
sharing the uplink through RabbitMQ's partition queues). Then, through MQTT as gateways
publish, each batch a gateway's uplink message of `--batch` readings (temperature, door,
battery per device message):

1. paced: `--paced-rate` readings/s for `--paced-seconds`; meanwhile `--faults` fridges
   whose too-warm condition started 31 minutes ago (by their readings' times) send the reading
   that makes the rule's 30-minute delay run out; the fault->alert latency is from that
   publish to the alert row being committed (PostgreSQL polled every 5 ms);
2. unpaced: `--readings` readings offered at once; readings/s from the first publish to the
   last reading processed (the servers' `server_uplink_readings_total`), and the servers'
   CPU seconds per 100,000 readings (utime + stime of their processes); the CPU seconds of
   every process meanwhile (each server, the broker, PostgreSQL with its backends, this
   publisher), since they all share the machine's cores; `--profile FILE` records py-spy's
   stacks (CPU, by thread) of the first server in this phase;
3. API: a second process (asyncio httpx) sends `--api-rate` requests/s for `--api-seconds`
   to /api/devices and /api/alerts (5,000 devices) while the paced stream and its faults go
   on; p50/p99 of the answered requests, how many were shed (503), and /healthz right after.

Prints its figures, then one final line:
  workers=N readings_per_s=R cpu_s_per_100k=C alert_latency_p99_ms=L api_p99_ms=A
Run: .venv/bin/python bench/server.py [--workers N] [--engine mosquitto|rabbitmq] [--db sqlite]
     [--profile stacks.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import _varint, cpu_seconds, offer_stream  # noqa: E402
from bench.ingest import write_site as write_fridges  # noqa: E402
from tests.harness import (  # noqa: E402
    descendants,
    free_port,
    start_mosquitto,
    start_postgres,
    start_rabbitmq,
)

METRICS = 3  # readings per device message
SECRET = "bench-secret-key-0123456789abcdef0123456789"
PASSWORD = "Kx7-trolley-lantern-42"
FACILITY = (sys.executable, "-m", "facility.cli")
FAULT_METRIC_VALUE = 9.5  # above temp_high_critical's 8.0
REQUEST_S = 30.0  # the API load gives up on a request after this (counted as no_answer)


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


# -- the site --------------------------------------------------------------------------------
def write_site(path: Path, devices: int, gateways: int) -> dict[str, str]:
    """bench/ingest.py's fridges, spread over the gateways; returns device -> gateway."""
    ids = write_fridges(path, devices)
    owner = {d: f"gw-bench-{i % gateways:02d}" for i, d in enumerate(ids)}
    doc = yaml.safe_load(path.read_text())
    for dev in doc["devices"]:
        dev["gateway"] = owner[dev["id"]]
    path.write_text(yaml.safe_dump(doc))
    return owner


# -- MQTT packets ----------------------------------------------------------------------------
def publish_packet(topic: str, payload: bytes, pid: int) -> bytes:
    t = topic.encode()
    var = len(t).to_bytes(2, "big") + t + pid.to_bytes(2, "big")
    return b"\x32" + _varint(len(var) + len(payload)) + var + payload


class Stream:
    """Uplink batches as gateways send them: each device's messages numbered and timed in
    order, each batch one gateway's; outbox positions per gateway."""

    def __init__(self, owner: dict[str, str], batch: int, excluded: set[str]) -> None:
        self.owner = owner
        self.by_gw: dict[str, list[str]] = {}
        for d, gw in owner.items():
            if d not in excluded:  # the fault probe's fridges send only their own readings
                self.by_gw.setdefault(gw, []).append(d)
        self.seq = dict.fromkeys(owner, 0)
        self.pos = dict.fromkeys(self.by_gw, 0)
        self.cursor = dict.fromkeys(self.by_gw, 0)
        self.batch = batch
        self.pid = 0
        self.last_t = dict.fromkeys(owner, 0)

    def _pid(self) -> int:
        self.pid = self.pid % 65535 + 1
        return self.pid

    def _reading(self, d: str, m: str, v: Any, t: int, s: int) -> dict[str, Any]:
        return {"id": f"{d}/{m}@{t}#{s}", "d": d, "m": m, "v": v, "t": t, "r": t, "s": s}

    def message(self, d: str, t: int, temp: float) -> list[dict[str, Any]]:
        t = max(t, self.last_t[d] + 1)
        self.last_t[d] = t
        self.seq[d] += 1
        s = self.seq[d]
        return [
            self._reading(d, "temperature", temp, t, s) | {"u": "°C"},
            self._reading(d, "door_open", s % 17 == 0, t, s),
            self._reading(d, "battery", 90 - s % 7, t, s) | {"u": "%"},
        ]

    def packet(self, gw: str, readings: list[dict[str, Any]]) -> bytes:
        first = self.pos[gw] + 1
        self.pos[gw] += len(readings)
        body = orjson.dumps(
            {"v": 1, "gw": gw, "first": first, "last": self.pos[gw], "readings": readings}
        )
        return publish_packet(f"facility/v1/gw/{gw}/data", body, self._pid())

    def normal(self, n_readings: int, now_ms: Callable[[], int]) -> tuple[list[bytes], int]:
        """About `n_readings` readings of ordinary fridges (3-5 °C), gateway by gateway."""
        out: list[bytes] = []
        per = self.batch // METRICS
        gws = sorted(self.by_gw)
        made = 0
        i = 0
        while made < n_readings:
            gw = gws[i % len(gws)]
            i += 1
            devs = self.by_gw[gw]
            c = self.cursor[gw]
            chosen = [devs[(c + k) % len(devs)] for k in range(per)]
            self.cursor[gw] = (c + per) % len(devs)
            t = now_ms()
            readings = [
                r for d in chosen for r in self.message(d, t, 3.0 + (self.seq[d] % 20) / 10)
            ]
            out.append(self.packet(gw, readings))
            made += len(readings)
        return out, made


def now_ms() -> int:
    return int(time.time() * 1000)


# -- the server processes ------------------------------------------------------------------
class Servers:
    def __init__(self, env: dict[str, str], n: int, tmp: Path, cluster: bool) -> None:
        self.ports = [free_port() for _ in range(n)]
        self.procs: list[subprocess.Popen[bytes]] = []
        for i, port in enumerate(self.ports):
            args = [*FACILITY, "--log-level", "warning", "server"]
            args += ["--port", str(port)]
            if cluster:
                args += ["--worker-index", str(i), "--workers", str(n)]
            self.procs.append(
                subprocess.Popen(
                    args,
                    env=env | {"FACILITY_SERVER_MQTT_CLIENT_ID": f"facility-server-{i}"},
                    stdout=(tmp / f"server-{i}.log").open("ab"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def wait_up(self) -> None:
        for port, proc in zip(self.ports, self.procs, strict=True):
            wait(functools.partial(_ok, f"http://127.0.0.1:{port}/healthz"), 120, f"server :{port}")
            if proc.poll() is not None:
                raise SystemExit(f"bench: server :{port} exited")

    def processed(self) -> float:
        """Readings the servers have processed (a scrape that times out is tried again: a
        busy server must not count as zero)."""
        total = 0.0
        for port in self.ports:
            for attempt in range(10):
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                    break
                except httpx.HTTPError:
                    if attempt == 9:
                        raise
            for line in text.splitlines():
                if line.startswith("server_uplink_readings_total "):
                    total += float(line.split()[1])
        return total

    def cpu_s(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def each_cpu_s(self, since: list[float] | None = None) -> list[float]:
        now = [cpu_seconds(p.pid) for p in self.procs]
        return now if since is None else [a - b for a, b in zip(now, since, strict=True)]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants (PostgreSQL's backends, RabbitMQ's
    Erlang VM under its start script), the exited ones included (cutime, cstime)."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait(pred: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(every)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# -- faults and their latency ------------------------------------------------------------------
class FaultProbe:
    """Fridges kept out of the load stream: each gets a too-warm reading 31 minutes old (the
    rule's pending start), then later the reading that completes the delay; the latency is
    from that publish to the alert row (polled in PostgreSQL)."""

    def __init__(self, stream: Stream, db: str, devices: list[str]) -> None:
        self.stream, self.db, self.devices = stream, db, devices
        self.sent: dict[str, float] = {}
        self.latencies_ms: list[float] = []

    def arm(self, publish: Callable[[list[bytes]], None]) -> None:
        t = now_ms() - 31 * 60 * 1000
        publish(self._packets(t))

    def _packets(self, t: int) -> list[bytes]:
        out = []
        for d in self.devices:
            gw = self.stream.owner[d]
            out.append(self.stream.packet(gw, self.stream.message(d, t, FAULT_METRIC_VALUE)))
        return out

    def fire(self, publish: Callable[[list[bytes]], None], spread_s: float) -> None:
        """One device's trigger every spread_s/len seconds (latencies under steady load)."""
        for d, packet in zip(self.devices, self._packets(now_ms()), strict=True):
            self.sent[d] = time.monotonic()
            publish([packet])
            time.sleep(spread_s / len(self.devices))

    def watch(self, timeout: float) -> None:
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.db, autocommit=True) as conn:
            while len(seen) < len(self.devices) and time.monotonic() < deadline:
                rows = conn.execute(
                    "SELECT device_id FROM alerts WHERE rule = 'temp_high_critical'"
                ).fetchall()
                t = time.monotonic()
                for (d,) in rows:
                    if d not in seen and d in self.sent:
                        seen.add(d)
                        self.latencies_ms.append((t - self.sent[d]) * 1000)
                time.sleep(0.005)
        if len(seen) < len(self.devices):
            raise SystemExit(f"bench: {len(self.devices) - len(seen)} fault alerts never came")


# -- API load (the second process) -------------------------------------------------------------
async def _api_load(base: str, token: str, rate: float, seconds: float) -> dict[str, Any]:
    paths = ["/api/devices", "/api/alerts?state=active"]
    results: list[tuple[str, int, float]] = []
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, headers=headers) as client:

        async def one(path: str) -> None:
            t0 = time.monotonic()
            try:  # a bounded wait, whatever the part (pool, connect, answer) that is slow
                r = await asyncio.wait_for(client.get(path, timeout=REQUEST_S), REQUEST_S)
                status = r.status_code
            except (httpx.HTTPError, TimeoutError):
                status = 0
            results.append((path, status, (time.monotonic() - t0) * 1000))

        tasks = []
        t0 = time.monotonic()
        n = int(rate * seconds)
        for i in range(n):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(paths[i % len(paths)])))
        await asyncio.gather(*tasks)
    out: dict[str, Any] = {}
    for path in paths:
        mine = [r for r in results if r[0] == path]
        ok = [ms for _, st, ms in mine if st == 200]
        out[path] = {
            "sent": len(mine),
            "ok": len(ok),
            "shed_503": sum(1 for _, st, _ms in mine if st == 503),
            "other": sum(1 for _, st, _ms in mine if st not in (0, 200, 503)),
            "no_answer": sum(1 for _, st, _ms in mine if st == 0),
            "p50_ms": pct(ok, 0.5),
            "p99_ms": pct(ok, 0.99),
            "p99_shed_ms": pct([ms for _, st, ms in mine if st == 503], 0.99),
        }
    ok_all = [ms for _, st, ms in results if st == 200]
    out["all"] = {"p50_ms": pct(ok_all, 0.5), "p99_ms": pct(ok_all, 0.99)}
    return out


def api_load_main(args: argparse.Namespace) -> None:
    result = asyncio.run(_api_load(args.api_load, args.token, args.api_rate, args.api_seconds))
    print(json.dumps(result))


# -- the run ----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--engine", choices=["mosquitto", "rabbitmq"], default=None)
    ap.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--gateways", type=int, default=20)
    ap.add_argument("--batch", type=int, default=300, help="readings per uplink message")
    ap.add_argument("--paced-rate", type=float, default=3000, help="readings/s")
    ap.add_argument("--paced-seconds", type=float, default=20)
    ap.add_argument("--readings", type=int, default=150_000, help="unpaced readings")
    ap.add_argument("--faults", type=int, default=40)
    ap.add_argument("--api-rate", type=float, default=200)
    ap.add_argument("--api-seconds", type=float, default=20)
    ap.add_argument(
        "--profile", help="py-spy raw stacks (CPU, by thread) of server 0, unpaced phase, here"
    )
    ap.add_argument("--api-load", help=argparse.SUPPRESS)  # the second process
    ap.add_argument("--token", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.api_load:
        api_load_main(args)
        return
    engine = args.engine or ("mosquitto" if args.workers == 1 else "rabbitmq")
    if engine == "mosquitto" and args.workers > 1:
        raise SystemExit("bench: several workers share the uplink through RabbitMQ")
    if args.db == "sqlite" and args.workers > 1:
        raise SystemExit("bench: several workers need PostgreSQL")
    tmp = Path(tempfile.mkdtemp(prefix="cfm-bench-server-"))
    owner = write_site(tmp / "site.yaml", args.devices, args.gateways)
    fault_devices = sorted(owner)[: args.faults]
    stoppers: list[Callable[[], None]] = []
    servers: Servers | None = None
    try:
        if engine == "mosquitto":
            broker = start_mosquitto(tmp, extra_config=["max_inflight_messages 1000"])
            stoppers.append(broker.stop)
            mqtt_host, mqtt_port, broker_url = broker.host, broker.port, broker.url
            others = {"mosquitto": broker.proc.pid}
        else:
            rabbit = start_rabbitmq(tmp)
            stoppers.append(rabbit.stop)
            mqtt_host, mqtt_port, broker_url = rabbit.host, rabbit.mqtt_port, rabbit.mqtt_url
            others = {"rabbitmq": rabbit.proc.pid}
        pg = start_postgres(tmp)
        stoppers.append(pg.stop)
        others["postgresql"] = pg.proc.pid
        db_url = pg.create_database() if args.db == "postgres" else f"sqlite:///{tmp}/server.db"
        env = {
            **os.environ,
            "FACILITY_SERVER_DATABASE_URL": db_url,
            "FACILITY_SERVER_SITE_FILE": str(tmp / "site.yaml"),
            "FACILITY_SERVER_DATA_DIR": str(tmp / "server"),
            "FACILITY_SERVER_BROKER": broker_url,
            "FACILITY_SERVER_SECRET_KEY": SECRET,
            "FACILITY_SERVER_TICK_SECONDS": "5",
            "FACILITY_LOG_LEVEL": "warning",
        }
        if engine == "rabbitmq":
            env |= {
                "FACILITY_SERVER_UPLINK": "rabbitmq",
                "FACILITY_SERVER_AMQP_URL": rabbit.amqp_url,
            }
        subprocess.run(
            [*FACILITY, "users", "add", "bench", "--role", "admin", "--password-stdin"],
            input=PASSWORD.encode(),
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        servers = Servers(env, args.workers, tmp, cluster=engine == "rabbitmq")
        servers.wait_up()
        log(f"{args.workers} server(s) up ({engine}, {args.db}); data in {tmp}")
        time.sleep(2.0)  # subscribed
        # Publishing: one connection at a time, every PUBACK awaited.
        lock = threading.Lock()

        def publish(packets: list[bytes], rate: float = 1e9) -> None:
            with lock:
                offer_stream(mqtt_host, mqtt_port, packets, rate)

        stream = Stream(owner, args.batch, set(fault_devices))
        pg_dsn = db_url.replace("postgresql+psycopg://", "postgresql://")

        # 0. warm-up: every device once (rows, rule states, online)
        warm, warm_n = stream.normal((args.devices - args.faults) * METRICS, now_ms)
        publish(warm)
        wait(lambda: servers.processed() >= warm_n, 600, "warm-up processed")
        log(f"warm-up done ({len(warm)} batches, {warm_n} readings)")

        # 1. paced, with fault latencies
        probe = FaultProbe(stream, pg_dsn, fault_devices) if args.db == "postgres" else None
        if probe is not None:
            probe.arm(publish)
            armed = warm_n + METRICS * len(fault_devices)
            wait(lambda: servers.processed() >= armed, 600, "faults armed")
        before = servers.processed()
        stop_paced = threading.Event()
        sent = [0]  # readings the pacer published

        def paced(rate: float, seconds: float) -> None:
            t_end = time.monotonic() + seconds
            slice_s = 0.1
            while time.monotonic() < t_end and not stop_paced.is_set():
                t0 = time.monotonic()
                packets, n = stream.normal(int(rate * slice_s), now_ms)
                publish(packets)
                sent[0] += n
                time.sleep(max(0.0, slice_s - (time.monotonic() - t0)))

        paced_cpu0 = servers.cpu_s()
        t0 = time.monotonic()
        pacer = threading.Thread(target=paced, args=(args.paced_rate, args.paced_seconds))
        pacer.start()
        if probe is not None:
            watcher = threading.Thread(target=probe.watch, args=(args.paced_seconds + 60,))
            watcher.start()
            probe.fire(publish, args.paced_seconds * 0.8)
        pacer.join()
        faults = METRICS * len(fault_devices) if probe is not None else 0
        wait(lambda: servers.processed() - before >= sent[0] + faults, 600, "paced processed")
        paced_s = time.monotonic() - t0
        paced_cpu = servers.cpu_s() - paced_cpu0
        if probe is not None:
            watcher.join()
            lat = probe.latencies_ms
            log(
                f"paced: {sent[0]} readings offered at {args.paced_rate:.0f}/s, processed "
                f"{sent[0] / paced_s:.0f}/s (until the last one); fault->alert latency p50 "
                f"{pct(lat, 0.5):.0f} ms p99 {pct(lat, 0.99):.0f} ms ({len(lat)} faults); "
                f"server CPU {paced_cpu / sent[0] * 100_000:.2f} s per 100k readings "
                f"({paced_cpu / paced_s:.2f} cores busy)"
            )

        # 2. unpaced
        packets, n_readings = stream.normal(args.readings, now_ms)
        base = servers.processed()
        spy = None
        if args.profile:  # py-spy (a dev extra) samples the first server
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    *("record", "-r", "100", "-f", "raw", "-o", args.profile),
                    *("--threads", "-p", str(servers.procs[0].pid)),
                ],
                stdout=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        cpu0 = servers.cpu_s()
        cpu_each0 = servers.each_cpu_s()
        others0 = {name: tree_cpu(pid) for name, pid in others.items()}
        me0 = sum(os.times()[:2])
        t0 = time.monotonic()
        publisher = threading.Thread(target=publish, args=(packets,))
        publisher.start()
        wait(
            lambda: servers.processed() - base >= n_readings,
            1800,
            "unpaced stream processed",
            every=0.25,
        )
        unpaced_s = time.monotonic() - t0
        publisher.join()
        cpu = servers.cpu_s() - cpu0
        others_cpu = {name: tree_cpu(pid) - others0[name] for name, pid in others.items()}
        others_cpu["bench (publisher)"] = sum(os.times()[:2]) - me0
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        rate = n_readings / unpaced_s
        cpu_per_100k = cpu / n_readings * 100_000
        log(
            f"unpaced: {n_readings} readings in {unpaced_s:.1f} s = {rate:.0f} readings/s; "
            f"server CPU {cpu:.1f} s = {cpu_per_100k:.2f} s per 100k readings "
            f"({cpu / unpaced_s:.2f} cores busy)"
        )
        per_server = [f"{c:.1f}" for c in servers.each_cpu_s(cpu_each0)]
        log(
            "unpaced CPU seconds per process: servers "
            + " + ".join(per_server)
            + "; "
            + "; ".join(f"{name} {c:.1f}" for name, c in others_cpu.items())
            + f"; over {unpaced_s:.1f} s on {os.cpu_count()} cores"
        )

        # 3. API load with the paced stream and faults going on
        token = httpx.post(
            f"http://127.0.0.1:{servers.ports[0]}/api/auth/token",
            data={"username": "bench", "password": PASSWORD},
            timeout=30,
        ).json()["access_token"]
        stop_paced.clear()
        pacer = threading.Thread(target=paced, args=(args.paced_rate / 2, args.api_seconds + 5))
        before = servers.processed()
        pacer.start()
        load = subprocess.run(
            [
                *(sys.executable, __file__, "--api-load", f"http://127.0.0.1:{servers.ports[0]}"),
                *("--token", token, "--api-rate", str(args.api_rate)),
                *("--api-seconds", str(args.api_seconds)),
            ],
            capture_output=True,
            timeout=args.api_seconds + 300,
            check=True,
        )
        t_end = time.monotonic()
        health = []
        for _ in range(5):
            h0 = time.monotonic()
            ok = _ok(f"http://127.0.0.1:{servers.ports[0]}/healthz")
            health.append((time.monotonic() - h0) * 1000 if ok else float("inf"))
        pacer.join()
        during = servers.processed() - before
        api = json.loads(load.stdout)
        for path, fig in api.items():
            log(f"api {path}: {fig}")
        log(
            f"during the API load: {during / (time.monotonic() - t_end + args.api_seconds):.0f} "
            f"readings/s ingested (offered {args.paced_rate / 2:.0f}); /healthz after it: "
            f"max {max(health):.0f} ms"
        )
        lat99 = pct(probe.latencies_ms, 0.99) if probe is not None else float("nan")
        print(
            f"workers={args.workers} readings_per_s={rate:.0f} cpu_s_per_100k={cpu_per_100k:.2f} "
            f"alert_latency_p99_ms={lat99:.0f} api_p99_ms={api['all']['p99_ms']:.0f}"
        )
    finally:
        if servers is not None:
            servers.stop()
        for stop in reversed(stoppers):
            stop()


if __name__ == "__main__":
    main()
