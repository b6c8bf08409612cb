"""The generic profile features the MQTT profiles are built from: nested paths, value maps,
event maps, per-payload units, device time policies, pseudonyms; and the shipped profiles'
device-specific facts (Zigbee2MQTT contact sense, Tasmota °F and zone-less time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.profiles import Profile, load_profiles
from core.readings import Quality, RejectReason
from gateway.decode.json_payload import Decoded, JsonDecoder

SHIPPED = load_profiles()
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def profile(**overrides: Any) -> Profile:
    """A made-up controller that reports nested JSON, as several real bridges do."""
    doc: dict[str, Any] = {
        "profile": "test-nested",
        "vendor": "Test",
        "model": "nested",
        "device_class": "dorm_door",
        "transport": {
            "kind": "mqtt",
            "topic": "t/{address}",
            "sequence": "meta.n",
            "timestamp": "meta.at",
            "timestamp_format": "iso8601",
        },
        "metrics": [
            {
                "key": "door_open",
                "type": "bool",
                "source": "door.state",
                "map": {"open": True, "shut": False, 1: True, 0: False},
            },
            {
                "key": "temperature",
                "preset": "temperature_c",
                "source": "probe.t",
                "source_unit": "°C",
                "source_unit_field": "probe.unit",
            },
            {"key": "mode", "type": "str", "source": "mode", "map": {"1": "day", "2": "night"}},
        ],
        "events": [
            {
                "from_field": {
                    "source": "event.granted",
                    "map": {True: "card_granted", False: "card_denied"},
                },
                "attrs": {"card": "event.card-number", "door": "event.door-id"},
                "pseudonymize": ["card"],
            },
            {
                "from_field": {
                    "source": "event.type",
                    "map": {"20": "door_forced", "21": "door_held_open"},
                    "ignore": [1, 2],
                }
            },
        ],
    }
    doc.update(overrides)
    return Profile.model_validate(doc)


NESTED = profile()


def decode(body: bytes, p: Profile = NESTED, decoder: JsonDecoder | None = None) -> Decoded:
    return (decoder or JsonDecoder(b"k" * 32)).decode(
        device_id="d1", profile=p, topic="t/d1", payload=body, received_at=NOW
    )


def test_nested_paths_reach_values_time_and_sequence() -> None:
    out = decode(
        b'{"meta": {"n": 41, "at": "2026-11-25T19:59:00+08:00"},'
        b' "door": {"state": "open"}, "probe": {"t": 39.2, "unit": "F"}}'
    )
    assert out.rejections == []
    got = {r.metric: r.value for r in out.readings}
    assert got == {"door_open": True, "temperature": pytest.approx(4.0)}
    assert {r.seq for r in out.readings} == {41}
    assert {r.measured_at for r in out.readings} == {NOW - timedelta(minutes=1)}


def test_value_map_takes_words_and_numbers_and_refuses_others() -> None:
    assert [r.value for r in decode(b'{"door": {"state": 0}}').readings] == [False]
    assert [r.value for r in decode(b'{"door": {"state": "shut"}}').readings] == [False]
    assert [r.value for r in decode(b'{"mode": 2}').readings] == ["night"]
    out = decode(b'{"door": {"state": "ajar"}, "mode": "1"}')
    assert [r.value for r in out.readings] == ["day"]
    assert [r.reason for r in out.rejections] == [RejectReason.UNKNOWN_VALUE]
    assert "door_open (door.state)='ajar' is none of" in out.rejections[0].detail


def test_map_values_must_fit_the_metric_type() -> None:
    with pytest.raises(ValueError, match="is not a bool value"):
        profile(
            metrics=[{"key": "door_open", "type": "bool", "source": "d", "map": {"open": "yes"}}]
        )


def test_boolean_event_codes_and_nested_attributes() -> None:
    out = decode(b'{"event": {"granted": false, "card-number": 8165538, "door-id": 3}}')
    [event] = out.events
    assert event.kind == "card_denied"
    assert event.attrs["door"] == 3
    assert event.attrs["card"].startswith("p-") and "8165538" not in event.attrs["card"]
    # The same card as text is the same pseudonym: vendors differ in how they send it.
    again = decode(b'{"event": {"granted": true, "card-number": "8165538"}}')
    assert again.events[0].kind == "card_granted"
    assert again.events[0].attrs["card"] == event.attrs["card"]


def test_unknown_event_code_is_counted_ignored_codes_are_not() -> None:
    assert decode(b'{"event": {"type": 2}}').rejections == []
    assert [e.kind for e in decode(b'{"event": {"type": 20}}').events] == ["door_forced"]
    out = decode(b'{"event": {"type": 99}}')
    assert out.events == []
    assert [r.reason for r in out.rejections] == [RejectReason.UNKNOWN_VALUE]
    assert "event.type=99" in out.rejections[0].detail


def test_pseudonymize_must_name_a_copied_attribute() -> None:
    # A typo here would store card numbers in clear; the profile is refused instead.
    with pytest.raises(ValueError, match="pseudonymize names attrs"):
        profile(
            events=[
                {
                    "from_field": {"source": "r", "map": {"ok": "card_granted"}},
                    "attrs": ["card"],
                    "pseudonymize": ["card_no"],
                }
            ]
        )


def test_unit_field_that_is_not_a_unit_refuses_the_value() -> None:
    out = decode(b'{"probe": {"t": 39.2, "unit": 7}}')
    assert out.readings == []
    assert [r.reason for r in out.rejections] == [RejectReason.WRONG_TYPE]
    out = decode(b'{"probe": {"t": 300, "unit": "K"}}')
    assert [r.reason for r in out.rejections] == [RejectReason.UNKNOWN_VALUE]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"probe": {"t": 1' + b"0" * 400 + b"}}", RejectReason.OUT_OF_RANGE),
        (b'{"probe": {"t": NaN}}', RejectReason.NOT_FINITE),
        (b'{"mode": "\\ud800"}', RejectReason.UNKNOWN_VALUE),
        (
            b'{"event": {"type": 20, "x": 1}, "event2": NaN, "meta": {"n": 1' + b"0" * 30 + b"}}",
            None,
        ),
    ],
)
def test_values_the_strict_parser_refuses_never_escape(
    payload: bytes, reason: RejectReason | None
) -> None:
    out = decode(payload)
    assert [r.reason for r in out.rejections] == ([reason] if reason else [])
    assert all(r.seq is None for r in out.readings)
    assert all(
        e.event_id.endswith("/door_forced/" + str(int(NOW.timestamp() * 1000))) for e in out.events
    )


def test_surrogate_or_overlong_attribute_is_dropped_with_a_reason() -> None:
    out = decode(
        b'{"event": {"granted": true, "door-id": "\\ud83d", "card-number": "' + b"9" * 300 + b'"}}'
    )
    assert [e.kind for e in out.events] == ["card_granted"]
    assert out.events[0].attrs == {}
    assert [r.reason for r in out.rejections] == [RejectReason.WRONG_TYPE] * 2
    # The rejection is logged: a card number, even a malformed one, stays out of it.
    details = " ".join(r.detail for r in out.rejections)
    assert "999" not in details and "event.card-number=(withheld)" in details


@pytest.mark.parametrize(
    ("policy", "quality"), [("restamp", Quality.RESTAMPED), ("receive_time", Quality.GOOD)]
)
def test_time_without_zone_follows_the_profile_policy(policy: str, quality: Quality) -> None:
    p = profile(
        transport={
            "kind": "mqtt",
            "topic": "t/{address}",
            "timestamp": "meta.at",
            "timestamp_format": "iso8601",
            "naive_timestamp": policy,
        }
    )
    out = decode(b'{"meta": {"at": "2026-11-25T19:59:00"}, "mode": 1}', p)
    [reading] = out.readings
    assert (reading.measured_at, reading.quality) == (NOW, quality)


@pytest.mark.parametrize(
    "stamp",
    [b'"2026-11-25T11:59:00.000Z"', b'"2026-11-25T12:59:00+01:00"', b"1795607940000"],
)
def test_auto_time_takes_iso_text_or_unix_milliseconds(stamp: bytes) -> None:
    p = profile(
        transport={
            "kind": "mqtt",
            "topic": "t/{address}",
            "timestamp": "last_seen",
            "timestamp_format": "auto",
        }
    )
    out = decode(b'{"last_seen": ' + stamp + b', "mode": 1}', p)
    assert [(r.measured_at, r.quality) for r in out.readings] == [
        (NOW - timedelta(minutes=1), Quality.GOOD)
    ]


def test_per_profile_max_bytes_is_configurable() -> None:
    p = profile(transport={"kind": "mqtt", "topic": "t/{address}", "max_bytes": 64})
    assert decode(b'{"mode": 1}', p).readings
    out = decode(b'{"mode": 1, "pad": "' + b"x" * 64 + b'"}', p)
    assert [r.reason for r in out.rejections] == [RejectReason.OVERSIZE]


# -- shipped profiles: the facts of each device -------------------------------------------


def shipped(name: str, body: bytes, decoder: JsonDecoder | None = None) -> Decoded:
    return decode(body, SHIPPED[name], decoder)


def test_zigbee_contact_true_means_closed() -> None:
    # Zigbee2MQTT's MCCGQ11LM page: "Indicates if the contact is closed (= true) or open
    # (= false)". Getting this backwards would report every closed door as held open.
    dec = JsonDecoder(b"k" * 32)
    closed = shipped("zigbee2mqtt-contact", b'{"contact": true, "voltage": 3015}', dec)
    opened = shipped("zigbee2mqtt-contact", b'{"contact": false, "voltage": 3015}', dec)
    assert {r.metric: r.value for r in closed.readings}["door_open"] is False
    assert {r.metric: r.value for r in opened.readings}["door_open"] is True
    assert [e.kind for e in opened.events] == ["door_opened"]
    assert {r.metric: r.value for r in opened.readings}["battery_voltage"] == 3.015


def test_zigbee_repeated_state_is_not_a_new_door_event() -> None:
    # Zigbee2MQTT republishes the whole state on every battery or link report.
    dec = JsonDecoder(b"k" * 32)
    kinds = [
        [e.kind for e in shipped("zigbee2mqtt-contact", b'{"contact": %s}' % c, dec).events]
        for c in (b"true", b"true", b"false", b"false", b"true")
    ]
    assert kinds == [["door_closed"], [], ["door_opened"], [], ["door_closed"]]


@pytest.mark.parametrize("name", ["tasmota-ds18b20", "tasmota-am2301", "tasmota-si7021"])
def test_tasmota_time_is_used_only_with_its_utc_offset(name: str) -> None:
    key = {"tasmota-ds18b20": "DS18B20", "tasmota-am2301": "AM2301", "tasmota-si7021": "SI7021"}
    # Tasmota's support_rtc.ino: "2017-03-07T11:08:02-07:00" if SetOption52 = 1, else
    # "2017-03-07T11:08:02" (local time, zone unknown to us).
    body = '{"Time":"%s","%s":{"Temperature":38.5},"TempUnit":"F"}'
    naive = shipped(name, (body % ("2026-11-25T20:59:00", key[name])).encode())
    zoned = shipped(name, (body % ("2026-11-25T19:59:00+08:00", key[name])).encode())
    assert [(r.measured_at, r.quality) for r in naive.readings] == [(NOW, Quality.GOOD)]
    assert [r.measured_at for r in zoned.readings] == [NOW - timedelta(minutes=1)]
    assert [r.value for r in zoned.readings] == [pytest.approx(3.611111)]
    assert [r.unit for r in zoned.readings] == ["°C"]


def test_access_controller_denied_card_keeps_its_reason() -> None:
    out = shipped(
        "access-controller-json",
        b'{"index": 9, "time": "2026-11-25T19:59:00+08:00", "result": "denied",'
        b' "card": "0099999999", "reader": "in", "reason": "outside_schedule"}',
    )
    [event] = out.events
    assert event.kind == "card_denied" and event.event_id.endswith("/9")
    assert event.attrs["reason"] == "outside_schedule" and event.attrs["reader"] == "in"
    assert event.attrs["card"].startswith("p-")
