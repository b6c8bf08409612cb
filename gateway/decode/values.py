"""One value through its metric spec: value map, type, finiteness, scale, unit conversion,
valid range. Shared by every decoder (JSON payloads, serial registers), so a profile means
the same whatever transport its device uses."""

from __future__ import annotations

import math
from typing import Any

from core.profiles import MetricSpec, MetricType, scalar_key
from core.readings import RejectReason, Value
from core.units import convert

# Integers past this cannot be stored or sent on (orjson, SQLite and InfluxDB are 64-bit).
INT64_LIMIT = 2**63
# Text we keep from a payload (event attributes, str metrics); card ids and states are
# short, and the time-series store's value_text column holds 200 (core/tsdb_schema.py).
MAX_TEXT = 200


class ValueRejected(Exception):
    """A value that cannot be accepted; `reason` labels the rejection metric."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def lookup(obj: dict[str, Any], path: str) -> Any:
    """Dotted path into nested objects ("DS18B20.Temperature"); KeyError when absent."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(path)
        cur = cur[part]
    return cur


def show(raw: Any, limit: int = 60) -> str:
    """A payload value for a log line: repr (escapes control characters), cut short."""
    text = repr(raw)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def storable_text(raw: str) -> bool:
    """Text every sink can keep: valid UTF-8 (the lenient parser lets lone surrogates
    through) and short."""
    if len(raw) > MAX_TEXT:
        return False
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def coerce(spec: MetricSpec, raw: Any, payload: dict[str, Any]) -> Value:
    """Check type, finiteness, unit and range of one value; raise ValueRejected if bad."""
    kind = spec.resolved_type
    name = f"{spec.key} ({spec.source if isinstance(spec.source, str) else 'register'})"
    if spec.map is not None:
        word = scalar_key(raw)
        if word is not None and word in spec.map:
            raw = spec.map[word]
        elif isinstance(raw, str):
            raise ValueRejected(
                RejectReason.UNKNOWN_VALUE,
                f"{name}={show(raw)} is none of {sorted(spec.map)}",
            )
    if kind is MetricType.BOOL:
        if isinstance(raw, bool):
            return raw != spec.invert
        if isinstance(raw, str) and raw.upper() in {"ON", "OFF", "OPEN", "CLOSED"}:
            return (raw.upper() in {"ON", "OPEN"}) != spec.invert
        raise ValueRejected(RejectReason.WRONG_TYPE, f"{name}={show(raw)} is not a boolean")
    if kind is MetricType.STR:
        if isinstance(raw, str) and storable_text(raw):
            return raw
        raise ValueRejected(RejectReason.WRONG_TYPE, f"{name}={show(raw)} is not a short text")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueRejected(RejectReason.WRONG_TYPE, f"{name}={show(raw)} is not a number")
    try:
        value = float(raw)
    except OverflowError:  # an integer with hundreds of digits
        raise ValueRejected(
            RejectReason.OUT_OF_RANGE, f"{name}={show(raw)} is too large for a number"
        ) from None
    if not math.isfinite(value):
        raise ValueRejected(RejectReason.NOT_FINITE, f"{name}={show(raw)} is not a finite number")
    value = value * spec.scale + spec.offset
    unit = spec.resolved_unit
    source_unit = spec.source_unit
    if spec.source_unit_field is not None:
        try:
            given = lookup(payload, spec.source_unit_field)
        except KeyError:
            given = None
        if isinstance(given, str):
            source_unit = given
        elif given is not None:  # the unit is garbled, so the number cannot be read
            raise ValueRejected(
                RejectReason.WRONG_TYPE,
                f"{name}: unit field {spec.source_unit_field}={show(given)} is not a unit",
            )
    if source_unit and unit:
        try:
            value = convert(value, source_unit, unit)
        except ValueError:
            raise ValueRejected(
                RejectReason.UNKNOWN_VALUE,
                f"{name}: unit {show(source_unit)} cannot be converted to {unit}",
            ) from None
    if not math.isfinite(value):  # scale or conversion of a huge value
        raise ValueRejected(RejectReason.OUT_OF_RANGE, f"{name}={show(raw)} is too large")
    valid = spec.resolved_valid
    if (valid.min is not None and value < valid.min) or (
        valid.max is not None and value > valid.max
    ):
        raise ValueRejected(
            RejectReason.OUT_OF_RANGE,
            f"{name}={value:g} {unit or ''} outside valid range [{valid.min}, {valid.max}]",
        )
    if kind is MetricType.INT:
        if abs(value) >= INT64_LIMIT:
            raise ValueRejected(RejectReason.OUT_OF_RANGE, f"{name}={value:g} is too large")
        return float(int(value))
    return round(value, 6)
