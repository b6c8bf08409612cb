"""LoRaWAN through ChirpStack v4's MQTT integration, decoded by the chirpstack-bin-level
profile through the gateway's real routing and JSON decoder: ChirpStack's own documented
uplink (tests/fixtures/payloads/chirpstack-v4-uplink-docs.json, verbatim; see SOURCES.md
there) decodes; malformed uplinks are refused with a named reason and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import yaml

from core.profiles import load_profiles
from core.readings import unix_ms
from core.site import SiteConfig, load_site
from core.yamlfile import ConfigError
from gateway.decode.json_payload import JsonDecoder, WireDecoded
from gateway.decode.match import TopicMatcher
from gateway.decode.mqtt_message import MessageDecoder
from gateway.sources.raw import RawMessage

DOCS_UPLINK = (
    Path(__file__).resolve().parents[2] / "fixtures" / "payloads" / "chirpstack-v4-uplink-docs.json"
)
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"  # the documented example's application
TOPIC = f"application/{APP}/device/0101010101010101/event/up"
HEARD = datetime(2022, 7, 18, 9, 34, 16, tzinfo=UTC)  # a second after the uplink's time
PROFILES = load_profiles()


def site() -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": "t",
            "name": "t",
            "buildings": [{"id": "canteen", "name": "食堂", "kind": "canteen"}],
            "devices": [
                {
                    "id": "canteen-bin-01",
                    "profile": "chirpstack-bin-level",
                    "building": "canteen",
                    "location": "后门",
                    "address": "0101010101010101",
                    "topic_values": {"application_id": APP},
                }
            ],
        }
    )


def decode(payload: bytes, topic: str = TOPIC) -> WireDecoded:
    matcher = TopicMatcher(site(), PROFILES, "gw-1")
    decoder = MessageDecoder(matcher, JsonDecoder(), max_payload_bytes=65536)
    return decoder.decode(RawMessage(topic, payload, unix_ms(HEARD)))


def test_the_documented_uplink_decodes_through_the_profile() -> None:
    raw = DOCS_UPLINK.read_bytes()
    assert b"\t" in raw  # as published, tabs and all
    out = decode(raw)
    assert out.rejections == []
    got = {r["m"]: (r["v"], r.get("u")) for r in out.readings}
    assert got == {"rssi": (-36, "dBm"), "snr": (10.5, "dB"), "spreading_factor": (11, None)}
    # The uplink's own time (nanoseconds dropped to the millisecond), not the receipt time.
    stamp = datetime(2022, 7, 18, 9, 34, 15, 775000, tzinfo=UTC)
    assert {r["t"] for r in out.readings} == {unix_ms(stamp)}
    assert all("q" not in r for r in out.readings)  # good quality: not restamped


def test_the_gateway_subscribes_to_every_application_of_the_profile() -> None:
    matcher = TopicMatcher(site(), PROFILES, "gw-1")
    assert "application/+/device/+/event/up" in matcher.subscriptions
    assert matcher.route(TOPIC) is not None


def doc() -> dict[str, object]:
    value: dict[str, object] = orjson.loads(DOCS_UPLINK.read_bytes())
    return value


@pytest.mark.parametrize(
    ("change", "reason", "says"),
    [
        pytest.param(
            lambda d: d["deviceInfo"].update(devEui="0202020202020202"),
            "wrong_address",
            "deviceInfo.devEui='0202020202020202' is not this topic's device (0101010101010101)",
            id="dev-eui-of-another-device",
        ),
        pytest.param(
            lambda d: d.pop("deviceInfo"),
            "missing_field",
            "field 'deviceInfo.devEui' naming the device is missing",
            id="no-device-info",
        ),
        pytest.param(
            lambda d: d["deviceInfo"].update(devEui=101010101),
            "wrong_address",
            "deviceInfo.devEui=101010101 is not this topic's device",
            id="dev-eui-not-text",
        ),
    ],
)
def test_a_malformed_uplink_is_refused_with_a_named_reason(
    change: object, reason: str, says: str
) -> None:
    d = doc()
    change(d)  # type: ignore[operator]
    out = decode(orjson.dumps(d))
    assert out.readings == [] and out.events == []
    assert [r.reason.value for r in out.rejections] == [reason]
    assert says in out.rejections[0].detail


def test_protobuf_instead_of_json_and_an_array_are_refused() -> None:
    protobuf = bytes.fromhex("0a2433616337653363342d343430312d346238642d393338362d")
    assert [r.reason.value for r in decode(protobuf).rejections] == ["not_json"]
    assert [r.reason.value for r in decode(b"[1, 2]").rejections] == ["not_object"]


def test_a_device_of_another_application_is_unknown() -> None:
    other = TOPIC.replace(APP, "00000000-0000-0000-0000-000000000000")
    out = decode(DOCS_UPLINK.read_bytes(), other)
    assert [r.reason.value for r in out.rejections] == ["unknown_device"]
    assert "looks like profile chirpstack-bin-level" in out.rejections[0].detail


def test_site_must_give_the_topics_other_placeholders(tmp_path: Path) -> None:
    doc = site().model_dump(mode="json")
    del doc["devices"][0]["topic_values"]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_site(path, PROFILES)
    line = next(i for i, s in enumerate(path.read_text().splitlines(), 1) if "- address:" in s)
    assert (
        f"site.yaml:{line}: devices.0: Value error, device 'canteen-bin-01': topic_values "
        "must give exactly ['application_id']" in str(info.value)
    )
