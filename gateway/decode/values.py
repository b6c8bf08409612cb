"""One value through its metric spec: value map, type, finiteness, scale, unit conversion,
valid range. Shared by every decoder (JSON payloads, serial registers), so a profile means
the same whatever transport its device uses."""

from __future__ import annotations

import sys
from math import isfinite
from typing import Any, Final

from core.profiles import MetricSpec, MetricType, scalar_key
from core.readings import RejectReason, Value
from core.units import convert

# Integers past this cannot be stored or sent on (orjson, SQLite and InfluxDB are 64-bit).
INT64_LIMIT = 2**63
# Text we keep from a payload (event attributes, str metrics); card ids and states are
# short, and the time-series store's value_text column holds 200 (core/tsdb_schema.py).
MAX_TEXT = 200

# What `find` returns for an absent path: a payload's own null is a value (None).
MISSING: Final[Any] = object()

_MAX_FLOAT = sys.float_info.max
_PLAIN_KINDS = frozenset({MetricType.FLOAT, MetricType.BOOL})
_SWITCH_WORDS = frozenset({"ON", "OFF", "OPEN", "CLOSED"})
_SWITCH_TRUE = frozenset({"ON", "OPEN"})


class ValueRejected(Exception):
    """A value that cannot be accepted; `reason` labels the rejection metric."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# A payload path: the key itself when it has no dots (most payloads are flat), else its
# parts ("DS18B20.Temperature" -> ("DS18B20", "Temperature")). A dot that is part of a key
# is written `\.` (Tasmota's "SDS0X1.PM2\.5"); a part of digits also indexes a list
# ("rxInfo.0.rssi": the first gateway that heard a LoRaWAN uplink).
FieldPath = str | tuple[str, ...]


def split_path(path: str) -> FieldPath:
    if "\\" not in path:
        return tuple(path.split(".")) if "." in path else path
    parts = [p.replace("\x00", ".") for p in path.replace("\\.", "\x00").split(".")]
    return tuple(parts) if len(parts) > 1 else parts[0]


def find(obj: dict[str, Any], path: FieldPath) -> Any:
    """The value at a path from `split_path`; MISSING when absent."""
    if isinstance(path, str):
        return obj.get(path, MISSING)
    cur: Any = obj
    for part in path:
        if isinstance(cur, dict):
            cur = cur.get(part, MISSING)
            if cur is MISSING:
                return MISSING
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return MISSING
    return cur


def lookup(obj: dict[str, Any], path: str) -> Any:
    """Dotted path into nested objects ("DS18B20.Temperature"); KeyError when absent."""
    value = find(obj, split_path(path))
    if value is MISSING:
        raise KeyError(path)
    return value


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


class MetricPlan:
    """A MetricSpec resolved once (preset, path, range), so each value costs only its checks;
    the spec's `resolved_*` properties look the preset up on every call."""

    __slots__ = (
        "high",
        "invert",
        "key",
        "kind",
        "low",
        "map",
        "offset",
        "path",
        "plain",
        "required",
        "scale",
        "source",
        "source_unit",
        "spec",
        "unit",
        "unit_field",
    )

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        self.key = spec.key
        self.source = spec.source if isinstance(spec.source, str) else None
        self.path = split_path(self.source) if self.source is not None else ()
        self.required = spec.required
        self.kind = spec.resolved_type
        self.unit = spec.resolved_unit
        self.map = spec.map
        self.invert = spec.invert
        # floats, so the inline path's arithmetic always gives a float
        self.scale = float(spec.scale)
        self.offset = float(spec.offset)
        self.source_unit = spec.source_unit
        self.unit_field = (
            split_path(spec.source_unit_field) if spec.source_unit_field is not None else None
        )
        # The valid range with finite bounds, so that checking it also refuses inf and nan.
        valid = spec.resolved_valid
        self.low = max(valid.min, -_MAX_FLOAT) if valid.min is not None else -_MAX_FLOAT
        self.high = min(valid.max, _MAX_FLOAT) if valid.max is not None else _MAX_FLOAT
        # A float or bool metric with no map and no unit conversion: the JSON decoder takes
        # its everyday values inline and leaves the rest, refusals included, to `coerce`.
        converts = bool(self.source_unit and self.unit) or self.unit_field is not None
        plain = self.map is None and not converts and self.kind in _PLAIN_KINDS
        self.plain = self.kind if plain else None

    def name(self) -> str:
        return f"{self.key} ({self.source if self.source is not None else 'register'})"

    def coerce(self, raw: Any, payload: dict[str, Any]) -> Value:
        """Check type, finiteness, unit and range of one value; raise ValueRejected if bad."""
        if self.map is not None:
            word = scalar_key(raw)
            if word is not None and word in self.map:
                raw = self.map[word]
            elif isinstance(raw, str):
                raise ValueRejected(
                    RejectReason.UNKNOWN_VALUE,
                    f"{self.name()}={show(raw)} is none of {sorted(self.map)}",
                )
        kind = self.kind
        if kind is MetricType.BOOL:
            if raw is True or raw is False:
                return raw != self.invert
            if isinstance(raw, str) and raw.upper() in _SWITCH_WORDS:
                return (raw.upper() in _SWITCH_TRUE) != self.invert
            raise ValueRejected(
                RejectReason.WRONG_TYPE, f"{self.name()}={show(raw)} is not a boolean"
            )
        if kind is MetricType.STR:
            if isinstance(raw, str) and storable_text(raw):
                return raw
            raise ValueRejected(
                RejectReason.WRONG_TYPE, f"{self.name()}={show(raw)} is not a short text"
            )
        if type(raw) is float:
            value = raw
        elif isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueRejected(
                RejectReason.WRONG_TYPE, f"{self.name()}={show(raw)} is not a number"
            )
        else:
            try:
                value = float(raw)
            except OverflowError:  # an integer with hundreds of digits
                raise ValueRejected(
                    RejectReason.OUT_OF_RANGE,
                    f"{self.name()}={show(raw)} is too large for a number",
                ) from None
        if not isfinite(value):
            raise ValueRejected(
                RejectReason.NOT_FINITE, f"{self.name()}={show(raw)} is not a finite number"
            )
        # Always applied, even as *1+0: that also turns -0.0 into 0.0, as it always has.
        value = value * self.scale + self.offset
        unit = self.unit
        source_unit = self.source_unit
        if self.unit_field is not None:
            given = find(payload, self.unit_field)
            if isinstance(given, str):
                source_unit = given
            elif given is not MISSING and given is not None:
                # the unit is garbled, so the number cannot be read
                raise ValueRejected(
                    RejectReason.WRONG_TYPE,
                    f"{self.name()}: unit field {self.spec.source_unit_field}={show(given)}"
                    " is not a unit",
                )
        if source_unit and unit:
            try:
                value = convert(value, source_unit, unit)
            except ValueError:
                raise ValueRejected(
                    RejectReason.UNKNOWN_VALUE,
                    f"{self.name()}: unit {show(source_unit)} cannot be converted to {unit}",
                ) from None
        if not isfinite(value):  # scale or conversion of a huge value
            raise ValueRejected(
                RejectReason.OUT_OF_RANGE, f"{self.name()}={show(raw)} is too large"
            )
        if value < self.low or value > self.high:
            valid = self.spec.resolved_valid
            raise ValueRejected(
                RejectReason.OUT_OF_RANGE,
                f"{self.name()}={value:g} {unit or ''} outside valid range"
                f" [{valid.min}, {valid.max}]",
            )
        if kind is MetricType.INT:
            if abs(value) >= INT64_LIMIT:
                raise ValueRejected(
                    RejectReason.OUT_OF_RANGE, f"{self.name()}={value:g} is too large"
                )
            return float(int(value))
        return round(value, 6)


def coerce(spec: MetricSpec, raw: Any, payload: dict[str, Any]) -> Value:
    """`MetricPlan.coerce` for a decoder that sees a value now and then (serial polls)."""
    return MetricPlan(spec).coerce(raw, payload)
