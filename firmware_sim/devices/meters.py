"""Utility meters: an electricity meter following a school day's load curve and a water
meter whose volume only grows. Values are in the units the profiles normalise to (kWh, V, A,
W, Hz; m³, m³/h); the serial slaves encode them the way each protocol carries them."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from firmware_sim.faults import METER_FAULTS, check_fault

# Fraction of the circuit's peak load by local hour (a canteen/dorm mix: breakfast, lunch
# and dinner peaks, a quiet night with fridges and corridor lights).
LOAD_CURVE = (
    0.18, 0.16, 0.15, 0.15, 0.16, 0.25, 0.65, 0.85, 0.55, 0.45, 0.6, 0.95,
    1.0, 0.7, 0.45, 0.45, 0.55, 0.9, 0.95, 0.7, 0.6, 0.5, 0.35, 0.22,
)  # fmt: skip
# Water use by local hour, m³/h at the campus inlet: zero flow at night unless something leaks.
WATER_CURVE = (
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.6, 1.8, 0.9, 0.5, 0.7, 1.5,
    1.7, 0.8, 0.4, 0.4, 0.6, 1.6, 1.9, 1.4, 1.2, 1.0, 0.5, 0.1,
)  # fmt: skip
OVERLOAD_W = 4500.0
LEAK_M3H = 0.12  # a running toilet cistern is 0.05-0.3 m³/h


def _curve(curve: tuple[float, ...], local: datetime) -> float:
    """Hourly values joined linearly, so the curve has no steps at the hour."""
    h = local.hour + local.minute / 60
    a, b = curve[int(h) % 24], curve[(int(h) + 1) % 24]
    return a + (b - a) * (h - int(h))


@dataclass
class ElectricityMeter:
    device_id: str
    rng: random.Random
    tz: ZoneInfo
    peak_w: float = 2200.0
    energy_kwh: float = 0.0
    power_w: float = 0.0
    voltage_v: float = 230.0
    frequency_hz: float = 50.0
    power_factor: float = 0.93
    faults: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # A meter that has been in service for a while: a plausible starting register.
        self.energy_kwh = round(self.rng.uniform(1200, 9000), 2)

    def set_fault(self, fault: str) -> None:
        check_fault(METER_FAULTS, self.device_id, fault)
        self.faults.add(fault)

    def clear(self) -> None:
        self.faults.clear()

    def step(self, now: datetime, dt_s: float) -> None:
        local = now.astimezone(self.tz)
        if "power_loss" in self.faults:
            self.power_w, self.voltage_v = 0.0, 0.0
            return
        base = self.peak_w * _curve(LOAD_CURVE, local)
        if "overload" in self.faults:
            base = OVERLOAD_W
        self.power_w = max(0.0, base * (1 + self.rng.gauss(0, 0.03)))
        self.voltage_v = (
            230.0 + 3.0 * math.sin(local.hour / 24 * 2 * math.pi) + self.rng.gauss(0, 0.8)
        )
        self.frequency_hz = 50.0 + self.rng.gauss(0, 0.02)
        self.power_factor = 0.93 + self.rng.gauss(0, 0.01)
        self.energy_kwh += self.power_w * dt_s / 3_600_000

    @property
    def current_a(self) -> float:
        return self.power_w / self.voltage_v if self.voltage_v > 0 else 0.0

    def values(self) -> dict[str, float]:
        return {
            "energy": round(self.energy_kwh, 2),
            "voltage": round(self.voltage_v, 1),
            "current": round(self.current_a, 3),
            "power": round(self.power_w, 1),
            "frequency": round(self.frequency_hz, 2),
            "power_factor": 0.0 if self.power_w == 0 else round(self.power_factor, 3),
        }


@dataclass
class WaterMeter:
    device_id: str
    rng: random.Random
    tz: ZoneInfo
    volume_m3: float = 0.0
    flow_m3h: float = 0.0
    faults: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.volume_m3 = round(self.rng.uniform(3000, 20000), 3)

    def set_fault(self, fault: str) -> None:
        check_fault(METER_FAULTS, self.device_id, fault)
        self.faults.add(fault)

    def clear(self) -> None:
        self.faults.clear()

    def step(self, now: datetime, dt_s: float) -> None:
        flow = _curve(WATER_CURVE, now.astimezone(self.tz))
        if flow > 0:
            flow = max(0.0, flow * (1 + self.rng.gauss(0, 0.1)))
        if "leak" in self.faults:
            flow += LEAK_M3H
        self.flow_m3h = flow
        self.volume_m3 += flow * dt_s / 3600  # only ever grows

    def values(self) -> dict[str, float]:
        return {"volume": round(self.volume_m3, 3), "flow": round(self.flow_m3h, 3)}
