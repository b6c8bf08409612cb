"""The uplink wire form of readings and events (core/wire.py): built in one place, the same
whichever way a reading reaches it, and read back by the server's schema key for key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from core.readings import DeviceEvent, Quality, Reading, now_ms, unix_ms
from core.wire import (
    WireEvent,
    WireReading,
    _WireEvent,
    _WireReading,
    decode_batch,
    encode_batch,
    encode_event,
    encode_reading,
    encode_readings,
    wire_event,
    wire_reading,
)

AT = datetime(2025, 11, 24, 16, 0, 0, 250_000, tzinfo=UTC)


def reading(metric: str, **kw: object) -> Reading:
    fields: dict[str, object] = {
        "reading_id": f"fridge-1/{metric}/{unix_ms(AT)}",
        "device_id": "fridge-1",
        "metric": metric,
        "value": 3.5,
        "unit": "°C",
        "measured_at": AT,
        "received_at": AT + timedelta(milliseconds=40),
    }
    fields.update(kw)
    return Reading(**fields)  # type: ignore[arg-type]


def test_the_typed_forms_have_the_keys_the_server_validates() -> None:
    assert set(WireReading.__annotations__) == set(_WireReading.model_fields)
    assert set(WireEvent.__annotations__) == set(_WireEvent.model_fields)


def test_optional_keys_are_left_out_and_key_order_is_fixed() -> None:
    bare = wire_reading("i", "d", "m", True, 1, 2, None, None, None)
    assert list(bare) == ["id", "d", "m", "v", "t", "r"]
    full = wire_reading("i", "d", "m", 1.5, 1, 2, "°C", 7, "restamped")
    assert list(full) == ["id", "d", "m", "v", "t", "r", "u", "s", "q"]
    assert wire_event("i", "d", "door_forced", 1, 2, {}) == {
        "id": "i",
        "d": "d",
        "k": "door_forced",
        "t": 1,
        "r": 2,
    }


def test_one_reading_and_a_message_of_readings_encode_alike() -> None:
    many = [
        reading("temperature"),
        reading("door_open", value=False, unit=None, seq=4),
        reading("battery", quality=Quality.RESTAMPED, measured_at=AT + timedelta(seconds=1)),
    ]
    assert encode_readings(many) == [encode_reading(r) for r in many]
    assert encode_reading(many[2])["q"] == "restamped" and "q" not in encode_reading(many[0])


def test_what_is_encoded_decodes_to_the_same_readings_and_events() -> None:
    readings = [reading("temperature", seq=3), reading("door_open", value=True, unit=None)]
    event = DeviceEvent(
        event_id="fridge-1/door_opened/1",
        device_id="fridge-1",
        kind="door_opened",
        measured_at=AT.replace(microsecond=0),
        received_at=AT.replace(microsecond=0),
        attrs={"by": "p-1"},
    )
    payload = encode_batch("gw-1", 1, 3, encode_readings(readings), [encode_event(event)])
    batch = decode_batch(payload)
    # The wire keeps milliseconds: times come back to the millisecond.
    assert batch.readings == readings
    assert batch.events == [event]
    assert orjson.loads(payload)["readings"][0]["t"] == unix_ms(AT)


def test_now_ms_is_unix_ms_of_now() -> None:
    before = unix_ms(datetime.now(UTC))
    assert before <= now_ms() <= unix_ms(datetime.now(UTC))
