"""The whole data path through a real Mosquitto: simulated fridge firmware -> gateway ->
SQLite time-series store and uplink -> server rules -> alert and automatic work order."""

from __future__ import annotations

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
FRIDGE = "canteen-fridge-01"


@pytest.fixture
def running_site(mosquitto: Any, tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    gw_settings = GatewaySettings(
        gateway_id="gw-canteen", data_dir=tmp_path / "gateway", device_broker=mosquitto.url
    )
    srv_settings = ServerSettings(
        demo=True, data_dir=tmp_path / "server", broker=mosquitto.url, tick_seconds=1.0
    )
    gateway = Gateway(gw_settings)
    profiles = load_profiles()
    site = load_site(gw_settings.site_file, profiles)
    # Physics 300x real time, so a failed compressor warms the fridge in seconds. At that
    # speed the kitchen's door openings would come every few seconds and keep lifting the air
    # over the clear level within the demo's 10 s clear time: they are off here.
    sim = SimRunner(
        site,
        profiles,
        parse_broker_url(mosquitto.url),
        SimOptions(
            time_scale=300,
            report_every_s=1.0,
            tick_s=0.25,
            seed=7,
            fridge_door_openings_per_h=0.0,
        ),
    )
    app = create_app(srv_settings)
    with TestClient(app) as client:
        gateway.start()
        sim.start()
        try:
            yield client, mosquitto
        finally:
            sim.stop()
            gateway.stop()


@pytest.mark.timeout(300)
def test_compressor_failure_raises_alert_and_work_order_then_clears(running_site: Any) -> None:
    client, broker = running_site
    maint = token(client, "maint")

    def fridge() -> dict[str, Any]:
        devices = client.get("/api/devices", headers=maint).json()
        return next(d for d in devices if d["id"] == FRIDGE)

    wait_until(lambda: fridge()["online"], 20, f"{FRIDGE} online through the gateway")

    def history() -> dict[str, Any] | None:
        # 503 until the gateway's sink process has made the store (a loaded machine takes
        # seconds to start it); then the readings it wrote.
        got = client.get(f"/api/devices/{FRIDGE}/readings?metric=temperature", headers=maint)
        return got.json() if got.status_code == 200 and got.json()["points"] else None

    first = wait_until(history, 30, "history in the store")
    assert first is not None
    assert first["device_id"] == FRIDGE
    assert {p["metric"] for p in first["points"]} == {"temperature"}

    send_command(parse_broker_url(broker.url), FRIDGE, "compressor_failure")

    def alerts() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = client.get("/api/alerts?state=active", headers=maint).json()
        return [a for a in got if a["device_id"] == FRIDGE]

    active = wait_until(
        lambda: [a for a in alerts() if a["rule"] == "temp_high_critical"],
        120,
        "a critical temperature alert",
    )
    orders = [
        w for w in client.get("/api/work-orders", headers=maint).json() if w["device_id"] == FRIDGE
    ]
    assert len(orders) == 1
    assert orders[0]["source"] == "auto" and orders[0]["category"] == "refrigeration"
    assert orders[0]["alert_id"] in {a["id"] for a in alerts()}
    assert orders[0]["priority"] == "P1"
    assert fridge()["values"]["temperature"]["value"] > 8.0

    send_command(parse_broker_url(broker.url), FRIDGE, None, clear=True)
    try:
        wait_until(lambda: not alerts(), 120, "the fridge's alerts resolved after clear")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still active: {alerts()}; fridge: {fridge()}") from None
    resolved = client.get(f"/api/alerts/{active[0]['id']}", headers=maint).json()
    assert resolved["state"] == "resolved" and resolved["resolved_by"] == "system"
    assert resolved["peak"] > 8.0
    wo = client.get(f"/api/work-orders/{orders[0]['id']}", headers=maint).json()
    assert wo["condition_cleared"] is True and wo["status"] == "open"
