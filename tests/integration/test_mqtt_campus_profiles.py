"""The campus-service MQTT profiles (issue 14) through a real Mosquitto and the real gateway,
with payloads shaped as the devices publish them; readings, events and refusals land in the
store and the counters, as in test_mqtt_profiles.py for the others.

Where the payloads come from:
- ChirpStack v4: its documented uplink, verbatim (tests/fixtures/payloads/SOURCES.md), on
  `application/<application id>/device/<DevEUI>/event/up` (its MQTT integration docs), and the
  same shape with a codec's `object` as our simulated bin sends it.
- Zigbee2MQTT: field names and units of the device pages (TS0601_air_quality_sensor: co2
  ppm, voc ppb; TS0601_soil: soil_moisture; SJCGQ13LM: water_leak, battery_low, voltage mV;
  HS1SA: smoke, tamper).
- Tasmota: the SCD30 object of its display driver's example, and a user's SDS0X1 capture
  ("PM2.5" with a dot in the key).
- The patrol reader's schema is our own (device_profiles/cfm-sim-patrol-reader.yaml).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.clock import utcnow
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from tests.helpers import wait_until
from tests.integration.test_gateway_mqtt import publish, publisher
from tests.integration.test_mqtt_profiles import Running, ms

pytestmark = pytest.mark.integration
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
CAMPUS_DEVICES = [
    # id, profile, address
    ("bin-docs", "chirpstack-bin-level", "0101010101010101"),
    ("bin-1", "chirpstack-bin-level", "a84041000181c6f1"),
    ("air-1", "zigbee2mqtt-air-quality", "room_101_air"),
    ("air-2", "tasmota-scd30-sds011", "tasmota_AIR2"),
    ("soil-1", "zigbee2mqtt-soil-moisture", "bed_1_soil"),
    ("leak-1", "zigbee2mqtt-water-leak", "washroom_leak"),
    ("smoke-1", "zigbee2mqtt-smoke", "corridor_smoke"),
    ("cp-1", "cfm-sim-patrol-reader", "cp-1"),
]


@pytest.fixture
def running(mosquitto: Any, tmp_path: Path) -> Iterator[Running]:
    site = tmp_path / "site.yaml"
    devices = []
    for i, p, a in CAMPUS_DEVICES:
        device: dict[str, Any] = {"id": i, "profile": p, "address": a, "building": "b"}
        device["location"] = i
        if p == "chirpstack-bin-level":
            device["topic_values"] = {"application_id": APP}
        devices.append(device | {"gateway": "gw"})
    site.write_text(
        yaml.safe_dump(
            {
                "site": "demo",
                "name": "campus profiles",
                "timezone": "Asia/Shanghai",
                "buildings": [{"id": "b", "name": "B", "kind": "dorm"}],
                "devices": devices,
            }
        )
    )
    settings = GatewaySettings(
        gateway_id="gw", data_dir=tmp_path / "gw", device_broker=mosquitto.url, site_file=site
    )
    gw = Gateway(settings)
    gw.start()
    wait_until(lambda: gw.source.connected, 10, "gateway subscribed")
    yield Running(gw, settings.data_dir / "timeseries.db", mosquitto.url)
    gw.stop()


def test_campus_profiles_through_the_broker(running: Running) -> None:
    dev = publisher(running.broker_url)
    now = utcnow().replace(microsecond=0)
    shanghai = timezone(timedelta(hours=8))
    uplink = json.loads((FIXTURE / "chirpstack-v4-uplink-docs.json").read_text())
    uplink["deviceInfo"]["devEui"] = "a84041000181c6f1"
    uplink |= {"time": now.isoformat(), "fCnt": 7}
    uplink["object"] = {"distance": 320, "fill_level": 84, "battery": 91, "position": "tilt"}
    messages: list[tuple[str, bytes]] = [
        # The documented uplink as published: from 2022, so its time is not trusted.
        (
            f"application/{APP}/device/0101010101010101/event/up",
            (FIXTURE / "chirpstack-v4-uplink-docs.json").read_bytes(),
        ),
        (f"application/{APP}/device/a84041000181c6f1/event/up", json.dumps(uplink).encode()),
        (
            "zigbee2mqtt/room_101_air",
            b'{"co2":1450,"voc":91,"formaldehyd":4,"temperature":23.9,"humidity":55.0,'
            b'"linkquality":88}',
        ),
        (
            "tele/tasmota_AIR2/SENSOR",
            json.dumps(
                {
                    "Time": now.astimezone(shanghai).isoformat(),
                    "SCD30": {"CarbonDioxide": 746, "eCO2": 727, "Temperature": 30.6}
                    | {"Humidity": 43.6, "DewPoint": 16.8},
                    "SDS0X1": {"PM2.5": 11.8, "PM10": 5.8},
                    "TempUnit": "C",
                }
            ).encode(),
        ),
        ("zigbee2mqtt/bed_1_soil", b'{"soil_moisture":16,"temperature":19.0,"battery":90}'),
        ("zigbee2mqtt/washroom_leak", b'{"battery":96,"battery_low":false,"water_leak":true}'),
        ("zigbee2mqtt/corridor_smoke", b'{"battery":85,"smoke":false,"tamper":true}'),
        (
            "campus/demo/patrol/cp-1/event",
            json.dumps({"seq": 3, "ts": ms(now), "event": "scan", "card": "G0001"}).encode(),
        ),
    ]
    for topic, body in messages:
        publish(dev, topic, body)
    # Refused, each with its reason: another device's uplink on this bin's topic, a soil
    # reading past 100 %.
    stray = dict(uplink, deviceInfo={"devEui": "0202020202020202"})
    publish(dev, f"application/{APP}/device/a84041000181c6f1/event/up", json.dumps(stray).encode())
    publish(dev, "zigbee2mqtt/bed_1_soil", b'{"soil_moisture":140}')
    dev.loop_stop()

    want = {
        ("bin-docs", "rssi"): (-36.0, "dBm", "restamped"),
        ("bin-docs", "snr"): (10.5, "dB", "restamped"),
        ("bin-1", "fill_level"): (84.0, "%", "good"),
        ("bin-1", "distance"): (320.0, "mm", "good"),
        ("bin-1", "tilted"): (1.0, None, "good"),
        ("bin-1", "spreading_factor"): (11.0, None, "good"),
        ("air-1", "co2"): (1450.0, "ppm", "good"),
        ("air-1", "tvoc"): (91.0, "ppb", "good"),
        ("air-2", "co2"): (746.0, "ppm", "good"),
        ("air-2", "pm25"): (11.8, "µg/m³", "good"),
        ("air-2", "pm10"): (5.8, "µg/m³", "good"),
        ("soil-1", "soil_moisture"): (16.0, "%", "good"),
        ("leak-1", "water_leak"): (1.0, None, "good"),
        ("smoke-1", "tamper"): (1.0, None, "good"),
    }
    wait_until(lambda: set(want) <= set(running.readings()), 20, "every profile's readings")
    got = running.readings()
    for key, (value, unit, quality) in want.items():
        assert (got[key][0], got[key][2], got[key][4]) == (value, unit, quality), key
    assert got[("bin-1", "fill_level")][3] == ms(now)  # the uplink's own time
    assert got[("air-2", "co2")][3] == ms(now)
    wait_until(lambda: running.events("cp-1"), 10, "the patrol scan")
    [(kind, attrs)] = running.events("cp-1")
    assert kind == "patrol_scan" and attrs["card"].startswith("p-")
    assert [k for k, _ in running.events("leak-1")] == ["leak_detected"]
    wait_until(
        lambda: (running.rejected("wrong_address"), running.rejected("out_of_range")) == (1, 1),
        10,
        "the two bad payloads counted by reason",
    )
