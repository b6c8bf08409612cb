"""`facility demo`: embedded broker, simulated site, a gateway and the server in one process."""

from __future__ import annotations

import logging
import webbrowser
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from core.mqtturl import parse_broker_url
from core.profiles import load_profiles
from core.site import load_site
from facility.broker import EmbeddedBroker
from firmware_sim.runner import SimOptions, SimRunner
from firmware_sim.serial_slaves import SerialSimulator
from gateway.app import build_gateway
from gateway.settings import GatewaySettings
from server.app import create_app
from server.auth.users import DEMO_USERS
from server.settings import ServerSettings

log = logging.getLogger(__name__)

# Demo speed-ups, said out loud: fridge physics run 60x real time, fridges report every 5 s;
# the campus sensors (soil, air, bin) every 5 s, leak detectors and patrol readers every 20 s, and
# the simulated guard walks 20 s between checkpoints.
DEMO_SIM = SimOptions(
    time_scale=60.0,
    report_every_s=5.0,
    door_heartbeat_s=20.0,
    held_alarm_s=20.0,
    sensor_report_every_s=5.0,
    leak_report_every_s=20.0,
    reader_heartbeat_s=20.0,
    guard_walk_s=20.0,
    bin_report_every_s=5.0,
)


def run_demo(
    *, port: int, mqtt_port: int, data_dir: Path, open_browser: bool, demo_password: str
) -> None:
    broker_url = f"mqtt://127.0.0.1:{mqtt_port}"
    broker = EmbeddedBroker(port=mqtt_port)
    broker.start()
    profiles = load_profiles()
    site = load_site(GatewaySettings.model_fields["site_file"].default, profiles)
    # The serial meters answer on pty pairs; the gateway polls them through the real serial
    # path (pyserial, DL/T 645 framing, pymodbus frames) as it would a USB RS-485 adapter.
    meters = SerialSimulator(site, profiles, data_dir / "serial", time_scale=DEMO_SIM.time_scale)
    gw_settings = GatewaySettings(
        gateway_id="gw-canteen",
        data_dir=data_dir / "gateway",
        device_broker=broker_url,
        serial_ports=meters.ports,
    )
    srv_settings = ServerSettings(
        demo=True,
        data_dir=data_dir / "server",
        broker=broker_url,
        demo_password=SecretStr(demo_password),
        tick_seconds=2.0,
        port=port,
    )
    app = create_app(srv_settings)
    gateway = build_gateway(gw_settings)
    sim = SimRunner(site, profiles, parse_broker_url(broker_url), DEMO_SIM, serial=meters)
    meters.start()
    gateway.start()
    sim.start()
    url = f"http://127.0.0.1:{port}"
    users = ", ".join(u[0] for u in DEMO_USERS)
    print(f"\nCampus Facility Monitor demo: {url}/app  (public page: {url}/)")
    print(f"  logins: {users}; password: {demo_password!r}")
    print(f"  MQTT broker: {broker_url}; data in {data_dir.resolve()}")
    print(f"  try: facility sim fault canteen-fridge-01 compressor_failure --broker {broker_url}")
    print(f"       facility sim fault garden-soil-01 dry --broker {broker_url}\n")
    if open_browser:
        try:
            webbrowser.open(f"{url}/app")
        except webbrowser.Error:
            pass
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        sim.stop()
        gateway.stop()
        meters.stop()
        broker.stop()
