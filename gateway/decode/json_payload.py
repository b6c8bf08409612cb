"""Decode a JSON device payload through its profile into readings, events and rejections.

Total by design: whatever bytes arrive, the result is readings, events and named
rejections, never an exception, and everything it returns can be encoded for the outbox
(tests/unit/gateway/test_json_properties.py holds it to that).

This is the gateway's ingest hot path: `decode_wire` gives the outbox's wire dicts directly,
from a plan compiled once per profile, with times in integer Unix milliseconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from core.profiles import EventSpec, MetricType, MqttTransport, Profile, scalar_key
from core.readings import (
    DeviceEvent,
    Quality,
    Reading,
    Rejection,
    RejectReason,
    Value,
    key_tail,
    unix_ms,
)
from core.wire import (
    WireEvent,
    WireReading,
    event_from_wire,
    reading_from_wire,
    wire_event,
    wire_reading,
)
from gateway.decode.values import (
    INT64_LIMIT,
    MISSING,
    MetricPlan,
    ValueRejected,
    find,
    lookup,
    show,
    split_path,
    storable_text,
)
from gateway.pseudonym import Pseudonymizer

__all__ = ["Decoded", "JsonDecoder", "WireDecoded", "lookup"]

# Device clocks drift and reset; a stamp this far from our receive time is not trusted.
MAX_CLOCK_SKEW_FUTURE = timedelta(minutes=5)
MAX_CLOCK_SKEW_PAST = timedelta(days=7)
_FUTURE_MS = MAX_CLOCK_SKEW_FUTURE // timedelta(milliseconds=1)
_PAST_MS = MAX_CLOCK_SKEW_PAST // timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RESTAMPED = Quality.RESTAMPED.value
_FLOAT = MetricType.FLOAT
_BOOL = MetricType.BOOL

AttrValue = str | bool | int | float


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    events: list[DeviceEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


@dataclass(slots=True)
class WireDecoded:
    """`Decoded` in the outbox's form (core.wire's wire readings and events)."""

    readings: list[WireReading] = field(default_factory=list)
    events: list[WireEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    restamped: int = 0  # readings whose quality is not good


def _parse_time(raw: Any, fmt: str) -> datetime | None:
    """The device's time as an aware datetime; None when it has no zone. Raises
    TypeError/ValueError/OverflowError/OSError when it is not a time at all."""
    if fmt == "iso8601":
        if not isinstance(raw, str):
            raise TypeError
        stamp = datetime.fromisoformat(raw)
        return stamp if stamp.tzinfo is not None else None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError
    seconds = raw / 1000 if fmt == "unix_ms" else raw
    return datetime.fromtimestamp(seconds, tz=UTC)


def _lenient_json(payload: bytes) -> Any:
    """Firmware often writes NaN/Infinity (not JSON); parse them so only that metric is lost.

    Only tried after the fast parser failed, so good traffic never pays for it. It also
    accepts what orjson refuses for good reason (lone surrogates, integers past 64 bits);
    everything taken from its result is checked again before it is kept.
    """
    try:
        return json.loads(payload, parse_constant=float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _attr_value(raw: Any) -> AttrValue:
    """An event attribute as every sink can store it: a short scalar. ValueError if not."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        if -INT64_LIMIT <= raw < INT64_LIMIT:
            return raw
        raise ValueError("is too large")
    if isinstance(raw, float):
        if math.isfinite(raw):
            return raw
        raise ValueError("is not a finite number")
    if isinstance(raw, str):
        if storable_text(raw):
            return raw
        raise ValueError("is not a short valid text")
    raise ValueError("is not a scalar")


def _rejection(
    reason: RejectReason, detail: str, device_id: str, topic: str, payload: bytes
) -> Rejection:
    return Rejection(
        reason=reason, detail=f"{device_id}: {detail}", source=topic, raw=payload[:512]
    )


class _EventPlan:
    """An EventSpec with its paths split once."""

    __slots__ = ("attrs", "becomes", "code", "kind", "spec", "watches")

    def __init__(self, spec: EventSpec) -> None:
        self.spec = spec
        self.kind = spec.kind
        self.watches = spec.when.metric if spec.when is not None else None
        self.becomes = spec.when.becomes if spec.when is not None else None
        self.code = split_path(spec.from_field.source) if spec.from_field is not None else None
        # (name, dotted path, split path, pseudonymized)
        self.attrs = tuple(
            (name, path, split_path(path), name in spec.pseudonymize)
            for name, path in spec.attr_paths.items()
        )

    def kind_from_field(self, doc: dict[str, Any]) -> str | None:
        """The kind the payload's code field names; ValueRejected for a code to count."""
        source = self.spec.from_field
        assert source is not None and self.code is not None
        code = find(doc, self.code)
        if code is MISSING or code is None:
            return None
        word = scalar_key(code)
        if word is None:
            raise ValueRejected(
                RejectReason.WRONG_TYPE, f"event field {source.source}={show(code)} is not a code"
            )
        if word in source.map:
            return source.map[word]
        if word in source.ignore or source.unmapped == "ignore":
            return None
        raise ValueRejected(
            RejectReason.UNKNOWN_VALUE,
            f"event field {source.source}={show(code)} is none of {sorted(source.map)}",
        )


class _Plan:
    """A profile compiled for decoding: what every message would otherwise look up again."""

    __slots__ = (
        "address",
        "address_field",
        "events",
        "max_bytes",
        "metrics",
        "naive_ok",
        "profile",
        "sequence",
        "timestamp",
        "timestamp_format",
        "watched",
    )

    def __init__(self, profile: Profile) -> None:
        transport = profile.transport
        assert isinstance(transport, MqttTransport)
        assert all(isinstance(m.source, str) for m in profile.metrics)
        self.profile = profile  # held, so the id the plan is cached under stays this profile's
        self.max_bytes = transport.max_bytes
        self.sequence = split_path(transport.sequence) if transport.sequence is not None else None
        self.timestamp = (
            split_path(transport.timestamp) if transport.timestamp is not None else None
        )
        self.timestamp_format = transport.timestamp_format
        self.naive_ok = transport.naive_timestamp == "receive_time"
        self.address_field = transport.address_field
        self.address = split_path(transport.address_field) if transport.address_field else None
        self.metrics = tuple(MetricPlan(m) for m in profile.metrics)
        self.events = tuple(_EventPlan(e) for e in profile.events)
        # Only these metrics' last values are needed, for `becomes` events.
        self.watched = tuple({e.when.metric for e in profile.events if e.when is not None})

    def stamp(self, doc: dict[str, Any], received_ms: int) -> tuple[int | None, bool, int | None]:
        """The device's measured time in Unix ms (None: it gave none we can use, so the
        message is stamped on receipt), whether that is good (False: restamped), and the
        device's message counter. One call for what every message needs, since a call costs
        about as much as building a reading."""
        seq = None
        path = self.sequence
        if path is not None:
            raw = doc.get(path, MISSING) if isinstance(path, str) else find(doc, path)
            if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < INT64_LIMIT:
                seq = raw
        path = self.timestamp
        if path is None:
            return None, True, seq
        # A flat key (most payloads) looked up here: a call less on every message.
        raw = doc.get(path, MISSING) if isinstance(path, str) else find(doc, path)
        if raw is MISSING:
            return None, True, seq
        fmt = self.timestamp_format
        if fmt == "auto":
            fmt = "iso8601" if isinstance(raw, str) else "unix_ms"
        if type(raw) is int and fmt != "iso8601":
            # Integer stamps are compared and kept as they are: no float, no datetime.
            stamp_ms = raw if fmt == "unix_ms" else raw * 1000
            if received_ms - _PAST_MS <= stamp_ms <= received_ms + _FUTURE_MS:
                return stamp_ms, True, seq
            return None, False, seq
        try:
            stamp = _parse_time(raw, fmt)
        except (TypeError, ValueError, OverflowError, OSError):
            return None, False, seq
        if stamp is None:
            return None, self.naive_ok, seq
        received = _EPOCH + timedelta(milliseconds=received_ms)
        if not (received - MAX_CLOCK_SKEW_PAST <= stamp <= received + MAX_CLOCK_SKEW_FUTURE):
            return None, False, seq
        return unix_ms(stamp), True, seq

    def address_refusal(
        self, doc: dict[str, Any], address: str | None
    ) -> tuple[RejectReason, str] | None:
        """Why a message does not belong to the device its topic names (`address_field`),
        or None. EUIs are hex: compared without case."""
        assert self.address is not None
        raw = find(doc, self.address)
        if raw is MISSING or raw is None:
            what = f"field {self.address_field!r} naming the device is missing"
            return RejectReason.MISSING_FIELD, what
        if address is not None and (not isinstance(raw, str) or raw.lower() != address.lower()):
            return (
                RejectReason.WRONG_ADDRESS,
                f"{self.address_field}={show(raw)} is not this topic's device ({address})",
            )
        return None


class JsonDecoder:
    """Stateful only in the last value per device and metric, for `becomes` events."""

    def __init__(self, pseudonym_key: bytes | None = None) -> None:
        self._last: dict[str, dict[str, Value]] = {}  # device -> watched metric -> value
        self._plans: dict[int, _Plan] = {}
        # Last receipt stamp per device (ms), for messages without a clock or sequence number.
        self._receipt_ms: dict[str, int] = {}
        self.pseudonym = Pseudonymizer(pseudonym_key)

    def decode(
        self,
        *,
        device_id: str,
        profile: Profile,
        topic: str,
        payload: bytes,
        received_at: datetime,
    ) -> Decoded:
        """`decode_wire` as Reading and DeviceEvent objects."""
        received_ms = unix_ms(received_at)
        wire = self.decode_wire(
            device_id=device_id,
            profile=profile,
            topic=topic,
            payload=payload,
            received_ms=received_ms,
        )

        def measured(w: WireReading | WireEvent) -> datetime | None:
            # Stamped on receipt: the exact receive time, not the ms the wire keeps of it.
            return received_at if w["t"] == received_ms else None

        return Decoded(
            readings=[
                reading_from_wire(w, measured_at=measured(w), received_at=received_at)
                for w in wire.readings
            ],
            events=[
                event_from_wire(w, measured_at=measured(w), received_at=received_at)
                for w in wire.events
            ],
            rejections=wire.rejections,
        )

    def decode_wire(
        self,
        *,
        device_id: str,
        profile: Profile,
        topic: str,
        payload: bytes,
        received_ms: int,
        retained: bool = False,
        address: str | None = None,
    ) -> WireDecoded:
        """Readings and events as wire dicts. `retained`: the broker replayed its stored last
        message on our (re)subscription, not a message sent just now. `address`: the device's
        address in the topic, for a profile whose payload names its device too."""
        out = WireDecoded()
        out.restamped = self.decode_into(
            device_id,
            profile,
            topic,
            payload,
            received_ms,
            retained,
            address,
            out.readings,
            out.events,
            out.rejections,
        )
        return out

    def decode_into(
        self,
        device_id: str,
        profile: Profile,
        topic: str,
        payload: bytes,
        received_ms: int,
        retained: bool,
        address: str | None,
        readings: list[WireReading],
        events: list[WireEvent],
        rejections: list[Rejection],
    ) -> int:
        """`decode_wire` appending to the caller's lists (the gateway's whole batch, so no
        message costs lists or a result of its own); returns how many of the readings it
        added were restamped. Positional: it is called for every message."""
        plan = self._plans.get(id(profile))
        if plan is None:
            plan = self._plans[id(profile)] = _Plan(profile)
        if len(payload) > plan.max_bytes:
            detail = f"payload of {len(payload)} bytes exceeds {plan.max_bytes}"
            rejections.append(_rejection(RejectReason.OVERSIZE, detail, device_id, topic, payload))
            return 0
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            doc = _lenient_json(payload)
            if doc is None:
                detail = f"payload is not JSON ({exc.msg})"
                rejections.append(
                    _rejection(RejectReason.NOT_JSON, detail, device_id, topic, payload)
                )
                return 0
        if type(doc) is not dict:
            detail = "payload is JSON but not an object"
            rejections.append(
                _rejection(RejectReason.NOT_OBJECT, detail, device_id, topic, payload)
            )
            return 0
        if plan.address is not None:
            refusal = plan.address_refusal(doc, address)
            if refusal is not None:
                rejections.append(_rejection(*refusal, device_id, topic, payload))
                return 0

        own_ms, good, seq = plan.stamp(doc, received_ms)
        if own_ms is not None:
            stamp_ms = own_ms
        elif retained:
            # Replayed on every subscription, each time with a new receipt time: stored, it
            # would double an old value at a time it was never measured.
            detail = (
                "retained message without the device's own time: when it was measured is unknown"
            )
            rejections.append(
                _rejection(RejectReason.STALE_RETAINED, detail, device_id, topic, payload)
            )
            return 0
        else:
            stamp_ms = received_ms
            if seq is None:
                # The id (device/metric/time) rests on our clock alone, and messages of one
                # device read in one block share a millisecond: each gets its own, in order.
                last = self._receipt_ms.get(device_id, 0)
                if stamp_ms <= last:
                    stamp_ms = last + 1
                self._receipt_ms[device_id] = stamp_ms
        # Ids as core.readings.reading_key makes them: f"{device_id}/{metric}{tail}".
        tail = key_tail(stamp_ms, seq)
        quality = None if good else _RESTAMPED
        added = len(readings)
        watched = plan.watched
        values: dict[str, Value] | None = {} if watched else None
        for metric in plan.metrics:
            path = metric.path
            raw = doc.get(path, MISSING) if type(path) is str else find(doc, path)
            if raw is MISSING or raw is None:
                if metric.required:  # a probe reporting null is as good as absent
                    what = "missing" if raw is MISSING else "is null"
                    detail = f"required field {metric.source!r} {what}"
                    rejections.append(
                        _rejection(RejectReason.MISSING_FIELD, detail, device_id, topic, payload)
                    )
                continue
            plain = metric.plain
            cls = type(raw)
            try:
                # The plain cases inline; anything else, and every refusal, from `coerce`.
                if plain is _FLOAT and (cls is float or cls is int):
                    try:
                        value = raw * metric.scale + metric.offset
                    except OverflowError:
                        value = metric.coerce(raw, doc)
                    else:
                        if not metric.low <= value <= metric.high:
                            value = metric.coerce(raw, doc)
                        elif not value.is_integer():  # round() keeps whole numbers as they are
                            value = round(value, 6)
                elif plain is _BOOL and (raw is True or raw is False):
                    value = raw is not metric.invert
                else:
                    value = metric.coerce(raw, doc)
            except ValueRejected as bad:
                rejections.append(_rejection(bad.reason, bad.detail, device_id, topic, payload))
                continue
            name = metric.key
            if values is not None:
                values[name] = value
            readings.append(
                wire_reading(
                    f"{device_id}/{name}{tail}",
                    device_id,
                    name,
                    value,
                    stamp_ms,
                    received_ms,
                    metric.unit,
                    seq,
                    quality,
                )
            )
        if plan.events:
            self._events(
                plan,
                doc,
                device_id,
                topic,
                payload,
                values,
                stamp_ms,
                received_ms,
                tail,
                events,
                rejections,
            )
        return 0 if good else len(readings) - added

    def _events(
        self,
        plan: _Plan,
        doc: dict[str, Any],
        device_id: str,
        topic: str,
        payload: bytes,
        values: dict[str, Value] | None,
        stamp_ms: int,
        received_ms: int,
        tail: str,
        events: list[WireEvent],
        rejections: list[Rejection],
    ) -> None:
        """The message's device events: a watched metric that became its value, or a code
        field the profile maps; then the watched metrics' values are remembered."""
        last = self._last.get(device_id)
        for event in plan.events:
            kind: str | None
            if event.watches is not None:
                new = values.get(event.watches) if values is not None else None
                if (
                    new is None
                    or new != event.becomes
                    or (last is not None and last.get(event.watches) == new)
                ):
                    continue
                kind = event.kind
            else:
                try:
                    kind = event.kind_from_field(doc)
                except ValueRejected as bad:
                    rejections.append(_rejection(bad.reason, bad.detail, device_id, topic, payload))
                    continue
            if kind is None:
                continue
            attrs: dict[str, AttrValue] = {}
            for name, dotted, path, hidden in event.attrs:
                raw_attr = find(doc, path)
                if raw_attr is MISSING or raw_attr is None:
                    continue
                try:
                    value_attr = _attr_value(raw_attr)
                except ValueError as bad:
                    # The event still happened; only this attribute is lost. A person's id
                    # is not written to the log, even a malformed one.
                    shown = "(withheld)" if hidden else show(raw_attr)
                    detail = f"{kind} attribute {dotted}={shown} {bad}"
                    rejections.append(
                        _rejection(RejectReason.WRONG_TYPE, detail, device_id, topic, payload)
                    )
                    continue
                attrs[name] = self.pseudonym(value_attr) if hidden else value_attr
            events.append(
                wire_event(
                    f"{device_id}/{kind}{tail}", device_id, kind, stamp_ms, received_ms, attrs
                )
            )
        if values:
            for name in plan.watched:
                if name in values:
                    if last is None:
                        last = self._last[device_id] = {}
                    last[name] = values[name]
