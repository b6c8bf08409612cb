"""Property tests of the JSON decoder: whatever arrives, it returns readings or named
rejections and never raises; a well-formed payload always decodes to its values."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.profiles import load_profiles
from core.readings import RejectReason
from gateway.decode.json_payload import JsonDecoder

PROFILES = {name: p for name, p in load_profiles().items() if p.transport.kind == "mqtt"}
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


def decode(profile: str, payload: bytes) -> object:
    return JsonDecoder(b"k" * 32).decode(
        device_id="dev", profile=PROFILES[profile], topic="t", payload=payload, received_at=NOW
    )


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(PROFILES)), st.binary(max_size=300))
def test_random_bytes_never_raise(profile: str, payload: bytes) -> None:
    out = decode(profile, payload)
    for rej in out.rejections:  # type: ignore[attr-defined]
        assert isinstance(rej.reason, RejectReason) and rej.detail


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(PROFILES)),
    st.dictionaries(
        st.sampled_from(
            [
                "t",
                "temperature",
                "contact",
                "door",
                "DS18B20",
                "AM2301",
                "TempUnit",
                "seq",
                "ts",
                "time",
                "index",
                "event",
                "result",
                "alarm",
                "battery",
                "humidity",
                "linkquality",
                "bat",
            ]
        ),
        json_values,
        max_size=8,
    ),
)
def test_random_json_objects_give_readings_or_named_rejections(
    profile: str, doc: dict[str, object]
) -> None:
    try:
        payload = orjson.dumps(doc)
    except TypeError:
        return  # NaN keys etc. cannot be JSON; the bytes test covers arbitrary input
    out = decode(profile, payload)
    for r in out.readings:  # type: ignore[attr-defined]
        assert r.value is not None and r.device_id == "dev"
        if isinstance(r.value, float):
            assert r.value == r.value  # never NaN
    for rej in out.rejections:  # type: ignore[attr-defined]
        assert isinstance(rej.reason, RejectReason)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(min_value=-40, max_value=60, allow_nan=False),
    st.floats(min_value=0, max_value=100, allow_nan=False),
)
def test_valid_zigbee_payload_always_decodes(temp: float, hum: float) -> None:
    payload = orjson.dumps({"temperature": temp, "humidity": hum, "linkquality": 100})
    out = decode("zigbee2mqtt-temperature-humidity", payload)
    got = {r.metric: r.value for r in out.readings}  # type: ignore[attr-defined]
    assert got["temperature"] == pytest.approx(temp, abs=1e-6)
    assert got["humidity"] == pytest.approx(hum, abs=1e-6)
    assert not out.rejections  # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-40, max_value=140, allow_nan=False))
def test_fahrenheit_is_converted(temp_f: float) -> None:
    payload = orjson.dumps({"DS18B20": {"Temperature": temp_f}, "TempUnit": "F"})
    out = decode("tasmota-ds18b20", payload)
    got = {r.metric: r.value for r in out.readings}  # type: ignore[attr-defined]
    assert got["temperature"] == pytest.approx((temp_f - 32) * 5 / 9, abs=1e-5)
