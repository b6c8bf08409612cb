"""Decode a JSON device payload through its profile into readings, events and rejections.

Total by design: whatever bytes arrive, the result is readings, events and named
rejections, never an exception, and everything it returns can be encoded for the outbox
(tests/unit/gateway/test_json_properties.py holds it to that).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from core.profiles import EventSpec, MqttTransport, Profile, scalar_key
from core.readings import DeviceEvent, Quality, Reading, Rejection, RejectReason, Value, reading_key
from gateway.decode.values import INT64_LIMIT, coerce, lookup, show, storable_text
from gateway.decode.values import ValueRejected as _Bad

__all__ = ["Decoded", "JsonDecoder", "lookup"]

# Device clocks drift and reset; a stamp this far from our receive time is not trusted.
MAX_CLOCK_SKEW_FUTURE = timedelta(minutes=5)
MAX_CLOCK_SKEW_PAST = timedelta(days=7)

AttrValue = str | bool | int | float


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    events: list[DeviceEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def _parse_time(raw: Any, fmt: str) -> datetime | None:
    """The device's time as an aware datetime; None when it has no zone. Raises
    TypeError/ValueError/OverflowError/OSError when it is not a time at all."""
    if fmt == "auto":
        fmt = "iso8601" if isinstance(raw, str) else "unix_ms"
    if fmt == "iso8601":
        if not isinstance(raw, str):
            raise TypeError
        stamp = datetime.fromisoformat(raw)
        return stamp if stamp.tzinfo is not None else None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError
    seconds = raw / 1000 if fmt == "unix_ms" else raw
    return datetime.fromtimestamp(seconds, tz=UTC)


def _device_time(
    transport: MqttTransport, payload: dict[str, Any], received_at: datetime
) -> tuple[datetime, Quality]:
    if transport.timestamp is None:
        return received_at, Quality.GOOD
    try:
        raw = lookup(payload, transport.timestamp)
    except KeyError:
        return received_at, Quality.GOOD
    try:
        stamp = _parse_time(raw, transport.timestamp_format)
    except (TypeError, ValueError, OverflowError, OSError):
        return received_at, Quality.RESTAMPED
    if stamp is None:
        if transport.naive_timestamp == "receive_time":
            return received_at, Quality.GOOD
        return received_at, Quality.RESTAMPED
    if not (received_at - MAX_CLOCK_SKEW_PAST <= stamp <= received_at + MAX_CLOCK_SKEW_FUTURE):
        return received_at, Quality.RESTAMPED
    return stamp.astimezone(UTC), Quality.GOOD


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


class JsonDecoder:
    """Stateful only in the last value per device and metric, for `becomes` events."""

    def __init__(self, pseudonym_key: bytes | None = None) -> None:
        self._last: dict[tuple[str, str], Value] = {}
        # Keyed, so a card number cannot be recovered by hashing every possible number.
        self._pseudonym_key = pseudonym_key or os.urandom(32)

    def pseudonym(self, value: Any) -> str:
        # Canonical text first: card 8165538 and "8165538" are the same person.
        text = scalar_key(value)
        digest = hmac.new(
            self._pseudonym_key,
            (text if text is not None else str(value)).encode(),
            hashlib.sha256,
        )
        return "p-" + digest.hexdigest()[:16]

    def decode(
        self,
        *,
        device_id: str,
        profile: Profile,
        topic: str,
        payload: bytes,
        received_at: datetime,
    ) -> Decoded:
        out = Decoded()
        transport = profile.transport
        assert isinstance(transport, MqttTransport)

        def reject(reason: RejectReason, detail: str) -> Decoded:
            out.rejections.append(
                Rejection(
                    reason=reason, detail=f"{device_id}: {detail}", source=topic, raw=payload[:512]
                )
            )
            return out

        if len(payload) > transport.max_bytes:
            return reject(
                RejectReason.OVERSIZE,
                f"payload of {len(payload)} bytes exceeds {transport.max_bytes}",
            )
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            doc = _lenient_json(payload)
            if doc is None:
                return reject(RejectReason.NOT_JSON, f"payload is not JSON ({exc.msg})")
        if not isinstance(doc, dict):
            return reject(RejectReason.NOT_OBJECT, "payload is JSON but not an object")

        measured_at, quality = _device_time(transport, doc, received_at)
        seq: int | None = None
        if transport.sequence is not None:
            try:
                raw_seq = lookup(doc, transport.sequence)
            except KeyError:
                raw_seq = None
            if isinstance(raw_seq, int) and not isinstance(raw_seq, bool) and raw_seq >= 0:
                seq = raw_seq if raw_seq < INT64_LIMIT else None

        values: dict[str, Value] = {}
        for spec in profile.metrics:
            assert isinstance(spec.source, str)
            try:
                raw = lookup(doc, spec.source)
            except KeyError:
                if spec.required:
                    reject(RejectReason.MISSING_FIELD, f"required field {spec.source!r} missing")
                continue
            if raw is None:
                if spec.required:  # a probe reporting null is as good as absent
                    reject(RejectReason.MISSING_FIELD, f"required field {spec.source!r} is null")
                continue
            try:
                value = coerce(spec, raw, doc)
            except _Bad as bad:
                reject(bad.reason, bad.detail)
                continue
            values[spec.key] = value
            out.readings.append(
                Reading(
                    reading_id=reading_key(device_id, spec.key, measured_at, seq),
                    device_id=device_id,
                    metric=spec.key,
                    value=value,
                    unit=spec.resolved_unit,
                    measured_at=measured_at,
                    received_at=received_at,
                    seq=seq,
                    quality=quality,
                )
            )

        for event in profile.events:
            kind = self._event_kind(event, device_id, doc, values, reject)
            if kind is None:
                continue
            attrs: dict[str, AttrValue] = {}
            for name, path in event.attr_paths.items():
                try:
                    raw_attr = lookup(doc, path)
                except KeyError:
                    continue
                if raw_attr is None:
                    continue
                try:
                    value_attr = _attr_value(raw_attr)
                except ValueError as bad:
                    # The event still happened; only this attribute is lost. A person's id
                    # is not written to the log, even a malformed one.
                    shown = "(withheld)" if name in event.pseudonymize else show(raw_attr)
                    reject(RejectReason.WRONG_TYPE, f"{kind} attribute {path}={shown} {bad}")
                    continue
                attrs[name] = (
                    self.pseudonym(value_attr) if name in event.pseudonymize else value_attr
                )
            stamp = int(measured_at.timestamp() * 1000)
            out.events.append(
                DeviceEvent(
                    event_id=f"{device_id}/{kind}/{stamp}" + (f"/{seq}" if seq is not None else ""),
                    device_id=device_id,
                    kind=kind,
                    measured_at=measured_at,
                    received_at=received_at,
                    attrs=dict(attrs),
                )
            )
        for key, value in values.items():
            self._last[(device_id, key)] = value
        return out

    def _event_kind(
        self,
        event: EventSpec,
        device_id: str,
        doc: dict[str, Any],
        values: dict[str, Value],
        reject: Callable[[RejectReason, str], Decoded],
    ) -> str | None:
        if event.when is not None:
            new = values.get(event.when.metric)
            last = self._last.get((device_id, event.when.metric))
            if new is not None and new == event.when.becomes and last != new:
                return event.kind
            return None
        assert event.from_field is not None
        source = event.from_field
        try:
            code = lookup(doc, source.source)
        except KeyError:
            return None
        if code is None:
            return None
        word = scalar_key(code)
        if word is None:
            reject(
                RejectReason.WRONG_TYPE, f"event field {source.source}={show(code)} is not a code"
            )
            return None
        if word in source.map:
            return source.map[word]
        if word in source.ignore or source.unmapped == "ignore":
            return None
        reject(
            RejectReason.UNKNOWN_VALUE,
            f"event field {source.source}={show(code)} is none of {sorted(source.map)}",
        )
        return None
