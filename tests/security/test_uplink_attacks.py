"""Attacks on the uplink, through a real Mosquitto into the server's real consumer: each is
refused, counted, logged, acknowledged and kept as a dead letter an admin can read, and what
was good in the same batch is kept (issue 11).

The site has two gateways: gw-canteen (the canteen's fridges) and gw-dorm (the dorm doors).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from core.readings import reading_key, unix_ms
from core.site import DEFAULT_SITE_FILE
from core.wire import WireReading, data_topic, encode_batch, wire_reading
from server.app import create_app
from server.settings import ServerSettings
from tests.helpers import token, wait_until
from tests.security.mqtt_probe import Probe, connect

pytestmark = pytest.mark.integration
FRIDGE = "canteen-fridge-01"
DOOR = "dorm-a-door-01"
MAX_BYTES = 50_000


def two_gateway_site(tmp: Path) -> Path:
    doc = yaml.safe_load(DEFAULT_SITE_FILE.read_text())
    for d in doc["devices"]:
        if d["id"].startswith("dorm-"):
            d["gateway"] = "gw-dorm"
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


class Uplink:
    """The server under attack, and a publisher on the broker it consumes."""

    def __init__(self, client: TestClient, ctx: Any, probe: Probe) -> None:
        self.client = client
        self.ctx = ctx
        self.probe = probe
        self.admin = token(client, "admin")

    def send(self, gateway_topic: str, payload: bytes) -> None:
        assert self.probe.publish(data_topic(gateway_topic), payload) == 0

    def device(self, device_id: str) -> dict[str, Any]:
        r = self.client.get(f"/api/devices/{device_id}", headers=self.admin)
        assert r.status_code == 200, r.text
        got: dict[str, Any] = r.json()
        return got

    def dead_letters(self) -> list[dict[str, Any]]:
        r = self.client.get("/api/dead-letters?limit=1000", headers=self.admin)
        assert r.status_code == 200, r.text
        got: list[dict[str, Any]] = r.json()
        return got

    def refused(self, reason: str) -> float:
        text = self.client.get("/metrics").text
        for line in text.splitlines():
            if line.startswith(f'server_uplink_rejected_total{{reason="{reason}"}}'):
                return float(line.split()[-1])
        return 0.0

    def wait_letters(self, n: int, reason: str | None = None) -> list[dict[str, Any]]:
        """At least `n` dead letters (of `reason`, if given), newest first."""

        def found() -> list[dict[str, Any]]:
            got = [d for d in self.dead_letters() if reason is None or d["reason"] == reason]
            return got if len(got) >= n else []

        return wait_until(found, 20, f"{n} dead letter(s) for {reason or 'any reason'}")

    def wait_dead_letter(self, reason: str, n: int = 1) -> list[dict[str, Any]]:
        return self.wait_letters(n, reason)

    def wait_value(self, device_id: str, metric: str, value: Any) -> None:
        wait_until(
            lambda: self.device(device_id)["values"].get(metric, {}).get("value") == value,
            20,
            f"{device_id} {metric} = {value}",
        )


@pytest.fixture
def uplink(mosquitto: Any, tmp_path: Path) -> Iterator[Uplink]:
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "server",
        broker=mosquitto.url,
        site_file=two_gateway_site(tmp_path),
        tick_seconds=1.0,
        uplink_max_bytes=MAX_BYTES,
    )
    app = create_app(settings)
    # From a loopback address, as a local Prometheus scrapes /metrics.
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        ctx = app.state.ctx
        wait_until(lambda: ctx.consumer.connected, 20, "the server's uplink consumer connected")
        probe = connect(mosquitto.port, None, None)
        try:
            yield Uplink(client, ctx, probe)
        finally:
            probe.close()


def now_ms() -> int:
    return unix_ms(datetime.now(UTC))


def temp(device: str, value: float, t_ms: int, seq: int = 1) -> WireReading:
    at = datetime.fromtimestamp(t_ms / 1000, tz=UTC) if abs(t_ms) < 10**14 else None
    rid = reading_key(device, "temperature", at, seq) if at else f"{device}:x:{seq}"
    return wire_reading(rid, device, "temperature", value, t_ms, t_ms, "°C", seq, None)


def batch(gw: str, readings: list[Any], first: int = 1) -> bytes:
    """As the gateway encodes it; with json, not orjson, so a test can put integers beyond
    64 bits in it as an attacker can."""
    doc = orjson.loads(encode_batch(gw, first, first, [], []))
    doc["readings"] = readings
    return json.dumps(doc).encode()


def test_forged_gateway_field_and_unknown_gateway_are_refused(uplink: Uplink) -> None:
    t = now_ms()
    # gw-dorm's topic (the broker let that account write it) claiming to be gw-canteen.
    uplink.send("gw-dorm", batch("gw-canteen", [temp(FRIDGE, 30.0, t)]))
    # A gateway the site file does not know, naming itself correctly.
    uplink.send("gw-evil", batch("gw-evil", [temp(FRIDGE, 31.0, t)]))
    mismatch = uplink.wait_dead_letter("gateway_mismatch")[0]
    assert mismatch["gateway_id"] == "gw-dorm" and mismatch["whole"] is True
    assert "gw='gw-canteen'" in mismatch["detail"]
    assert orjson.loads(mismatch["payload"])["gw"] == "gw-canteen"  # kept as received
    uplink.wait_dead_letter("unknown_gateway")
    uplink.send("gw-canteen", batch("gw-canteen", [temp(FRIDGE, 3.5, t + 1000, 2)]))
    uplink.wait_value(FRIDGE, "temperature", 3.5)  # only the real gateway's reading counts
    assert uplink.refused("gateway_mismatch") == 1 and uplink.refused("unknown_gateway") == 1


def test_foreign_device_is_refused_and_its_good_neighbours_kept(uplink: Uplink) -> None:
    t = now_ms()
    door = wire_reading(
        reading_key(DOOR, "door_open", datetime.fromtimestamp(t / 1000, UTC), 5),
        DOOR,
        "door_open",
        False,
        t,
        t,
        None,
        5,
        None,
    )
    # The dorm gateway sends its door, and a reading of the canteen's fridge.
    uplink.send("gw-dorm", batch("gw-dorm", [temp(FRIDGE, 30.0, t), door]))
    uplink.wait_value(DOOR, "door_open", False)
    letter = uplink.wait_dead_letter("foreign_device")[0]
    assert letter["whole"] is False and letter["refused_items"] == 1
    assert "belongs to gateway 'gw-canteen'" in letter["detail"]
    assert "temperature" not in uplink.device(FRIDGE)["values"]
    assert uplink.refused("foreign_device") == 1


def test_reading_from_the_future_is_refused_and_later_real_ones_count(uplink: Uplink) -> None:
    t = now_ms()
    year_2100 = unix_ms(datetime(2100, 1, 1, tzinfo=UTC))
    uplink.send("gw-canteen", batch("gw-canteen", [temp(FRIDGE, 30.0, year_2100)]))
    uplink.send(
        "gw-canteen", batch("gw-canteen", [temp(FRIDGE, 20.0, t + 3_600_000, 2)], first=2)
    )  # an hour ahead: beyond the 5 min allowed for clock skew
    assert len(uplink.wait_dead_letter("future_time", 2)) == 2
    uplink.send("gw-canteen", batch("gw-canteen", [temp(FRIDGE, 3.2, t, 3)], first=3))
    uplink.wait_value(FRIDGE, "temperature", 3.2)
    seen = datetime.fromisoformat(uplink.device(FRIDGE)["last_seen"])
    assert abs((seen - datetime.now(UTC)).total_seconds()) < 600  # not 2100: not "online forever"
    assert uplink.refused("future_time") == 2


def test_overflowing_and_out_of_range_times_are_refused(uplink: Uplink) -> None:
    t = now_ms()
    for i, bad in enumerate([10**20, -(10**20), 2**63, 0, "soon", 1.5e12]):
        reading: dict[str, Any] = dict(temp(FRIDGE, 30.0, t, i + 1))
        reading["t"] = bad
        uplink.send("gw-canteen", batch("gw-canteen", [reading], first=i + 1))
    letters = uplink.wait_letters(6)
    # 2**63 is an integer, just far ahead; the others are no time at all.
    assert sorted(d["reason"] for d in letters) == ["future_time"] + ["time_out_of_range"] * 5
    assert all(d["refused_items"] == 1 and not d["whole"] for d in letters)
    uplink.send("gw-canteen", batch("gw-canteen", [temp(FRIDGE, 3.9, t, 9)], first=9))
    uplink.wait_value(FRIDGE, "temperature", 3.9)


def test_oversized_batch_is_refused_whole(uplink: Uplink) -> None:
    t = now_ms()
    big = batch("gw-canteen", [temp(FRIDGE, 3.0 + i / 1000, t - i, i + 1) for i in range(600)])
    assert len(big) > MAX_BYTES
    uplink.send("gw-canteen", big)
    letter = uplink.wait_dead_letter("oversize")[0]
    assert letter["size"] == len(big) and letter["whole"] is True
    assert f"at most {MAX_BYTES}" in letter["detail"]
    assert "temperature" not in uplink.device(FRIDGE)["values"]


def test_twenty_poisoned_messages_in_a_row_do_not_stop_ingest(uplink: Uplink) -> None:
    """The broker hands a consumer at most 20 unacknowledged messages (the test broker's
    max_inflight_messages, Mosquitto's default). Each of these once made the consumer raise
    and leave it unacknowledged (a time that overflows a datetime, a counter that overflows
    the database's BIGINT), so twenty of them stopped all ingest. Now each is refused,
    recorded and acknowledged, and the next good batch is processed."""
    t = now_ms()
    for i in range(20):
        r: dict[str, Any] = dict(temp(FRIDGE, 40.0, t, i + 1))
        if i % 4 == 0:
            r["t"] = 10**20
        elif i % 4 == 1:
            r["t"] = -(10**20)
        elif i % 4 == 2:
            r["r"] = 10**20
        else:
            r["s"] = 2**70
        uplink.send("gw-canteen", batch("gw-canteen", [r], first=i + 1))
    uplink.send("gw-canteen", batch("gw-canteen", [temp(FRIDGE, 4.4, t, 99)], first=99))
    uplink.wait_value(FRIDGE, "temperature", 4.4)
    letters = uplink.dead_letters()
    assert len(letters) == 20
    assert {d["reason"] for d in letters} == {"time_out_of_range", "bad_value"}
    assert uplink.refused("time_out_of_range") == 15 and uplink.refused("bad_value") == 5
    assert uplink.ctx.consumer._queue.empty()  # nothing held back


def test_every_kind_of_malformed_message_is_recorded(uplink: Uplink) -> None:
    t = now_ms()
    bad = [
        b"\xff not json",
        b"[1, 2]",
        orjson.dumps({"v": 1, "gw": "gw-canteen", "first": -1, "last": 1}),
        orjson.dumps({"v": 1, "gw": "gw-canteen", "first": 1, "last": 1, "readings": "x"}),
        batch("gw-canteen", [{**temp(FRIDGE, 1.0, t), "v": {"nested": 1}}]),
    ]
    for payload in bad:
        uplink.send("gw-canteen", payload)
    letters = uplink.wait_letters(5)
    assert sorted(d["reason"] for d in letters) == ["not_json"] + ["wire_schema"] * 4
    assert all(d["whole"] for d in letters)
