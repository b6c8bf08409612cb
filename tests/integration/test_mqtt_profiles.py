"""Every shipped MQTT profile through a real Mosquitto and the real gateway, with payloads
shaped as the devices publish them; the normalised readings and events land in the store.
Hostile payloads on the same path are refused with a counted reason and stop nothing, and
the simulated door controllers' traffic and faults arrive as the events the rules use.

Where the payloads come from:
- Zigbee2MQTT: the device pages of zigbee2mqtt.io (docs/devices/WSDCGQ11LM.md and
  MCCGQ11LM.md in Koenkk/zigbee2mqtt.io: exposes battery %, temperature °C, humidity %,
  pressure hPa, voltage mV, linkquality 0-255; "contact ... closed (= true) or open
  (= false)"), and a user's Zigbee2MQTT 1.6.0 log of a WSDCGQ11LM, pastebin.com/CX6XrfY3:
  {"temperature":22.75,"linkquality":97,"humidity":55.43,"pressure":1000.6,"battery":86,...}.
- Tasmota: tele/<topic>/SENSOR as quoted by projects that consume it, e.g.
  {"Time":"2019-01-10T22:15:52","SI7021":{"Temperature":5.4,"Humidity":27.7},"TempUnit":"C"};
  DS18B20 and AM2301 the same shape under their own keys; the zone-less "Time" unless
  SetOption52 1 (arendst/Tasmota sonoff/support_rtc.ino, GetDateAndTime).
- The access controller schema is our own (device_profiles/access-controller-json.yaml).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.clock import utcnow
from core.mqtturl import parse_broker_url
from core.profiles import MqttTransport, load_profiles
from core.site import load_site
from firmware_sim.runner import SimOptions, SimRunner, send_command
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from tests.helpers import wait_until
from tests.integration.test_gateway_mqtt import publish, publisher

pytestmark = pytest.mark.integration

DEVICES = [
    # id, profile, address
    ("store-th", "zigbee2mqtt-temperature-humidity", "kitchen_store_th"),
    ("freezer-th", "zigbee2mqtt-temperature-humidity", "kitchen/freezer_th"),  # "/" in name
    ("store-door", "zigbee2mqtt-contact", "kitchen_store_door"),
    ("cold-probe", "tasmota-ds18b20", "tasmota_F1A2B3"),
    ("office-th", "tasmota-am2301", "tasmota_0A0B0C"),
    ("lab-th", "tasmota-si7021", "sonoff_th_lab"),
    ("dorm-gate", "access-controller-json", "AC0001"),
    ("fridge", "cfm-sim-fridge", "fridge"),
    ("door", "cfm-sim-door", "door"),
]


def test_every_shipped_mqtt_profile_is_exercised_here() -> None:
    # A new MQTT profile must come with a real-shaped payload through the broker below.
    from tests.integration.test_mqtt_campus_profiles import CAMPUS_DEVICES

    shipped = {n for n, p in load_profiles().items() if isinstance(p.transport, MqttTransport)}
    assert shipped == {p for _, p, _ in DEVICES} | {p for _, p, _ in CAMPUS_DEVICES}


@dataclass
class Running:
    gw: Gateway
    db: Path
    broker_url: str

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db, timeout=10) as conn:
            try:
                return conn.execute(sql).fetchall()
            except sqlite3.OperationalError:
                return []

    def readings(self) -> dict[tuple[str, str], tuple[Any, ...]]:
        sql = "SELECT device_id, metric, value_num, value_text, unit, ts, quality FROM ts_readings"
        return {(d, m): tuple(rest) for d, m, *rest in self.rows(sql)}

    def events(self, device: str) -> list[tuple[str, dict[str, Any]]]:
        """(kind, attrs) in the order the device reported them: time, then its counter."""
        sql = f"SELECT kind, attrs, ts, event_id FROM ts_events WHERE device_id = '{device}'"

        def order(row: tuple[Any, ...]) -> tuple[int, int]:
            tail = row[3].rsplit("/", 1)[1]
            return row[2], int(tail) if row[3].count("/") == 3 else 0

        return [(k, json.loads(a) if a else {}) for k, a, *_ in sorted(self.rows(sql), key=order)]

    def rejected(self, reason: str) -> float:
        value = self.gw.metrics.registry.get_sample_value(
            "gateway_rejections_total", {"reason": reason}
        )
        return value or 0.0


def write_site(tmp_path: Path, devices: list[tuple[str, str, str]]) -> Path:
    site = tmp_path / "site.yaml"
    site.write_text(
        yaml.safe_dump(
            {
                "site": "demo",
                "name": "profiles",
                "timezone": "Asia/Shanghai",
                "buildings": [{"id": "b", "name": "B", "kind": "dorm", "curfew": "23:00"}],
                "devices": [
                    {"id": i, "profile": p, "address": a, "building": "b", "location": i}
                    | {"gateway": "gw"}
                    for i, p, a in devices
                ],
            }
        )
    )
    return site


@pytest.fixture
def running(mosquitto: Any, tmp_path: Path) -> Iterator[Running]:
    settings = GatewaySettings(
        gateway_id="gw",
        data_dir=tmp_path / "gw",
        device_broker=mosquitto.url,
        site_file=write_site(tmp_path, DEVICES),
        max_payload_bytes=32768,
    )
    gw = Gateway(settings)
    gw.start()
    wait_until(lambda: gw.source.connected, 10, "gateway subscribed")
    yield Running(gw, settings.data_dir / "timeseries.db", mosquitto.url)
    gw.stop()


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def test_shipped_mqtt_profiles_through_the_broker(running: Running) -> None:
    dev = publisher(running.broker_url)
    now = utcnow().replace(microsecond=0)
    shanghai = timezone(timedelta(hours=8))
    seen_z2m = now - timedelta(seconds=30)
    seen_tasmota = now - timedelta(seconds=20)
    at_gate = now - timedelta(seconds=10)
    messages: list[tuple[str, dict[str, Any]]] = [
        (
            "zigbee2mqtt/kitchen_store_th",
            {
                "temperature": 22.75,
                "linkquality": 97,
                "humidity": 55.43,
                "pressure": 1000.6,
                "battery": 86,
                "voltage": 2985,
            },
        ),
        (
            "zigbee2mqtt/kitchen/freezer_th",  # bridge with advanced.last_seen: ISO_8601
            {
                "battery": 100,
                "humidity": 41.2,
                "linkquality": 66,
                "temperature": -18.31,
                "voltage": 3005,
                "last_seen": seen_z2m.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            },
        ),
        (
            "zigbee2mqtt/kitchen_store_door",
            {"battery": 91, "contact": False, "linkquality": 150, "voltage": 3025},
        ),
        (
            "tele/tasmota_F1A2B3/SENSOR",  # °F, zone-less Time: stamped on receipt
            {
                "Time": "2021-01-07T14:49:09",
                "DS18B20": {"Id": "01144A0CB2AA", "Temperature": 38.5},
                "TempUnit": "F",
            },
        ),
        (
            "tele/tasmota_0A0B0C/SENSOR",  # SetOption52 1: Time with its UTC offset
            {
                "Time": seen_tasmota.astimezone(shanghai).isoformat(),
                "AM2301": {"Temperature": 20.6, "Humidity": 46.7, "DewPoint": 8.6},
                "TempUnit": "C",
            },
        ),
        (
            "tele/sonoff_th_lab/SENSOR",
            {"Time": "2019-01-10T22:15:52", "SI7021": {"Temperature": 41.7, "Humidity": 27.7}}
            | {"TempUnit": "F"},
        ),
        (
            "access/AC0001/event",
            {
                "index": 7,
                "time": at_gate.astimezone(shanghai).isoformat(),
                "result": "granted",
                "card": "0012345678",
                "reader": "in",
            },
        ),
        ("access/AC0001/event", {"index": 8, "time": at_gate.isoformat(), "door": "open"}),
        (
            "access/AC0001/event",
            {"index": 9, "time": at_gate.isoformat(), "alarm": "forced", "door": "open"},
        ),
        (
            "access/AC0001/event",
            {
                "index": 10,
                "time": at_gate.isoformat(),
                "result": "denied",
                "card": 99999999,
                "reader": "in",
                "reason": "outside_schedule",
            },
        ),
        (
            "campus/demo/cold/fridge/telemetry",
            {"seq": 1, "ts": ms(now), "t": 3.4, "door": False, "bat": 88, "rssi": -61},
        ),
        (
            "campus/demo/door/door/event",
            {"seq": 1, "ts": ms(now), "event": "denied", "door": False, "card": "A1B2C3D4"}
            | {"reader": "in", "reason": "unknown_card"},
        ),
    ]
    for topic, body in messages:
        publish(dev, topic, json.dumps(body).encode())
    # The same paths refuse what is wrong, with a reason, and disturb nothing.
    publish(
        dev, "zigbee2mqtt/kitchen_store_th", b'{"temperature": 1, "pad": "' + b"x" * 20000 + b'"}'
    )
    publish(dev, "zigbee2mqtt/kitchen_store_door", b'{"contact": "maybe"}')
    publish(
        dev, "tele/tasmota_F1A2B3/SENSOR", b'{"DS18B20": {"Temperature": 310}, "TempUnit": "K"}'
    )
    publish(dev, "access/AC0001/event", b'{"index": 11, "door": "ajar"}')
    dev.loop_stop()

    want = {
        ("store-th", "temperature"): (22.75, "°C"),
        ("store-th", "humidity"): (55.43, "%"),
        ("store-th", "pressure"): (1000.6, "hPa"),
        ("store-th", "battery"): (86.0, "%"),
        ("store-th", "battery_voltage"): (2.985, "V"),
        ("store-th", "link_quality"): (97.0, None),
        ("freezer-th", "temperature"): (-18.31, "°C"),
        ("store-door", "door_open"): (1.0, None),  # contact false = open
        ("store-door", "battery_voltage"): (3.025, "V"),
        ("cold-probe", "temperature"): (pytest.approx(3.611111, abs=1e-5), "°C"),  # 38.5 °F
        ("office-th", "temperature"): (20.6, "°C"),
        ("office-th", "humidity"): (46.7, "%"),
        ("office-th", "dew_point"): (8.6, "°C"),
        ("lab-th", "temperature"): (pytest.approx(5.388889, abs=1e-5), "°C"),  # 41.7 °F
        ("lab-th", "humidity"): (27.7, "%"),
        ("dorm-gate", "door_open"): (1.0, None),
        ("fridge", "temperature"): (3.4, "°C"),
        ("door", "door_open"): (0.0, None),
    }
    wait_until(lambda: set(want) <= set(running.readings()), 20, "every profile's readings")
    got = running.readings()
    for key, (value, unit) in want.items():
        assert got[key][0] == value, key
        assert got[key][2] == unit, key
        assert got[key][4] == "good", key

    # Time: the device's when it can be placed, the receive time when it cannot.
    assert got[("freezer-th", "temperature")][3] == ms(seen_z2m)
    assert got[("office-th", "temperature")][3] == ms(seen_tasmota)
    assert got[("dorm-gate", "door_open")][3] == ms(at_gate)
    assert got[("cold-probe", "temperature")][3] >= ms(now)  # not 2021: the zone-less Time

    wait_until(lambda: len(running.events("dorm-gate")) >= 4, 20, "gate events")
    gate = running.events("dorm-gate")
    assert [k for k, _ in gate] == ["card_granted", "door_opened", "door_forced", "card_denied"]
    granted, denied = gate[0][1], gate[3][1]
    assert granted["reader"] == "in"
    assert granted["card"].startswith("p-") and "12345678" not in granted["card"]
    assert denied["reason"] == "outside_schedule" and denied["card"].startswith("p-")
    assert [k for k, _ in running.events("store-door")] == ["door_opened"]
    [(kind, attrs)] = running.events("door")
    assert kind == "card_denied" and attrs["reason"] == "unknown_card"
    assert attrs["card"].startswith("p-")

    wait_until(
        lambda: (
            (
                running.rejected("oversize"),
                running.rejected("wrong_type"),
                running.rejected("unknown_value"),
            )
            == (1, 1, 2)
        ),
        10,
        "the four bad payloads counted by reason",
    )


HOSTILE = [
    # What broken or hostile publishers send, each on a topic of a real device.
    ("zigbee2mqtt/kitchen_store_th", b'{"temperature": 1' + b"0" * 400 + b"}", "out_of_range"),
    ("zigbee2mqtt/kitchen_store_th", b'{"temperature": NaN, "humidity": 40}', "not_finite"),
    ("zigbee2mqtt/kitchen_store_th", b"\xff\xfe\x00garbage", "not_json"),
    ("zigbee2mqtt/kitchen_store_th", b"[21.5]", "not_object"),
    ("zigbee2mqtt/kitchen_store_th", b"{}", "missing_field"),
    ("zigbee2mqtt/kitchen_store_door", b"[" * 5000 + b"]" * 5000, "not_json"),
    ("access/AC0001/event", b'{"index": 21, "result": "denied", "card": "\\ud800"}', "wrong_type"),
    ("access/AC0001/event", b'{"index": 1' + b"0" * 30 + b', "result": "granted"}', None),
    (
        "access/AC0001/event",
        b'{"index": 23, "result": "denied", "reader": ' + b"[" * 300 + b"]" * 300 + b"}",
        "wrong_type",
    ),
    ("campus/demo/door/ghost/event", b'{"seq": 1, "event": "forced"}', "unknown_device"),
    ("campus/demo/boiler/b1/telemetry", b'{"t": 60}', "unknown_topic"),
    ("campus/demo/boiler/b1/telemetry", b"x" * 40000, "oversize"),  # over the gateway cap
]


def test_hostile_payloads_are_counted_and_stop_nothing(running: Running) -> None:
    dev = publisher(running.broker_url)
    for topic, payload, _ in HOSTILE:
        publish(dev, topic, payload)
    now = utcnow()
    publish(dev, "campus/demo/cold/fridge/telemetry", b'{"seq": 5, "ts": %d, "t": 4.25}' % ms(now))
    dev.loop_stop()

    wait_until(lambda: ("fridge", "temperature") in running.readings(), 20, "good reading after")
    assert running.readings()[("fridge", "temperature")][0] == 4.25
    expected = Counter(reason for _, _, reason in HOSTILE if reason)
    wait_until(
        lambda: {r: running.rejected(r) for r in expected} == expected,
        10,
        f"rejections counted as {dict(expected)}",
    )
    assert running.rejected("decode_error") == 0  # the decoder itself never failed
    # The events survive their bad attributes; a 70-bit event counter is dropped, not kept.
    kinds = Counter(k for k, _ in running.events("dorm-gate"))
    assert kinds == {"card_granted": 1, "card_denied": 2}


# -- the simulated door controllers, over the real broker -----------------------------------


@pytest.fixture
def sim_doors(mosquitto: Any, tmp_path: Path) -> Iterator[tuple[Running, SimRunner]]:
    doors = [("door-1", "cfm-sim-door", "door-1"), ("door-2", "cfm-sim-door", "door-2")]
    site_file = write_site(tmp_path, doors)
    settings = GatewaySettings(
        gateway_id="gw", data_dir=tmp_path / "gw", device_broker=mosquitto.url, site_file=site_file
    )
    gw = Gateway(settings)
    gw.start()
    wait_until(lambda: gw.source.connected, 10, "gateway subscribed")
    profiles = load_profiles()
    sim = SimRunner(
        load_site(site_file, profiles),
        profiles,
        parse_broker_url(mosquitto.url),
        SimOptions(
            tick_s=0.05,
            door_heartbeat_s=0.5,
            held_alarm_s=0.5,
            invalid_card_every_s=0.2,
            seed=3,
        ),
    )
    sim.start()
    yield Running(gw, settings.data_dir / "timeseries.db", mosquitto.url), sim
    sim.stop()
    gw.stop()


def test_simulated_door_faults_arrive_as_the_events_rules_use(
    sim_doors: tuple[Running, SimRunner],
) -> None:
    running, _sim = sim_doors
    broker = parse_broker_url(running.broker_url)
    wait_until(lambda: ("door-1", "door_open") in running.readings(), 20, "door heartbeats")

    send_command(broker, "door-1", "invalid_cards")
    send_command(broker, "door-2", "forced_open")

    def denied() -> list[dict[str, Any]]:
        return [a for k, a in running.events("door-1") if k == "card_denied"]

    wait_until(lambda: len(denied()) >= 6, 30, "the burst of refused cards")
    burst = [a for a in denied() if a.get("reason") == "unknown_card"]
    assert len({a["card"] for a in burst}) >= 6  # several different cards were tried
    assert all(a["card"].startswith("p-") for a in burst)
    wait_until(
        lambda: {"door_forced", "door_closed"} <= {k for k, _ in running.events("door-2")},
        20,
        "forced door, then closed",
    )

    send_command(broker, "door-1", "held_open")
    wait_until(
        lambda: "door_held_open" in [k for k, _ in running.events("door-1")], 20, "held alarm"
    )
    held_at = [k for k, _ in running.events("door-1")].index("door_held_open")
    send_command(broker, "door-1", None, clear=True)
    wait_until(
        lambda: "door_closed" in [k for k, _ in running.events("door-1")][held_at:],
        20,
        "door closed after clear",
    )
    assert running.rejected("unknown_value") == 0  # every sim message fits its profile
    assert running.rejected("wrong_type") == 0
