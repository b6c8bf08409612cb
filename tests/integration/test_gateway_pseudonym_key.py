"""One card pseudonym key per site (issue 15): gateways of one site given the site's key
pseudonymise a card alike, so one student's card is one pseudonym at every door; a gateway
with another key gives another; a gateway of a site with several refuses to start without
the key; and the key shows in no log line and no metric. Real Mosquitto, three gateways,
their uplink read back as the server reads it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from pydantic import SecretStr

from core.mqtturl import make_client, parse_broker_url
from core.wire import DATA_SUBSCRIPTION, decode_batch
from gateway.app import Gateway
from gateway.pseudonym import PseudonymKeyError
from gateway.settings import GatewaySettings
from tests.harness import Mosquitto, free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.integration
SITE_KEY = "the-campus-card-key-Xq3v9Lr2Tm8Wp4Zs"
OTHER_KEY = "another-campus-key-Hb7Nc1Kd5Jf6Gy0Qe"
CARD = 8165538
DOORS = {"gw-a": "door-a", "gw-b": "door-b", "gw-c": "door-c"}


def write_site(path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "site": "keysite",
                "name": "two-gateway campus",
                "timezone": "Asia/Shanghai",
                "buildings": [{"id": "dorm-a", "name": "Dorm A", "kind": "dorm"}],
                "devices": [
                    {
                        "id": door,
                        "profile": "cfm-sim-door",
                        "building": "dorm-a",
                        "location": door,
                        "gateway": gateway,
                    }
                    for gateway, door in DOORS.items()
                ],
            }
        )
    )
    return path


class Uplink:
    """Device events as the server receives them, by device."""

    def __init__(self, url: str) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        ep = parse_broker_url(url)
        self.client = make_client(ep, "key-test-uplink")
        self.client.on_message = self._on_message
        self.client.connect(ep.host, ep.port)
        self.client.subscribe(DATA_SUBSCRIPTION, 1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        batch = decode_batch(bytes(msg.payload))
        with self.lock:
            for e in batch.events:
                self.events.setdefault(e.device_id, []).append(dict(e.attrs))

    def card_of(self, device: str) -> str | None:
        with self.lock:
            found = [a["card"] for a in self.events.get(device, []) if "card" in a]
        return found[0] if found else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_site(tmp_path / "site.yaml")


@pytest.fixture
def uplink(mosquitto: Mosquitto) -> Iterator[Uplink]:
    u = Uplink(mosquitto.url)
    yield u
    u.close()


def settings(
    gateway_id: str, tmp: Path, site: Path, broker: Mosquitto, **key: Any
) -> GatewaySettings:
    return GatewaySettings(
        gateway_id=gateway_id,
        data_dir=tmp / gateway_id,
        site_file=site,
        device_broker=broker.url,
        tsdb="none",
        metrics_port=free_port(),
        **key,
    )


def test_gateways_of_a_site_share_one_pseudonym_per_card_and_never_show_the_key(
    mosquitto: Mosquitto,
    uplink: Uplink,
    site: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = tmp_path / "site-key"
    key_file.write_text(SITE_KEY + "\n")
    gateways = [
        # The same site key, one from the environment's variable, one from a key file.
        Gateway(settings("gw-a", tmp_path, site, mosquitto, pseudonym_key=SecretStr(SITE_KEY))),
        Gateway(settings("gw-b", tmp_path, site, mosquitto, pseudonym_key_file=key_file)),
        Gateway(settings("gw-c", tmp_path, site, mosquitto, pseudonym_key=SecretStr(OTHER_KEY))),
    ]
    device = make_client(parse_broker_url(mosquitto.url), "key-test-doors")
    for gw in gateways:
        gw.start()
    try:
        wait_until(
            lambda: all(gw.source.connected and gw.uplink.connected for gw in gateways),
            20,
            "gateways connected",
        )
        ep = parse_broker_url(mosquitto.url)
        device.connect(ep.host, ep.port)
        device.loop_start()
        now = int(time.time() * 1000)
        for seq, door in enumerate(DOORS.values(), start=1):
            payload = b'{"seq": %d, "ts": %d, "event": "granted", "card": %d, "door": false}' % (
                seq,
                now,
                CARD,
            )
            device.publish(f"campus/keysite/door/{door}/event", payload, qos=1).wait_for_publish(5)

        def every_card() -> list[str] | None:
            found = [uplink.card_of(d) for d in DOORS.values()]
            return [c for c in found if c] if all(found) else None

        cards = wait_until(every_card, 20, "the card event of every door on the uplink")
        metrics = [
            httpx.get(f"http://127.0.0.1:{gw.settings.metrics_port}/metrics", timeout=5).text
            for gw in gateways
        ]
    finally:
        device.disconnect()
        device.loop_stop()
        for gw in gateways:
            gw.stop()
    assert cards is not None
    a, b, c = cards
    assert a == b, "two gateways of one site gave one card two pseudonyms"
    assert a != c, "a gateway with another key gave the same pseudonym"
    assert all(str(p).startswith("p-") and str(CARD) not in str(p) for p in cards)
    shown = caplog.text + "".join(metrics) + "".join(repr(gw.settings) for gw in gateways)
    assert "gateway_readings_accepted_total" in metrics[0]  # the endpoint was read
    assert "subscribed to" in caplog.text  # and the logs were captured
    for key in (SITE_KEY, OTHER_KEY):
        assert key not in shown


def test_a_gateway_of_a_site_with_several_refuses_to_start_without_the_key(
    mosquitto: Mosquitto, site: Path, tmp_path: Path
) -> None:
    with pytest.raises(PseudonymKeyError, match=r"site file names 3 gateways \(gw-a, gw-b, gw-c\)"):
        Gateway(settings("gw-a", tmp_path, site, mosquitto))
    assert not (tmp_path / "gw-a" / "pseudonym.key").exists()
