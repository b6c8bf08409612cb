"""Unit conversions the profiles may name; a closed table, no expressions."""

from __future__ import annotations

from collections.abc import Callable

CONVERSIONS: dict[tuple[str, str], Callable[[float], float]] = {
    ("°F", "°C"): lambda f: (f - 32.0) * 5.0 / 9.0,
    ("°C", "°F"): lambda c: c * 9.0 / 5.0 + 32.0,
    ("W", "kW"): lambda w: w / 1000.0,
    ("kW", "W"): lambda kw: kw * 1000.0,
    ("Wh", "kWh"): lambda wh: wh / 1000.0,
    ("mV", "V"): lambda mv: mv / 1000.0,  # battery voltage as Zigbee2MQTT reports it
    ("V", "mV"): lambda v: v * 1000.0,
    ("L", "m³"): lambda litre: litre / 1000.0,
    ("m³", "L"): lambda m3: m3 * 1000.0,
}

ALIASES = {"degF": "°F", "F": "°F", "degC": "°C", "C": "°C", "m3": "m³"}


def canonical(unit: str) -> str:
    return ALIASES.get(unit, unit)


def convert(value: float, from_unit: str, to_unit: str) -> float:
    src, dst = canonical(from_unit), canonical(to_unit)
    if src == dst:
        return value
    try:
        return CONVERSIONS[(src, dst)](value)
    except KeyError:
        raise ValueError(f"no conversion from {from_unit!r} to {to_unit!r}") from None


def can_convert(from_unit: str, to_unit: str) -> bool:
    src, dst = canonical(from_unit), canonical(to_unit)
    return src == dst or (src, dst) in CONVERSIONS
