"""Two gateways on their own hosts (network namespaces on a private /24), one link cut under
load and then lossy and slow, then restored: nothing lost or doubled, the cut gateway's
`gateway_offline` alert opened and closed once, the other gateway's data never stopped.

Each building is a namespace with its own Mosquitto (the devices' broker, on the namespace's
loopback), its simulated fridges (`facility sim run`), a counting subscriber
(`mosquitto_sub`: what the simulator published) and its gateway (`facility gateway`, SQLite
store in its data folder); the uplink goes over the veth and bridge to the campus broker in
the root namespace, which the server (this process, consuming the uplink) reads on loopback.

The cut: gateway A's bridge port goes down until the broker notices the silence (1.5 x the
gateway's 30 s keepalive) and publishes A's last will; then the link comes back lossy and
slow (`tc netem`, or on a kernel without netem a tbf rate limit plus nftables random drop;
tests/harness/netns.py) until A is back online and its backlog is flowing; then it is
restored. Checked: every reading per device and metric in each gateway's store, in the
gateway's accepted count and at the server (bus, completeness counters, cold-chain record)
equals what the simulator published, each once; exactly one `gateway_offline` alert for A,
resolved, none for B; B's readings reached the server all through the cut, A's did not while
its link was down.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from server.alerts.model import Alert
from server.app import create_app
from server.coldchain.model import ColdReading
from server.events.types import ReadingsAccepted
from server.ingest.model import Device, Gateway
from server.settings import ServerSettings
from tests.harness import (
    Mosquitto,
    ServiceStartError,
    ServiceUnavailable,
    free_port,
    start_mosquitto,
)
from tests.harness.netns import Host, TestNet, start_device_broker
from tests.harness.process import Process, find_program, port_open
from tests.helpers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SITE = "netns"
FRIDGES = 30  # per gateway: 30 messages/s, about 180 readings/s each
REPORT_EVERY_S = 1.0  # per fridge (the simulator's tick); 6 readings a message
LOSS_PCT, DELAY_MS = 10, 100
FACILITY = [sys.executable, "-m", "facility.cli"]


@dataclass
class Building:
    name: str
    host: Host
    gateway_id: str
    devices: list[str]
    data: Path
    metrics_port: int
    published_log: Path
    procs: dict[str, Process] = field(default_factory=dict)

    def stop(self, what: str) -> None:
        self.procs[what].stop()

    def published(self) -> dict[str, list[int]]:
        """Device -> the sequence numbers its messages carried, as the building's broker
        delivered them to the counting subscriber."""
        out: dict[str, list[int]] = {d: [] for d in self.devices}
        for line in self.published_log.read_text().splitlines():
            if line.startswith("---- "):
                continue  # the harness's start line
            topic, _, payload = line.partition(" ")
            out[topic.split("/")[3]].append(json.loads(payload)["seq"])
        return out

    def gateway_metrics(self) -> dict[str, float]:
        text = httpx.get(f"http://{self.host.ip}:{self.metrics_port}/metrics", timeout=5).text
        return {
            m.group(1): float(m.group(2))
            for m in re.finditer(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", text, re.M)
        }

    def stored(self) -> dict[tuple[str, str], list[int]]:
        """(device, metric) -> the seq of every reading row in the gateway's own store."""
        out: dict[tuple[str, str], list[int]] = {}
        with sqlite3.connect(self.data / "timeseries.db", timeout=10) as db:
            for device, metric, seq in db.execute("SELECT device_id, metric, seq FROM ts_readings"):
                out.setdefault((device, metric), []).append(seq)
        return out


def write_site(path: Path, buildings: dict[str, list[str]], only: str | None = None) -> None:
    """Both buildings' fridges (the server's and gateways' site file) or one building's
    (what that building's simulator runs)."""
    path.write_text(
        yaml.safe_dump(
            {
                "site": SITE,
                "name": "two-gateway campus",
                "timezone": "Asia/Shanghai",
                "buildings": [
                    {"id": f"canteen-{b}", "name": f"Canteen {b.upper()}", "kind": "canteen"}
                    for b in buildings
                ],
                "devices": [
                    {
                        "id": d,
                        "profile": "cfm-sim-fridge",
                        "building": f"canteen-{b}",
                        "location": d,
                        "gateway": f"gw-{b}",
                    }
                    for b, ds in buildings.items()
                    if only in (None, b)
                    for d in ds
                ],
            }
        )
    )


class Received:
    """What the server's bus saw: every accepted reading once per delivery."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str, int | None]] = Counter()

    def __call__(self, events: list[ReadingsAccepted]) -> None:
        for ev in events:
            self.seen.update((r.device_id, r.metric, r.seq) for r in ev.readings)

    def by_metric(self) -> dict[tuple[str, str], list[int]]:
        out: dict[tuple[str, str], list[int]] = {}
        for device, metric, seq in self.seen:
            assert seq is not None
            out.setdefault((device, metric), []).append(seq)
        return out


@pytest.fixture
def net() -> Iterator[TestNet]:
    try:
        testnet = TestNet()
    except (ServiceUnavailable, RuntimeError) as exc:
        pytest.fail(f"test network: {exc}", pytrace=False)
    yield testnet
    testnet.stop()
    left = testnet.leftovers()
    assert not left, f"test network left behind: {left}"


@dataclass(frozen=True)
class CampusBroker:
    """The campus broker in the root namespace: `broker.url` (loopback) for the server,
    `uplink_url` (the bridge address) for the gateways."""

    broker: Mosquitto
    uplink_url: str


@pytest.fixture
def campus_broker(net: TestNet, tmp_path: Path) -> Iterator[CampusBroker]:
    port = free_port()
    extra = [f"listener {port} {net.router_ip}", "max_inflight_messages 100"]
    try:
        broker = start_mosquitto(tmp_path, extra_config=extra)
    except (ServiceUnavailable, ServiceStartError) as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        wait_until(lambda: port_open(port, net.router_ip), 10, "the broker on the bridge")
        yield CampusBroker(broker, f"mqtt://{net.router_ip}:{port}")
    finally:
        broker.stop()


def start_building(
    net: TestNet, uplink_url: str, name: str, devices: list[str], site: Path, tmp: Path
) -> Building:
    host = net.add_host(f"gw{name}")
    b = Building(
        name=name,
        host=host,
        gateway_id=f"gw-{name}",
        devices=devices,
        data=tmp / f"gw-{name}",
        metrics_port=free_port(),
        published_log=tmp / f"published-{name}.txt",
    )
    broker = start_device_broker(host, tmp)
    b.procs["broker"] = broker.process
    sub = find_program("mosquitto_sub", "mosquitto-clients", "CFM_MOSQUITTO_SUB_BIN")
    b.procs["counter"] = host.process(
        f"mosquitto_sub in {host.ns}",
        [
            sub,
            *("-h", "127.0.0.1", "-p", "1883", "-q", "1", "-v", "-i", f"counter-{name}"),
            *("-t", f"campus/{SITE}/cold/#"),
        ],
        b.published_log,
    )
    b.procs["counter"].wait_ready(
        lambda: f"as counter-{name}" in broker.log(),
        "the counting subscriber connected",
        10,
    )
    env = {
        **os.environ,
        "FACILITY_GATEWAY_GATEWAY_ID": b.gateway_id,
        "FACILITY_GATEWAY_DATA_DIR": str(b.data),
        "FACILITY_GATEWAY_SITE_FILE": str(site),
        "FACILITY_GATEWAY_DEVICE_BROKER": "mqtt://127.0.0.1:1883",
        "FACILITY_GATEWAY_UPLINK_BROKER": uplink_url,
        "FACILITY_GATEWAY_METRICS_PORT": str(b.metrics_port),
        "FACILITY_GATEWAY_METRICS_HOST": host.ip,
        "FACILITY_GATEWAY_STATUS_EVERY_S": "5",
        # One site, two gateways: they share the site's card pseudonym key (a gateway of a
        # site with several refuses to start without it, gateway/pseudonym.py).
        "FACILITY_GATEWAY_PSEUDONYM_KEY": "netns-test-site-key-0123456789abcdef",
        "FACILITY_LOG_LEVEL": "info",
    }
    b.procs["gateway"] = host.process(
        f"gateway {b.gateway_id}", [*FACILITY, "gateway"], tmp / f"gw-{name}.log", env
    )
    b.procs["gateway"].wait_ready(
        lambda: "subscribed to" in b.procs["gateway"].log_tail(100_000),
        f"gateway {b.gateway_id} subscribed",
        60,
    )
    sim_site = tmp / f"sim-{name}.yaml"
    write_site(sim_site, {name: devices})
    b.procs["sim"] = host.process(
        f"simulator in {host.ns}",
        [
            *FACILITY,
            *("sim", "--broker", "mqtt://127.0.0.1:1883", "run", "--site", str(sim_site)),
            *("--report-every", str(REPORT_EVERY_S)),
        ],
        tmp / f"sim-{name}.log",
        env,
    )
    return b


def test_cut_gateway_link_loses_and_doubles_nothing_and_the_other_goes_on(
    net: TestNet, campus_broker: CampusBroker, tmp_path: Path
) -> None:
    fridges = {b: [f"{b}-fridge-{i:02d}" for i in range(FRIDGES)] for b in ("a", "b")}
    site = tmp_path / "site.yaml"
    write_site(site, fridges)
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "srv",
        broker=campus_broker.broker.url,
        site_file=site,
        tick_seconds=1.0,
    )
    app = create_app(settings)
    received = Received()
    buildings: dict[str, Building] = {}
    with TestClient(app):
        ctx: Any = app.state.ctx
        ctx.bus.subscribe_batch(ReadingsAccepted, received, name="test.received")

        def scalar(q: Any) -> Any:
            with ctx.sessions() as s:
                return s.scalar(q)

        def at_server(b: str) -> int:
            """Messages of building b's fridges counted at the server (completeness)."""
            return int(
                scalar(select(func.sum(Device.received)).where(Device.gateway_id == f"gw-{b}")) or 0
            )

        def gw_alerts(gw: str) -> list[Alert]:
            with ctx.sessions() as s:
                return list(
                    s.scalars(
                        select(Alert).where(
                            Alert.device_id == f"gateway:{gw}", Alert.rule == "gateway_offline"
                        )
                    )
                )

        try:
            for b, devices in fridges.items():
                buildings[b] = start_building(
                    net, campus_broker.uplink_url, b, devices, site, tmp_path
                )
            a = buildings["a"]

            def online(gw: str) -> bool:
                return bool(scalar(select(Gateway.state).where(Gateway.id == gw)) == "online")

            wait_until(lambda: online("gw-a") and online("gw-b"), 30, "both gateways online")
            wait_until(lambda: at_server("a") > 200 and at_server("b") > 200, 60, "data from both")

            # 1. A's link down: B's data keeps coming, A's stops, A's last will raises its alert.
            net.cut(a.host)
            b_counts = [at_server("b")]

            def b_moved(why: str) -> None:
                """B's count at the server grew since the last look (bounded wait)."""
                time.sleep(2.0)
                b_counts.append(
                    wait_until(
                        lambda: n if (n := at_server("b")) > b_counts[-1] else 0,
                        20,
                        f"gateway B's readings arriving at the server ({why})",
                    )
                )

            deadline = time.monotonic() + 100  # the broker's keepalive check: 45 s here
            while not [x for x in gw_alerts("gw-a") if x.state == "active"]:
                assert time.monotonic() < deadline, "gw-a's offline alert never came"
                b_moved("A's link down")
            a_frozen = at_server("a")
            b_moved("A's link down, its alert open")
            assert at_server("a") == a_frozen, "A's data reached the server through a cut link"

            # 2. Lossy and slow: A reconnects, its alert resolves, its backlog flows.
            used = net.impair(a.host, LOSS_PCT, DELAY_MS)
            wait_until(
                lambda: [x for x in gw_alerts("gw-a") if x.state == "resolved"],
                90,
                f"gw-a back online over the impaired link ({used})",
            )
            wait_until(lambda: at_server("a") > a_frozen + 500, 60, "A's backlog, lossy link")
            b_moved("A's link lossy and slow")

            # 3. Restored; the simulators stop; everything drains.
            net.restore(a.host)
            for bld in buildings.values():
                bld.stop("sim")
            wait_until(
                lambda: all(_settled(bld) for bld in buildings.values()),
                60,
                "each gateway took all its simulator published",
            )
            published = {b: buildings[b].published() for b in buildings}
            expected = {d: len(seqs) for p in published.values() for d, seqs in p.items()}

            def cold_at_server(b: str) -> int:
                """Cold-chain readings recorded for building b's fridges (the record's
                listener runs after each batch's commit, so it may lag the counters)."""
                q = select(func.count()).where(ColdReading.device_id.in_(fridges[b]))
                return int(scalar(q) or 0)

            wait_until(
                lambda: all(
                    at_server(b) == cold_at_server(b) == sum(len(s) for s in published[b].values())
                    for b in buildings
                ),
                90,
                "every message counted and recorded at the server",
            )
            with ctx.sessions() as s:
                counted = {d.id: (d.received, d.seq_gaps) for d in s.scalars(select(Device))}
                cold: dict[str, list[int]] = {}
                for device_id, seq in s.execute(select(ColdReading.device_id, ColdReading.seq)):
                    cold.setdefault(device_id, []).append(seq)
            alerts = {gw: gw_alerts(gw) for gw in ("gw-a", "gw-b")}
            stores = {b: buildings[b].stored() for b in buildings}
            accepted = {b: buildings[b].gateway_metrics() for b in buildings}
        finally:
            for bld in buildings.values():
                for proc in reversed(bld.procs.values()):
                    proc.stop()

    for name, bld in buildings.items():
        pub = published[name]
        for device, seqs in pub.items():
            assert seqs == list(range(1, len(seqs) + 1)), f"{device}: simulator seqs {seqs[:5]}"
        store = stores[name]
        # Every metric of every message in the gateway's store, once.
        for (device, metric), seqs in store.items():
            assert sorted(seqs) == pub[device], f"{bld.gateway_id} store {device}/{metric}"
        assert {d for d, _ in store} == set(bld.devices)
        assert "temperature" in {m for _, m in store}
        total = sum(len(s) for s in store.values())
        assert accepted[name]["gateway_readings_accepted_total"] == total, bld.gateway_id
        # At the server: every reading of the store arrived (perhaps redelivered as a whole
        # batch), each message counted once, each cold reading recorded once.
        server_seen = received.by_metric()
        for key, seqs in store.items():
            assert sorted(server_seen.get(key, [])) == sorted(seqs), f"server bus {key}"
        for device in bld.devices:
            assert counted[device] == (expected[device], 0), f"completeness of {device}"
            assert sorted(cold[device]) == pub[device], f"cold-chain record of {device}"
    assert len(alerts["gw-a"]) == 1 and alerts["gw-a"][0].state == "resolved", alerts["gw-a"]
    assert alerts["gw-b"] == []
    assert len(b_counts) >= 4 and b_counts == sorted(set(b_counts))
    logging.getLogger(__name__).info(
        "cut: B's messages at the server %s; A frozen at %s; impairment %s; readings "
        "delivered more than once (a batch resent after the cut): %d",
        b_counts,
        a_frozen,
        used,
        sum(1 for n in received.seen.values() if n > 1),
    )


def _settled(b: Building) -> bool:
    """The gateway accepted every reading the simulator published (once the counting
    subscriber has them all), and its store holds them."""
    pub = b.published()
    messages = sum(len(s) for s in pub.values())
    m = b.gateway_metrics()
    if m.get('gateway_messages_received_total{transport="mqtt"}', -1) != messages:
        return False
    items = m.get("gateway_readings_accepted_total", 0) + m.get("gateway_events_accepted_total", 0)
    return items > 0 and all(
        m.get(f'gateway_sink_items_total{{sink="{sink}"}}', -1) >= items
        for sink in ("tsdb", "uplink")
    )
