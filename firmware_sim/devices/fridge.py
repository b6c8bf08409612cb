"""Thermal model of a fridge or freezer: compressor duty cycle, door openings, defrost, noise.

Newton cooling toward the room plus a compressor that removes heat at a fixed rate, with a
thermostat band. Rates are per simulated hour; the runner may run time faster than real.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from firmware_sim.faults import FRIDGE_FAULTS, check_fault


@dataclass(frozen=True, slots=True)
class FridgeParams:
    cut_in: float  # compressor starts above this (°C)
    cut_out: float  # and stops below this
    cooling_per_h: float  # °C/h the compressor removes
    leak_per_h: float = 0.35  # fraction of the gap to ambient closed per hour, door shut
    door_leak_factor: float = 12.0  # door open: heat comes in this much faster
    ambient: float = 24.0
    defrost_every_h: float = 6.0
    defrost_minutes: float = 20.0
    defrost_heat_per_h: float = 25.0


# Defrost lifts the air a few degrees for minutes: the reason alert delays exist. A catering
# fridge is set to 1.5-3.5 °C so its normal cycle stays under the warning's clear level (4 °C).
CHILLED = FridgeParams(
    cut_in=3.5, cut_out=1.5, cooling_per_h=18.0, defrost_minutes=12.0, defrost_heat_per_h=4.0
)
FREEZER = FridgeParams(
    cut_in=-18.0,
    cut_out=-21.0,
    cooling_per_h=30.0,
    leak_per_h=0.25,
    defrost_minutes=15.0,
    defrost_heat_per_h=10.0,
)
# Sample fridges defrost by off-cycle only (no heater) and sit lower in the band.
SAMPLE = FridgeParams(
    cut_in=3.5,
    cut_out=2.0,
    cooling_per_h=18.0,
    defrost_every_h=8.0,
    defrost_minutes=10.0,
    defrost_heat_per_h=0.0,
)


@dataclass
class Fridge:
    device_id: str
    params: FridgeParams
    rng: random.Random
    temp: float = field(default=0.0)
    compressor_on: bool = False
    door_open_s: float = 0.0  # seconds of door opening left
    defrost_left_s: float = 0.0
    since_defrost_s: float = 0.0
    battery: float = 97.0
    door_openings_per_h: float = 4.0  # while the kitchen works
    faults: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.temp = (self.params.cut_in + self.params.cut_out) / 2
        # Spread defrost cycles so not every fridge defrosts at once.
        self.since_defrost_s = self.rng.uniform(0, self.params.defrost_every_h * 3600)

    def set_fault(self, fault: str) -> None:
        check_fault(FRIDGE_FAULTS, self.device_id, fault)
        if fault == "defrost":
            self.defrost_left_s = self.params.defrost_minutes * 60
        else:
            self.faults.add(fault)

    def clear(self) -> None:
        self.faults.clear()

    def step(self, dt_s: float, busy: bool) -> None:
        """Advance the physics by dt_s simulated seconds; `busy` = kitchen working hours."""
        p = self.params
        hours = dt_s / 3600
        # Door openings: a few per hour while the kitchen works, 8-40 s each.
        if busy and self.door_open_s <= 0 and self.rng.random() < self.door_openings_per_h * hours:
            self.door_open_s = self.rng.uniform(8, 40)
        door_open = self.door_open_s > 0 or "door_ajar" in self.faults
        self.door_open_s = max(0.0, self.door_open_s - dt_s)

        self.since_defrost_s += dt_s
        if self.since_defrost_s >= p.defrost_every_h * 3600:
            self.since_defrost_s = 0.0
            self.defrost_left_s = p.defrost_minutes * 60
        defrosting = self.defrost_left_s > 0
        self.defrost_left_s = max(0.0, self.defrost_left_s - dt_s)

        if defrosting or "compressor_failure" in self.faults:
            self.compressor_on = False
        elif self.temp > p.cut_in:
            self.compressor_on = True
        elif self.temp < p.cut_out:
            self.compressor_on = False

        leak = p.leak_per_h * (p.door_leak_factor if door_open else 1.0)
        delta = (p.ambient - self.temp) * min(1.0, leak * hours)
        if self.compressor_on:
            delta -= p.cooling_per_h * hours
        if defrosting:
            delta += p.defrost_heat_per_h * hours
        self.temp += delta
        self.battery = max(5.0, self.battery - 0.0005 * hours)

    def payload(self, seq: int, ts_ms: int) -> dict[str, Any] | None:
        if "sensor_offline" in self.faults:
            return None
        door = self.door_open_s > 0 or "door_ajar" in self.faults
        return {
            "seq": seq,
            "ts": ts_ms,
            "t": round(self.temp + self.rng.gauss(0, 0.05), 2),
            "door": door,
            "comp": self.compressor_on,
            "defrost": self.defrost_left_s > 0,
            "bat": round(self.battery, 1),
            "rssi": int(self.rng.gauss(-62, 3)),
        }
