"""Every shipped MQTT profile through a real Mosquitto and the real gateway, with payloads
shaped as the devices publish them; the normalised readings and events land in the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.clock import utcnow
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from tests.helpers import wait_until
from tests.integration.test_gateway_mqtt import publish, publisher

pytestmark = pytest.mark.integration

DEVICES = [
    # id, profile, address
    ("store-th", "zigbee2mqtt-temperature-humidity", "kitchen_store_th"),
    ("store-door", "zigbee2mqtt-contact", "kitchen_store_door"),
    ("cold-probe", "tasmota-ds18b20", "tasmota_F1A2B3"),
    ("office-th", "tasmota-am2301", "tasmota_0A0B0C"),
    ("dorm-gate", "access-controller-json", "AC0001"),
    ("fridge", "cfm-sim-fridge", "fridge"),
    ("door", "cfm-sim-door", "door"),
]


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


@pytest.fixture
def gateway(mosquitto: Any, tmp_path: Path) -> Any:
    site = tmp_path / "site.yaml"
    site.write_text(
        yaml.safe_dump(
            {
                "site": "demo",
                "name": "profiles",
                "timezone": "Asia/Shanghai",
                "buildings": [{"id": "b", "name": "B", "kind": "dorm"}],
                "devices": [
                    {
                        "id": i,
                        "profile": p,
                        "address": a,
                        "building": "b",
                        "location": i,
                        "gateway": "gw",
                    }
                    for i, p, a in DEVICES
                ],
            }
        )
    )
    settings = GatewaySettings(
        gateway_id="gw", data_dir=tmp_path / "gw", device_broker=mosquitto.url, site_file=site
    )
    gw = Gateway(settings)
    gw.start()
    wait_until(lambda: gw.source.connected, 10, "gateway connected")
    yield gw, settings.data_dir / "timeseries.db"
    gw.stop()


def test_shipped_mqtt_profiles_through_the_broker(gateway: Any, mosquitto: Any) -> None:
    gw, db = gateway
    dev = publisher(mosquitto.url)
    now_ms = int(utcnow().timestamp() * 1000)
    local = utcnow().astimezone().isoformat(timespec="seconds")
    messages = [
        (
            "zigbee2mqtt/kitchen_store_th",
            {
                "battery": 100,
                "humidity": 58.25,
                "linkquality": 126,
                "pressure": 1008.3,
                "temperature": 21.61,
                "voltage": 3005,
            },
        ),
        (
            "zigbee2mqtt/kitchen_store_door",
            {"battery": 91, "contact": False, "linkquality": 150, "voltage": 3025},
        ),
        (
            "tele/tasmota_F1A2B3/SENSOR",
            {
                "Time": "2026-11-25T14:49:09",
                "DS18B20": {"Id": "01144A0CB2AA", "Temperature": 38.5},
                "TempUnit": "F",
            },
        ),
        (
            "tele/tasmota_0A0B0C/SENSOR",
            {
                "Time": "2026-11-25T14:49:09",
                "AM2301": {"Temperature": 20.6, "Humidity": 46.7, "DewPoint": 8.6},
                "TempUnit": "C",
            },
        ),
        (
            "access/AC0001/event",
            {"index": 7, "time": local, "result": "granted", "card": "0012345678", "reader": "in"},
        ),
        ("access/AC0001/event", {"index": 8, "time": local, "alarm": "forced", "door": "open"}),
        (
            "campus/demo/cold/fridge/telemetry",
            {"seq": 1, "ts": now_ms, "t": 3.4, "door": False, "bat": 88, "rssi": -61},
        ),
        (
            "campus/demo/door/door/event",
            {
                "seq": 1,
                "ts": now_ms,
                "event": "denied",
                "door": False,
                "card": "A1B2C3D4",
                "reader": "in",
            },
        ),
    ]
    for topic, body in messages:
        publish(dev, topic, json.dumps(body).encode())
    # Oversize and wrong-typed payloads are refused with a reason, and disturb nothing.
    publish(
        dev, "zigbee2mqtt/kitchen_store_th", b'{"temperature": 1, "pad": "' + b"x" * 20000 + b'"}'
    )
    publish(dev, "zigbee2mqtt/kitchen_store_door", b'{"contact": "maybe"}')
    dev.loop_stop()

    want = {
        ("store-th", "temperature"): 21.61,
        ("store-th", "humidity"): 58.25,
        ("store-th", "battery"): 100.0,
        ("store-th", "link_quality"): 126.0,
        ("store-door", "door_open"): 1.0,
        ("store-door", "battery"): 91.0,
        ("cold-probe", "temperature"): pytest.approx(3.611111, abs=1e-5),  # 38.5 °F
        ("office-th", "temperature"): 20.6,
        ("office-th", "humidity"): 46.7,
        ("dorm-gate", "door_open"): 1.0,
        ("fridge", "temperature"): 3.4,
        ("fridge", "door_open"): 0.0,
        ("door", "door_open"): 0.0,
    }

    def stored() -> dict[tuple[str, str], float]:
        return {
            (d, m): v
            for d, m, v in rows(db, "SELECT device_id, metric, value_num FROM ts_readings")
        }

    wait_until(lambda: set(want) <= set(stored()), 20, "every profile's readings stored")
    got = stored()
    for key, value in want.items():
        assert got[key] == value, key
    units = {(d, m): u for d, m, u in rows(db, "SELECT device_id, metric, unit FROM ts_readings")}
    assert units[("cold-probe", "temperature")] == "°C"

    events = wait_until(
        lambda: rows(db, "SELECT device_id, kind, attrs FROM ts_events ORDER BY device_id, kind"),
        20,
        "events stored",
    )
    kinds = {(d, k) for d, k, _ in events}
    assert {
        ("dorm-gate", "card_granted"),
        ("dorm-gate", "door_forced"),
        ("dorm-gate", "door_opened"),
        ("door", "card_denied"),
        ("store-door", "door_opened"),
    } <= kinds
    attrs = {(d, k): json.loads(a) if a else {} for d, k, a in events}
    card = attrs[("dorm-gate", "card_granted")]["card"]
    assert card.startswith("p-") and "12345678" not in card  # pseudonymised at the gateway
    assert attrs[("door", "card_denied")]["card"].startswith("p-")

    def rejected(reason: str) -> float:
        v = gw.metrics.registry.get_sample_value("gateway_rejections_total", {"reason": reason})
        return v or 0.0

    wait_until(lambda: rejected("oversize") == 1 and rejected("wrong_type") == 1, 10, "rejections")
