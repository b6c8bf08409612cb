"""Which device a topic belongs to, and what the gateway subscribes to."""

from __future__ import annotations

from typing import Any

import pytest

from core.profiles import load_profiles
from core.site import SiteConfig
from gateway.decode.match import TopicMatcher

PROFILES = load_profiles()


def site(*devices: tuple[str, str, str]) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": "s",
            "name": "S",
            "buildings": [{"id": "b", "name": "B"}],
            "devices": [
                {"id": i, "profile": p, "address": a, "building": "b", "location": i}
                for i, p, a in devices
            ],
        }
    )


def matcher(*devices: tuple[str, str, str], **kw: Any) -> TopicMatcher:
    return TopicMatcher(site(*devices), PROFILES, "gw-1", **kw)


def test_profiles_sharing_a_topic_shape_are_subscribed_once() -> None:
    m = matcher(
        ("th", "zigbee2mqtt-temperature-humidity", "store_th"),
        ("door", "zigbee2mqtt-contact", "store_door"),
        ("probe", "tasmota-ds18b20", "probe"),
        ("office", "tasmota-am2301", "office"),
    )
    assert m.subscriptions == ["campus/s/#", "tele/+/SENSOR", "zigbee2mqtt/+"]
    route = m.route("zigbee2mqtt/store_door")
    assert route is not None and route.device_id == "door"
    assert m.route("zigbee2mqtt/other") is None
    assert m.pattern_for("zigbee2mqtt/other") is not None  # an unknown device, not topic


def test_friendly_name_with_slash_is_subscribed_by_its_exact_topic() -> None:
    # Zigbee2MQTT friendly names may hold "/" ("kitchen/freezer_th"); `+` is one level.
    m = matcher(("th", "zigbee2mqtt-temperature-humidity", "kitchen/freezer_th"), namespace=None)
    assert m.subscriptions == ["zigbee2mqtt/+", "zigbee2mqtt/kitchen/freezer_th"]
    route = m.route("zigbee2mqtt/kitchen/freezer_th")
    assert route is not None and route.device_id == "th"


@pytest.mark.parametrize("address", ["a+b", "kitchen/#"])
def test_wildcard_in_an_address_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="contains a wildcard"):
        matcher(("th", "zigbee2mqtt-temperature-humidity", address))


def test_two_devices_on_one_topic_are_refused() -> None:
    # Both would be fed each other's readings; better to stop at start-up.
    with pytest.raises(ValueError, match="both publish on 'zigbee2mqtt/x'"):
        matcher(
            ("th", "zigbee2mqtt-temperature-humidity", "x"),
            ("door", "zigbee2mqtt-contact", "x"),
        )
