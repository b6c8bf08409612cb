"""Property tests of the JSON decoder over every shipped MQTT profile: whatever arrives, it
returns readings, events and named rejections, never raises, and what it returns can be
encoded for the outbox; a well-formed payload always decodes to its values."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.profiles import MetricSpec, MetricType, MqttTransport, Profile, load_profiles
from core.readings import Quality, RejectReason, reading_key, unix_ms
from core.units import convert
from core.wire import encode_event, encode_reading
from gateway.decode.json_payload import Decoded, JsonDecoder, lookup
from gateway.decode.values import MetricPlan, ValueRejected, coerce, split_path

PROFILES = {n: p for n, p in load_profiles().items() if isinstance(p.transport, MqttTransport)}
NAMES = sorted(PROFILES)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def decode(profile: Profile, payload: bytes, decoder: JsonDecoder | None = None) -> Decoded:
    return (decoder or JsonDecoder(b"k" * 32)).decode(
        device_id="dev", profile=profile, topic="t", payload=payload, received_at=NOW
    )


def assert_well_formed(out: Decoded, profile: Profile) -> None:
    """What the gateway does next with a result must work: encode it for the outbox."""
    for r in out.readings:
        assert r.device_id == "dev" and profile.metric(r.metric) is not None
        assert not (isinstance(r.value, float) and not math.isfinite(r.value))
        orjson.dumps(encode_reading(r))
    for e in out.events:
        assert e.kind in profile.event_kinds()
        orjson.dumps(encode_event(e))
    for rej in out.rejections:
        assert isinstance(rej.reason, RejectReason) and rej.detail.startswith("dev: ")
        assert len(rej.detail) < 400  # logged: a hostile payload cannot make huge lines


def paths(profile: Profile) -> list[str]:
    """Every payload path the profile reads: where hostile values do most harm."""
    t = profile.transport
    assert isinstance(t, MqttTransport)
    out = [t.sequence, t.timestamp, t.address_field]
    for m in profile.metrics:
        out += [m.source if isinstance(m.source, str) else None, m.source_unit_field]
    for e in profile.events:
        out += list(e.attr_paths.values())
        if e.from_field is not None:
            out.append(e.from_field.source)
    return sorted({p for p in out if p})


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = split_path(path)  # as the decoder reads it: `\.` is a dot inside a key
    *parents, last = (parts,) if isinstance(parts, str) else parts
    cur = doc
    for part in parents:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[last] = value


# What firmware really gets wrong: NaN, huge integers, lone surrogates, deep nesting, types.
hostile_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**70)
    | st.integers(min_value=-(2**70), max_value=-(2**63) + 2)
    | st.integers(min_value=10**308, max_value=10**400)  # past float: OverflowError
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)  # lone surrogates
    | st.sampled_from(["x\udfff", "F", "C", "K", "open", "granted", "forced", "", "ON"])
    | st.text(min_size=190, max_size=400)
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
deep = st.integers(min_value=200, max_value=1500).map(lambda n: "[" * n + "]" * n)


def _typed(word: str) -> Any:
    """A map key as the device would send it: `true` and `20` as JSON, not text."""
    return {"true": True, "false": False}.get(word, int(word) if word.isdigit() else word)


def plausible(profile: Profile, path: str) -> st.SearchStrategy[Any]:
    """What a working device sends at `path`: hostile values mixed with these reach the
    code behind the first checks (events that fire, readings that carry a counter)."""
    t = profile.transport
    assert isinstance(t, MqttTransport)
    if path == t.sequence:
        return st.integers(0, 2**40)
    if path == t.timestamp:
        ms = int(NOW.timestamp() * 1000)
        return st.integers(ms - 3_600_000, ms) | st.just(NOW.isoformat())
    for m in profile.metrics:
        if path == m.source_unit_field:
            return st.sampled_from(["C", "F"])
        if path != m.source:
            continue
        if m.map:
            return st.sampled_from(sorted(m.map)).map(_typed)
        if m.resolved_type is MetricType.BOOL:
            return st.booleans()
        valid = m.resolved_valid
        lo = valid.min if valid.min is not None else -1e3
        hi = valid.max if valid.max is not None else 1e3
        if m.resolved_type is MetricType.INT:
            return st.integers(math.ceil(lo), math.floor(hi))
        return st.floats(lo, hi)
    for e in profile.events:
        if e.from_field is not None and path == e.from_field.source:
            return st.sampled_from(sorted(e.from_field.map)).map(_typed)
    return st.text(max_size=12) | st.integers(0, 10**12)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NAMES), st.binary(max_size=400))
def test_random_bytes_never_raise(name: str, payload: bytes) -> None:
    out = decode(PROFILES[name], payload)
    assert_well_formed(out, PROFILES[name])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NAMES), st.data())
def test_hostile_values_on_the_profile_paths_give_named_rejections(
    name: str, data: st.DataObject
) -> None:
    profile = PROFILES[name]
    doc: dict[str, Any] = {}
    for path in paths(profile):
        how = data.draw(st.sampled_from(["absent", "plausible", "hostile"]))
        if how != "absent":
            strategy = plausible(profile, path) if how == "plausible" else hostile_values
            put(doc, path, data.draw(strategy))
    if data.draw(st.booleans()):
        # A NaN anywhere sends the whole payload to the lenient parser, which keeps what
        # orjson would have refused or turned into floats (70-bit integers, surrogates).
        doc["other"] = math.nan
    # The stdlib writes NaN/Infinity, huge integers and \ud800 escapes, as careless
    # firmware does.
    payload = json.dumps(doc).encode()
    if data.draw(st.booleans()):
        nested = data.draw(deep)
        payload = payload[:-1] + (b", " if doc else b"") + b'"deep": ' + nested.encode() + b"}"
    out = decode(profile, payload)
    assert_well_formed(out, profile)


COUNTED = sorted(
    n
    for n, p in PROFILES.items()
    if isinstance(p.transport, MqttTransport) and p.transport.sequence
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(COUNTED),
    st.integers(min_value=-(2**70), max_value=2**70) | hostile_values,
    st.data(),
)
def test_any_message_counter_is_kept_only_when_storable(
    name: str, counter: Any, data: st.DataObject
) -> None:
    profile = PROFILES[name]
    t = profile.transport
    assert isinstance(t, MqttTransport) and t.sequence
    doc: dict[str, Any] = {"other": math.nan}  # lenient parser: big integers stay integers
    for path in paths(profile):
        put(doc, path, data.draw(plausible(profile, path)))
    put(doc, t.sequence, counter)
    out = decode(profile, json.dumps(doc).encode())
    assert_well_formed(out, profile)
    for r in out.readings:
        assert r.seq == (counter if type(counter) is int and 0 <= counter < 2**63 else None)


def test_deeply_nested_attribute_is_refused_not_raised() -> None:
    profile = PROFILES["access-controller-json"]
    payload = b'{"result": "denied", "reader": ' + b"[" * 400 + b"]" * 400 + b"}"
    out = decode(profile, payload)
    assert [e.kind for e in out.events] == ["card_denied"]
    assert [r.reason for r in out.rejections] == [RejectReason.WRONG_TYPE]
    assert_well_formed(out, profile)


# -- valid payloads: built from each profile's own spec, so a new profile is covered too ----


def _valid_number(spec: MetricSpec, data: st.DataObject) -> float:
    valid = spec.resolved_valid
    lo = valid.min if valid.min is not None else -1e6
    hi = valid.max if valid.max is not None else 1e6
    margin = (hi - lo) * 1e-3  # conversions round; stay clear of the exact edges
    if spec.resolved_type is MetricType.INT:
        return float(data.draw(st.integers(math.ceil(lo), math.floor(hi))))
    return data.draw(st.floats(lo + margin, hi - margin))


def _raw_for(spec: MetricSpec, want: float, doc: dict[str, Any], data: st.DataObject) -> Any:
    """The wire value a device sends for `want`: undo unit conversion, scale and offset."""
    raw = want
    unit = spec.resolved_unit
    source_unit = spec.source_unit
    if spec.source_unit_field is not None:
        # One unit field serves several metrics (Tasmota's TempUnit): draw it once.
        try:
            given = lookup(doc, spec.source_unit_field)
        except KeyError:
            given = data.draw(st.sampled_from(["C", "F"]))
        put(doc, spec.source_unit_field, given)
        source_unit = given
    if source_unit and unit:
        raw = convert(raw, unit, source_unit)
    raw = (raw - spec.offset) / spec.scale
    if spec.resolved_type is MetricType.INT:
        return round(raw)
    return raw


def _time_value(t: MqttTransport, data: st.DataObject) -> tuple[Any, datetime | None]:
    at = NOW - timedelta(seconds=data.draw(st.integers(0, 3600)))
    fmt = t.timestamp_format
    if fmt == "auto":
        fmt = data.draw(st.sampled_from(["iso8601", "unix_ms"]))
    if fmt == "iso8601":
        zone = data.draw(st.sampled_from([0, 8, -5]))
        return at.astimezone(timezone(timedelta(hours=zone))).isoformat(), at
    if fmt == "unix_ms":
        return int(at.timestamp() * 1000), at
    return int(at.timestamp()), at


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NAMES), st.data())
def test_valid_payload_always_decodes_to_its_values(name: str, data: st.DataObject) -> None:
    profile = PROFILES[name]
    t = profile.transport
    assert isinstance(t, MqttTransport)
    doc: dict[str, Any] = {}
    want: dict[str, Any] = {}
    at: datetime | None = None
    if t.timestamp is not None and data.draw(st.booleans()):
        stamp, at = _time_value(t, data)
        put(doc, t.timestamp, stamp)
    if t.sequence is not None:
        put(doc, t.sequence, data.draw(st.integers(0, 2**40)))
    if t.address_field is not None:  # the device naming itself (a LoRaWAN devEui)
        put(doc, t.address_field, "0101010101010101")
    for spec in profile.metrics:
        if not spec.required and not data.draw(st.booleans()):
            continue
        assert isinstance(spec.source, str)
        if spec.map:
            word = data.draw(st.sampled_from(sorted(spec.map)))
            put(doc, spec.source, word)
            value = spec.map[word]
            want[spec.key] = (value != spec.invert) if isinstance(value, bool) else value
        elif spec.resolved_type is MetricType.BOOL:
            raw = data.draw(st.booleans())
            put(doc, spec.source, raw)
            want[spec.key] = raw != spec.invert
        elif spec.resolved_type is MetricType.STR:
            text = data.draw(st.text(max_size=20))
            put(doc, spec.source, text)
            want[spec.key] = text
        else:
            value_f = _valid_number(spec, data)
            put(doc, spec.source, _raw_for(spec, value_f, doc, data))
            want[spec.key] = value_f
    events = []
    for event in profile.events:
        if event.from_field is None or not data.draw(st.booleans()):
            continue
        if event.from_field.source in {m.source for m in profile.metrics}:
            continue  # shares its field with a metric: covered by the metric's value
        code = data.draw(st.sampled_from(sorted(event.from_field.map)))
        put(doc, event.from_field.source, code)
        events.append(event.from_field.map[code])
        for path in event.attr_paths.values():
            put(doc, path, data.draw(st.text(max_size=12) | st.integers(0, 10**12)))

    out = decode(profile, orjson.dumps(doc))

    assert out.rejections == []
    got = {r.metric: r.value for r in out.readings}
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, bool | str):
            assert got[key] == value, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-5), key
    assert set(events) <= {e.kind for e in out.events}
    if at is not None:
        assert {r.measured_at for r in out.readings} <= {at}
    assert_well_formed(out, profile)


# -- the wire form: decode_wire is what the gateway stores, decode its readback ------------


def assert_wire_matches(profile: Profile, payload: bytes, received_at: datetime) -> None:
    """decode_wire gives, byte for byte, what encoding decode()'s objects gives."""
    # Separate decoders: a `becomes` event fires once per decoder.
    wire = JsonDecoder(b"k" * 32).decode_wire(
        device_id="dev",
        profile=profile,
        topic="t",
        payload=payload,
        received_ms=unix_ms(received_at),
    )
    out = JsonDecoder(b"k" * 32).decode(
        device_id="dev", profile=profile, topic="t", payload=payload, received_at=received_at
    )
    assert orjson.dumps(wire.readings) == orjson.dumps([encode_reading(r) for r in out.readings])
    assert orjson.dumps(wire.events) == orjson.dumps([encode_event(e) for e in out.events])
    assert wire.rejections == out.rejections
    assert wire.restamped == sum(r.quality is not Quality.GOOD for r in out.readings)
    for r in out.readings:
        assert r.received_at == received_at
        assert r.reading_id == reading_key(r.device_id, r.metric, r.measured_at, r.seq)
    for e in out.events:
        assert e.event_id.startswith(f"dev/{e.kind}/{unix_ms(e.measured_at)}")


WIRE_EXAMPLES = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name in NAMES
    for i in range(len(PROFILES[name].examples))
]


@pytest.mark.parametrize(("name", "index"), WIRE_EXAMPLES)
def test_wire_form_of_every_profile_example(name: str, index: int) -> None:
    profile = PROFILES[name]
    text = profile.examples[index].payload
    assert text is not None  # MQTT profiles' examples are payloads (core/profiles.py)
    payload = text.encode()
    # The examples' own time, then a receive time it is too old for (restamped).
    assert_wire_matches(profile, payload, datetime(2025, 11, 24, 16, 0, 0, 250, tzinfo=UTC))
    assert_wire_matches(profile, payload, NOW)


@st.composite
def any_payload(draw: st.DrawFn, profile: Profile) -> bytes:
    """Random bytes, or a JSON object of plausible and hostile values on the profile's paths."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    doc: dict[str, Any] = {}
    for path in paths(profile):
        how = draw(st.sampled_from(["absent", "plausible", "hostile"]))
        if how != "absent":
            put(doc, path, draw(plausible(profile, path) if how == "plausible" else hostile_values))
    if draw(st.booleans()):
        doc["other"] = math.nan
    return json.dumps(doc).encode()


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NAMES), st.data(), st.integers(0, 999_999))
def test_wire_form_of_any_payload(name: str, data: st.DataObject, micros: int) -> None:
    profile = PROFILES[name]
    assert_wire_matches(
        profile, data.draw(any_payload(profile)), NOW + timedelta(microseconds=micros)
    )


SCALED = Profile.model_validate(
    {
        "profile": "test-scaled",
        "vendor": "Test",
        "model": "scaled",
        "device_class": "chilled_fridge",
        "transport": {"kind": "mqtt", "topic": "t/{address}"},
        "metrics": [
            {"key": "temperature", "type": "float", "source": "t", "scale": 0.1, "offset": -40},
            {"key": "pressure", "type": "float", "source": "p", "valid": {"min": 300}},
            {"key": "closed", "type": "bool", "source": "c", "invert": True},
        ],
    }
)
INLINE = [
    (p, m)
    for p in [*PROFILES.values(), SCALED]
    for m in p.metrics
    if MetricPlan(m).plain is not None
]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(INLINE), hostile_scalars | st.sampled_from([-0.0, 1e308, -1e308, 2**63]))
def test_values_taken_inline_are_those_coerce_gives(
    case: tuple[Profile, MetricSpec], raw: Any
) -> None:
    # decode_wire checks the everyday values of plain metrics itself, for speed.
    profile, spec = case
    assert isinstance(spec.source, str)
    doc: dict[str, Any] = {}
    put(doc, spec.source, raw)
    t = profile.transport
    if isinstance(t, MqttTransport) and t.address_field is not None:
        put(doc, t.address_field, "0101010101010101")  # else the message is refused whole
    payload = json.dumps(doc).encode()
    try:  # as the decoder reads it
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        parsed = json.loads(payload, parse_constant=float)
    raw = lookup(parsed, spec.source)
    out = decode(profile, payload)
    got = [r.value for r in out.readings if r.metric == spec.key]
    refused = [r for r in out.rejections if r.detail.startswith(f"dev: {spec.key} (")]
    if raw is None:
        assert (got, refused) == ([], [])
        return
    try:
        want = coerce(spec, raw, parsed)
    except ValueRejected as bad:
        assert got == []
        assert [(r.reason, r.detail) for r in refused] == [(bad.reason, f"dev: {bad.detail}")]
    else:
        assert refused == []
        assert [repr(v) for v in got] == [repr(want)]  # repr: -0.0 is not 0.0 on the wire
