"""deploy/mosquitto/ (mosquitto.conf, acl, the passwd layout) on a real Mosquitto: each
account may do what the site needs and nothing else, and every denial is proven by the
broker's own answer (MQTT 5 PUBACK/SUBACK reason codes) and by what an allowed reader of the
same topic does or does not receive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.profiles import load_profiles
from core.site import DEFAULT_SITE_FILE, load_site
from facility.mosquitto_acl import render_acl
from tests.helpers import wait_until
from tests.security.mqtt_probe import Probe, connect
from tests.security.support import start_deploy_mosquitto

pytestmark = pytest.mark.integration
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
NOT_AUTHORIZED = 0x87
ACCOUNTS = {
    "server": "server-pw-1",
    "gw-canteen": "gw-canteen-pw-1",
    "gw-dorm": "gw-dorm-pw-1",  # a second gateway's account: has no devices in the demo site
    "canteen-fridge-01": "fridge-pw-1",
    "dorm-a-door-01": "door-pw-1",
}
FRIDGE_1 = "campus/demo/cold/canteen-fridge-01/telemetry"
FRIDGE_2 = "campus/demo/cold/canteen-fridge-02/telemetry"
DOOR_1 = "campus/demo/door/dorm-a-door-01/event"
UPLINK = "facility/v1/gw/gw-canteen/data"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[int]:
    port, process = start_deploy_mosquitto(tmp_path, ACCOUNTS)
    yield port
    process.stop()


def login(port: int, user: str) -> Probe:
    probe = connect(port, user, ACCOUNTS[user])
    assert probe.connect_rc == 0, f"{user} could not log in: {probe.connect_rc}"
    return probe


def test_shipped_acl_is_the_one_made_from_the_demo_site() -> None:
    profiles = load_profiles()
    expected = render_acl(load_site(DEFAULT_SITE_FILE, profiles), profiles)
    assert (DEPLOY / "acl").read_text() == expected, (
        "deploy/mosquitto/acl is stale: regenerate it with "
        "`facility deploy mosquitto-acl > deploy/mosquitto/acl`"
    )


def test_anonymous_and_wrong_passwords_are_refused(broker: int) -> None:
    anonymous = connect(broker, None, None)
    assert anonymous.connect_rc != 0
    anonymous.close()
    wrong = connect(broker, "gw-canteen", "not-its-password")
    assert wrong.connect_rc != 0
    wrong.close()


def test_each_account_is_held_to_its_own_topics(broker: int) -> None:
    server = login(broker, "server")
    canteen = login(broker, "gw-canteen")
    other_gw = login(broker, "gw-dorm")
    fridge = login(broker, "canteen-fridge-01")
    door = login(broker, "dorm-a-door-01")
    try:
        # The server reads every gateway's uplink; gateways read (at most) their devices.
        assert server.subscribe("facility/v1/gw/+/data", "facility/v1/gw/+/status") == [1, 1]
        canteen.subscribe("campus/demo/#")  # as the gateway does: its site's namespace
        other_gw.subscribe("campus/demo/#")
        fridge.subscribe("campus/#", "facility/#")
        door.subscribe("campus/#")

        # Allowed: a device publishes on its own topic, its gateway receives it.
        assert fridge.publish(FRIDGE_1, b'{"t": 3.1}') == 0
        wait_until(lambda: canteen.got(FRIDGE_1), 10, "the canteen gateway to get its fridge")
        assert canteen.publish(UPLINK, b"{}") == 0
        wait_until(lambda: server.got(UPLINK), 10, "the server to get the canteen uplink")

        # Denied: a device on another device's topic (a forged fridge).
        assert fridge.publish(FRIDGE_2, b'{"t": 30}') == NOT_AUTHORIZED
        # Denied: a device on a gateway's uplink (a forged batch straight to the server).
        assert fridge.publish(UPLINK, b"{}") == NOT_AUTHORIZED
        assert door.publish("facility/v1/gw/dorm-a-door-01/data", b"{}") == NOT_AUTHORIZED
        # Denied: a gateway on another gateway's uplink and status (a forged gateway).
        assert other_gw.publish(UPLINK, b"{}") == NOT_AUTHORIZED
        assert (
            other_gw.publish("facility/v1/gw/gw-canteen/status", b'{"state": "offline"}')
            == NOT_AUTHORIZED
        )
        # Denied: the server writes nothing; no one sends simulator commands in production.
        assert server.publish(FRIDGE_1, b"{}") == NOT_AUTHORIZED
        assert server.publish("facility/v1/sim/canteen-fridge-01/command", b"{}") == (
            NOT_AUTHORIZED
        )
        assert canteen.publish(DOOR_1, b"{}") == NOT_AUTHORIZED  # gateways do not play devices

        # A message all may see arrives last; after it, nothing denied can still be on its way.
        assert door.publish(DOOR_1, b'{"open": true}') == 0
        wait_until(lambda: canteen.got(DOOR_1), 10, "the canteen gateway to get the door")
        assert not canteen.got(FRIDGE_2), "a forged fridge message reached the gateway"
        assert not other_gw.received, f"gw-dorm read devices that are not its: {other_gw.received}"
        assert not fridge.received, f"a device read others' topics: {fridge.received}"
        assert not door.received, f"a device read others' topics: {door.received}"
        uplink = [t for t, _ in server.received]
        assert uplink == [UPLINK], f"forged uplink reached the server: {uplink}"
    finally:
        for p in (server, canteen, other_gw, fridge, door):
            p.close()
