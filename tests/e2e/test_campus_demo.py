"""The demo's campus services end to end through a real Mosquitto: the simulated LoRaWAN bin
(ChirpStack v4 uplinks) and Zigbee2MQTT soil sensor -> gateway -> server. `facility sim
fault canteen-bin-01 fill_up` (the command, as a user types it) fills the bin: a cleaning
order opens; `dry` on garden-soil-01 opens a greening order."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.mqtturl import parse_broker_url
from core.profiles import load_profiles
from core.site import load_site
from firmware_sim.runner import SimOptions, SimRunner, send_command
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from server.app import create_app
from server.settings import ServerSettings
from tests.helpers import token, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def campus(mosquitto: Any, tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    gw_settings = GatewaySettings(
        gateway_id="gw-canteen", data_dir=tmp_path / "gateway", device_broker=mosquitto.url
    )
    srv_settings = ServerSettings(
        demo=True, data_dir=tmp_path / "server", broker=mosquitto.url, tick_seconds=1.0
    )
    gateway = Gateway(gw_settings)
    profiles = load_profiles()
    site = load_site(gw_settings.site_file, profiles)
    # The campus sensors report every second; fridges and doors stay quiet for this test.
    options = SimOptions(
        report_every_s=3600.0,
        door_heartbeat_s=3600.0,
        sensor_report_every_s=1.0,
        bin_report_every_s=1.0,
        tick_s=0.25,
        fridge_door_openings_per_h=0.0,
        seed=11,
    )
    sim = SimRunner(site, profiles, parse_broker_url(mosquitto.url), options)
    with TestClient(create_app(srv_settings)) as client:
        gateway.start()
        sim.start()
        try:
            yield client, mosquitto
        finally:
            sim.stop()
            gateway.stop()


def sim_fault(broker_url: str, device: str, fault: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "facility.cli",
            "sim",
            "fault",
            device,
            fault,
            "--broker",
            broker_url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.timeout(240)
def test_bin_filling_up_and_dry_soil_open_cleaning_and_greening_orders(campus: Any) -> None:
    client, broker = campus
    maint = token(client, "maint")

    def device(device_id: str) -> dict[str, Any]:
        devices = client.get("/api/devices", headers=maint).json()
        return next(d for d in devices if d["id"] == device_id)

    def orders(category: str) -> list[dict[str, Any]]:
        rows = client.get("/api/work-orders", headers=maint).json()
        return [w for w in rows if w["category"] == category]

    def online(device_id: str) -> bool:
        return bool(device(device_id)["online"])

    wait_until(lambda: online("canteen-bin-01") and online("garden-soil-01"), 30, "sensors online")
    assert orders("cleaning") == [] and orders("greening") == []
    fill = device("canteen-bin-01")["values"]["fill_level"]["value"]
    assert fill < 60  # the cleaners' round keeps it low

    sim_fault(broker.url, "canteen-bin-01", "fill_up")
    (cleaning,) = wait_until(lambda: orders("cleaning"), 90, "a cleaning order for the full bin")
    assert (cleaning["device_id"], cleaning["source"]) == ("canteen-bin-01", "auto")
    assert device("canteen-bin-01")["values"]["rssi"]["value"] < 0  # LoRaWAN signal kept

    send_command(parse_broker_url(broker.url), "garden-soil-01", "dry")
    (greening,) = wait_until(lambda: orders("greening"), 90, "a greening order for dry soil")
    assert (greening["device_id"], greening["priority"]) == ("garden-soil-01", "P3")
