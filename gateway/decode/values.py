"""One value through its metric spec: type, finiteness, scale, unit conversion, valid range.
Shared by every decoder (JSON payloads, serial registers), so a profile means the same
whatever transport its device uses."""

from __future__ import annotations

import math
from typing import Any

from core.profiles import MetricSpec, MetricType
from core.readings import RejectReason, Value
from core.units import convert


class ValueRejected(Exception):
    """A value that cannot be accepted; `reason` labels the rejection metric."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def coerce(spec: MetricSpec, raw: Any, payload: dict[str, Any]) -> Value:
    """Check type, finiteness, unit and range of one value; raise ValueRejected if bad."""
    kind = spec.resolved_type
    name = f"{spec.key} ({spec.source if isinstance(spec.source, str) else 'register'})"
    if kind is MetricType.BOOL:
        if isinstance(raw, bool):
            return raw != spec.invert
        if isinstance(raw, str) and raw.upper() in {"ON", "OFF", "OPEN", "CLOSED"}:
            return (raw.upper() in {"ON", "OPEN"}) != spec.invert
        raise ValueRejected(RejectReason.WRONG_TYPE, f"{name}={raw!r} is not a boolean")
    if kind is MetricType.STR:
        if isinstance(raw, str):
            return raw
        raise ValueRejected(RejectReason.WRONG_TYPE, f"{name}={raw!r} is not a string")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueRejected(RejectReason.WRONG_TYPE, f"{name}={raw!r} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueRejected(RejectReason.NOT_FINITE, f"{name}={raw!r} is not a finite number")
    value = value * spec.scale + spec.offset
    unit = spec.resolved_unit
    source_unit = spec.source_unit
    if spec.source_unit_field is not None:
        given = payload.get(spec.source_unit_field)
        if isinstance(given, str):
            source_unit = given
    if source_unit and unit:
        try:
            value = convert(value, source_unit, unit)
        except ValueError as exc:
            raise ValueRejected(RejectReason.WRONG_TYPE, f"{name}: {exc}") from None
    valid = spec.resolved_valid
    if (valid.min is not None and value < valid.min) or (
        valid.max is not None and value > valid.max
    ):
        raise ValueRejected(
            RejectReason.OUT_OF_RANGE,
            f"{name}={value:g} {unit or ''} outside valid range [{valid.min}, {valid.max}]",
        )
    if kind is MetricType.INT:
        return float(int(value))
    return round(value, 6)
