"""Decode a JSON device payload through its profile into readings, events and rejections."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from core.profiles import MqttTransport, Profile
from core.readings import DeviceEvent, Quality, Reading, Rejection, RejectReason, Value, reading_key
from gateway.decode.values import ValueRejected as _Bad
from gateway.decode.values import coerce

# Device clocks drift and reset; a stamp this far from our receive time is not trusted.
MAX_CLOCK_SKEW_FUTURE = timedelta(minutes=5)
MAX_CLOCK_SKEW_PAST = timedelta(days=7)


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    events: list[DeviceEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def lookup(obj: dict[str, Any], path: str) -> Any:
    """Dotted path into nested objects; KeyError when absent."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(path)
        cur = cur[part]
    return cur


def _device_time(
    transport: MqttTransport, payload: dict[str, Any], received_at: datetime
) -> tuple[datetime, Quality]:
    if transport.timestamp is None or transport.timestamp not in payload:
        return received_at, Quality.GOOD
    raw = payload[transport.timestamp]
    try:
        if transport.timestamp_format == "iso8601":
            if not isinstance(raw, str):
                raise TypeError
            stamp = datetime.fromisoformat(raw)
            if stamp.tzinfo is None:
                raise TypeError
        else:
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise TypeError
            seconds = raw / 1000 if transport.timestamp_format == "unix_ms" else raw
            stamp = datetime.fromtimestamp(seconds, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return received_at, Quality.RESTAMPED
    if not (received_at - MAX_CLOCK_SKEW_PAST <= stamp <= received_at + MAX_CLOCK_SKEW_FUTURE):
        return received_at, Quality.RESTAMPED
    return stamp.astimezone(UTC), Quality.GOOD


def _lenient_json(payload: bytes) -> Any:
    """Firmware often writes NaN/Infinity (not JSON); parse them so only that metric is lost.

    Only tried after the fast parser failed, so good traffic never pays for it.
    """
    try:
        return json.loads(payload, parse_constant=float)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


class JsonDecoder:
    """Stateful only in the last value per device and metric, for `becomes` events."""

    def __init__(self, pseudonym_key: bytes | None = None) -> None:
        self._last: dict[tuple[str, str], Value] = {}
        # Keyed, so a card number cannot be recovered by hashing every possible number.
        self._pseudonym_key = pseudonym_key or os.urandom(32)

    def pseudonym(self, value: Any) -> str:
        digest = hmac.new(self._pseudonym_key, str(value).encode(), hashlib.sha256)
        return "p-" + str(digest.hexdigest())[:16]

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
            raw_seq = doc.get(transport.sequence)
            if isinstance(raw_seq, int) and not isinstance(raw_seq, bool) and raw_seq >= 0:
                seq = raw_seq

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
            kind: str | None = None
            if event.when is not None:
                last_key = (device_id, event.when.metric)
                new = values.get(event.when.metric)
                if (
                    new is not None
                    and new == event.when.becomes
                    and self._last.get(last_key) != new
                ):
                    kind = event.kind
            elif event.from_field is not None:
                code = doc.get(event.from_field.source)
                if isinstance(code, str):
                    kind = event.from_field.map.get(code)
            if kind is None:
                continue
            attrs = {
                a: self.pseudonym(doc[a]) if a in event.pseudonymize else doc[a]
                for a in event.attrs
                if a in doc
            }
            stamp = int(measured_at.timestamp() * 1000)
            out.events.append(
                DeviceEvent(
                    event_id=f"{device_id}/{kind}/{stamp}" + (f"/{seq}" if seq is not None else ""),
                    device_id=device_id,
                    kind=kind,
                    measured_at=measured_at,
                    received_at=received_at,
                    attrs=attrs,
                )
            )
        for key, value in values.items():
            self._last[(device_id, key)] = value
        return out
