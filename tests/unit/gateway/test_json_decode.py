"""Bad payloads are rejected with a named reason; good values in the same message survive."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.profiles import load_profiles
from core.readings import Quality, RejectReason
from gateway.decode.json_payload import JsonDecoder

FRIDGE = load_profiles()["cfm-sim-fridge"]
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TS = int(NOW.timestamp() * 1000)


def decode(payload: bytes, decoder: JsonDecoder | None = None):  # type: ignore[no-untyped-def]
    return (decoder or JsonDecoder()).decode(
        device_id="canteen-fridge-01",
        profile=FRIDGE,
        topic="campus/demo/cold/x/telemetry",
        payload=payload,
        received_at=NOW,
    )


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b"{not json", RejectReason.NOT_JSON, "not JSON"),
        (b"[1, 2]", RejectReason.NOT_OBJECT, "not an object"),
        (b'{"t": "hot"}', RejectReason.WRONG_TYPE, "temperature (t)='hot' is not a number"),
        (b'{"t": NaN}', RejectReason.NOT_FINITE, "temperature (t)=nan is not a finite"),
        (b'{"t": -Infinity}', RejectReason.NOT_FINITE, "not a finite number"),
        (b'{"t": 1e999}', RejectReason.NOT_FINITE, "not a finite number"),
        (b'{"t": 99.5}', RejectReason.OUT_OF_RANGE, "outside valid range"),
        (b'{"door": false}', RejectReason.MISSING_FIELD, "'t' missing"),
        (b'{"t": true}', RejectReason.WRONG_TYPE, "is not a number"),
        (b'{"t": 3.0, "door": 3}', RejectReason.WRONG_TYPE, "door_open (door)=3"),
    ],
)
def test_bad_payload_is_rejected_with_reason(
    payload: bytes, reason: RejectReason, words: str
) -> None:
    out = decode(payload)
    assert [r.reason for r in out.rejections] == [reason]
    assert words in out.rejections[0].detail
    assert "canteen-fridge-01" in out.rejections[0].detail


def test_one_bad_metric_does_not_lose_the_good_ones() -> None:
    out = decode(b'{"seq": 4, "ts": %d, "t": 3.25, "door": "ajar", "bat": 140, "rssi": -60}' % TS)
    assert {r.metric: r.value for r in out.readings} == {"temperature": 3.25, "rssi": -60.0}
    assert sorted(r.reason for r in out.rejections) == [
        RejectReason.OUT_OF_RANGE,
        RejectReason.WRONG_TYPE,
    ]


def test_nan_loses_only_its_own_metric() -> None:
    out = decode(b'{"t": NaN, "bat": 80}')
    assert {r.metric: r.value for r in out.readings} == {"battery": 80.0}
    assert [r.reason for r in out.rejections] == [RejectReason.NOT_FINITE]


def test_oversize_payload_is_rejected_before_parsing() -> None:
    out = decode(b'{"t": 3.0, "pad": "' + b"x" * 20000 + b'"}')
    assert [r.reason for r in out.rejections] == [RejectReason.OVERSIZE]
    assert out.readings == []


def test_device_time_and_sequence_make_a_stable_reading_id() -> None:
    payload = b'{"seq": 17, "ts": %d, "t": 3.5}' % (TS - 60_000)
    a, b = decode(payload), decode(payload)
    assert a.readings[0].reading_id == b.readings[0].reading_id
    assert a.readings[0].measured_at == NOW - timedelta(minutes=1)
    assert a.readings[0].seq == 17


def test_implausible_device_clock_is_restamped_not_dropped() -> None:
    out = decode(b'{"seq": 1, "ts": 1000, "t": 3.5}')
    assert out.readings[0].measured_at == NOW
    assert out.readings[0].quality is Quality.RESTAMPED


def test_door_opened_event_fires_on_change_only() -> None:
    dec = JsonDecoder()
    kinds = []
    for i, door in enumerate(["false", "true", "true", "false", "true"]):
        out = decode(b'{"seq": %d, "ts": %d, "t": 3, "door": %s}' % (i, TS + i, door.encode()), dec)
        kinds.append([e.kind for e in out.events])
    assert kinds == [[], ["door_opened"], [], [], ["door_opened"]]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(payload: bytes) -> None:
    out = decode(payload)
    assert out.readings == [] or out.rejections is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["t", "door", "bat", "rssi", "seq", "ts", "comp"]), json_values)
)
def test_any_json_object_yields_only_valid_readings(doc: dict[str, object]) -> None:
    out = decode(json.dumps(doc).encode())
    for r in out.readings:
        spec = FRIDGE.metric(r.metric)
        assert spec is not None
        valid = spec.resolved_valid
        if isinstance(r.value, float):
            assert valid.min is None or r.value >= valid.min
            assert valid.max is None or r.value <= valid.max


def test_wire_form_counts_restamped_readings() -> None:
    out = JsonDecoder().decode_wire(
        device_id="canteen-fridge-01",
        profile=FRIDGE,
        topic="campus/demo/cold/x/telemetry",
        payload=b'{"seq": 1, "ts": 1000, "t": 3.5, "bat": 80}',
        received_ms=TS,
    )
    assert out.restamped == 2
    assert [(w["id"], w["t"], w["r"], w["q"]) for w in out.readings] == [
        (f"canteen-fridge-01/temperature/{TS}/1", TS, TS, "restamped"),
        (f"canteen-fridge-01/battery/{TS}/1", TS, TS, "restamped"),
    ]


def test_receive_time_finer_than_the_wire_stays_on_the_readings() -> None:
    at = NOW + timedelta(microseconds=1500)
    out = JsonDecoder().decode(
        device_id="d", profile=FRIDGE, topic="t", payload=b'{"t": 3.5}', received_at=at
    )
    [reading] = out.readings
    assert (reading.measured_at, reading.received_at) == (at, at)
    assert reading.reading_id == f"d/temperature/{TS + 1}"


CONTACT = load_profiles()["zigbee2mqtt-contact"]


def contact(decoder: JsonDecoder, payload: bytes, received_ms: int, retained: bool = False):  # type: ignore[no-untyped-def]
    return decoder.decode_wire(
        device_id="dorm-a-door-1",
        profile=CONTACT,
        topic="zigbee2mqtt/dorm-a-door-1",
        payload=payload,
        received_ms=received_ms,
        retained=retained,
    )


def test_messages_stamped_on_receipt_in_one_read_keep_their_own_ids() -> None:
    # A door opening and closing, read from the broker in one block (same receive ms), and a
    # third message whose receive time lags: each keeps its own time, in order, so no sink
    # takes one for a replay of another.
    dec = JsonDecoder()
    stamps = [
        contact(dec, b'{"contact": %s}' % state, at).readings[0]["t"]
        for state, at in ((b"false", TS), (b"true", TS), (b"false", TS - 5))
    ]
    assert stamps == [TS, TS + 1, TS + 2]
    # Another device's clock is its own; a device that stamps its messages is left alone.
    other = dec.decode_wire(
        device_id="dorm-a-door-2",
        profile=CONTACT,
        topic="zigbee2mqtt/dorm-a-door-2",
        payload=b'{"contact": true}',
        received_ms=TS,
    )
    assert other.readings[0]["t"] == TS
    own = contact(dec, b'{"contact": true, "last_seen": %d}' % (TS - 60_000), TS)
    assert own.readings[0]["t"] == TS - 60_000


def test_retained_message_is_stored_only_with_the_devices_own_time() -> None:
    dec = JsonDecoder()
    stale = contact(dec, b'{"contact": false}', TS, retained=True)
    assert stale.readings == [] and stale.events == []
    [rejection] = stale.rejections
    assert rejection.reason is RejectReason.STALE_RETAINED
    assert "own time" in rejection.detail
    timed = contact(dec, b'{"contact": false, "last_seen": %d}' % (TS - 1000), TS, retained=True)
    assert [w["t"] for w in timed.readings] == [TS - 1000] and not timed.rejections
