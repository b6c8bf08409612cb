"""The simulated campus sensors and the night guard: what they publish decodes through their
profiles without a rejection, their faults do what the demo promises, and the guard walks
the demo route's rounds in order (and passes a skipped checkpoint by)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from core.profiles import load_profiles
from core.site import DEFAULT_SITE_FILE, load_site
from firmware_sim.devices.campus import (
    AirSensor,
    BinSensor,
    LeakSensor,
    PatrolReader,
    SoilSensor,
)
from firmware_sim.faults import UnknownFault
from firmware_sim.guard import Guard
from gateway.decode.json_payload import JsonDecoder

PROFILES = load_profiles()
SITE = load_site(DEFAULT_SITE_FILE, PROFILES)
NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Tuesday
LOCAL = NOW.astimezone(SITE.tz)


def decoded(profile: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    decoder = JsonDecoder()
    out = []
    for i, body in enumerate(messages):
        got = decoder.decode(
            device_id="dev-1",
            profile=PROFILES[profile],
            topic="t",
            payload=orjson.dumps(body),
            received_at=NOW + timedelta(seconds=i),
        )
        assert got.rejections == [], body
        out.append({r.metric: r.value for r in got.readings} | {"events": got.events})
    return out


def run(model: Any, seconds: int) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    for _ in range(seconds):
        model.step(1.0, LOCAL)
        msgs += model.messages(len(msgs) + 1, int(NOW.timestamp() * 1000), False)
    return msgs


def test_soil_sensor_dries_out_under_fault_dry() -> None:
    soil = SoilSensor("garden-soil-01", random.Random(1), report_every_s=5)
    before = decoded("zigbee2mqtt-soil-moisture", run(soil, 20))
    assert all(25 <= r["soil_moisture"] <= 31 for r in before)
    soil.set_fault("dry")
    after = decoded("zigbee2mqtt-soil-moisture", run(soil, 30))
    assert [r["soil_moisture"] < 18 for r in after][-3:] == [True, True, True]
    assert after[-1]["soil_moisture"] <= 10
    soil.clear()
    assert decoded("zigbee2mqtt-soil-moisture", run(soil, 6))[-1]["soil_moisture"] >= 26


def test_air_sensor_co2_rises_under_fault() -> None:
    air = AirSensor("classroom-101-air", random.Random(2), report_every_s=5)
    assert decoded("zigbee2mqtt-air-quality", run(air, 10))[-1]["co2"] < 900
    air.set_fault("co2_rise")
    assert decoded("zigbee2mqtt-air-quality", run(air, 80))[-1]["co2"] > 1500


def test_leak_sensor_reports_water_at_once() -> None:
    leak = LeakSensor("dorm-a-leak-01", random.Random(3), report_every_s=300)
    first = decoded("zigbee2mqtt-water-leak", run(leak, 2))
    assert [r["water_leak"] for r in first] == [False]
    leak.set_fault("leak")
    wet = decoded("zigbee2mqtt-water-leak", run(leak, 1))
    assert [r["water_leak"] for r in wet] == [True]
    assert [e.kind for e in wet[0]["events"]] == ["leak_detected"]
    with pytest.raises(UnknownFault):
        leak.set_fault("fill_up")


def test_bin_sensor_sends_chirpstack_uplinks_and_fills_up_under_fault() -> None:
    bin_ = BinSensor("canteen-bin-01", random.Random(4), report_every_s=5)
    bin_.dev_eui, bin_.application_id = "a84041000181c6f1", "app-1"
    before = decoded("chirpstack-bin-level", run(bin_, 12))
    assert all(r["fill_level"] < 60 and r["tilted"] is False for r in before)
    bin_.set_fault("fill_up")
    full = decoded("chirpstack-bin-level", run(bin_, 50))
    assert full[-1]["fill_level"] == 100 and full[-1]["distance"] == 200
    bin_.set_fault("tilt")
    assert decoded("chirpstack-bin-level", run(bin_, 5))[-1]["tilted"] is True
    bin_.clear()
    assert decoded("chirpstack-bin-level", run(bin_, 1))[-1]["fill_level"] == 5


def test_guard_walks_each_round_and_passes_a_skipped_checkpoint_by() -> None:
    readers = {
        f"dorm-a-cp-0{i}": PatrolReader(f"dorm-a-cp-0{i}", random.Random(i)) for i in (1, 2, 3)
    }
    guard = Guard(SITE, readers, walk_s=60)
    evening = datetime(2026, 11, 24, 22, 29, tzinfo=SITE.tz)
    scans: list[tuple[str, str]] = []
    for minute in range(0, 100):
        now = evening + timedelta(minutes=minute)
        if now.hour == 23 and now.minute == 0:
            readers["dorm-a-cp-02"].set_fault("skip")
        guard.step(now)
        for device_id, reader in readers.items():
            for msg in reader.messages(1, 0, False):
                if msg["event"] == "scan":
                    scans.append((now.strftime("%H:%M"), device_id))
    assert scans == [
        ("22:30", "dorm-a-cp-01"),
        ("22:31", "dorm-a-cp-02"),
        ("22:32", "dorm-a-cp-03"),
        ("23:00", "dorm-a-cp-01"),
        ("23:02", "dorm-a-cp-03"),
    ]
    assert (
        decoded(
            "cfm-sim-patrol-reader",
            [{"seq": 1, "ts": 1764000000000, "event": "scan", "card": "G1"}],
        )[0]["events"][0].kind
        == "patrol_scan"
    )
