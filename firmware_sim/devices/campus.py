"""Campus-service sensors as their real firmware reports: Zigbee2MQTT soil moisture, air
quality and water leak sensors (the bridge publishes the device's whole state on
zigbee2mqtt/<name>, no clock of its own), and patrol checkpoint readers.

Each model steps in simulated seconds and queues what it would publish; the runner sends the
queue. Rates and levels are our own estimates, made to read plausibly in the demo.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from firmware_sim.faults import (
    AIR_FAULTS,
    BIN_FAULTS,
    LEAK_FAULTS,
    READER_FAULTS,
    SOIL_FAULTS,
    check_fault,
)


@dataclass
class _Reporter:
    device_id: str
    rng: random.Random
    report_every_s: float = 60.0
    faults: set[str] = field(default_factory=set)
    pending: list[dict[str, Any]] = field(default_factory=list)
    since_report_s: float = 1e9  # report at once on start

    def clear(self) -> None:
        self.faults.clear()

    def _due(self, dt_s: float) -> bool:
        self.since_report_s += dt_s
        if self.since_report_s < self.report_every_s:
            return False
        self.since_report_s = 0.0
        return True

    def messages(self, seq_start: int, ts_ms: int, heartbeat: bool) -> list[dict[str, Any]]:
        out, self.pending = self.pending, []
        return out


@dataclass
class SoilSensor(_Reporter):
    """Capacitive soil probe in a flower bed: moisture dries slowly in the day, a sprinkler
    tops it up; fault `dry` (the sprinkler broke) dries it fast to ~10 %."""

    moisture: float = 28.0
    battery: float = 92.0

    def set_fault(self, fault: str) -> None:
        check_fault(SOIL_FAULTS, self.device_id, fault)
        self.faults.add(fault)

    def clear(self) -> None:
        super().clear()
        self.moisture = max(self.moisture, 28.0)  # watered by hand

    def step(self, dt_s: float, local: datetime) -> None:
        if "dry" in self.faults:
            self.moisture = max(9.0, self.moisture - 1.2 * dt_s)
        else:
            self.moisture += (28.0 - self.moisture) * min(1.0, dt_s / 600)
        if self._due(dt_s):
            self.pending.append(
                {
                    "soil_moisture": round(self.moisture + self.rng.gauss(0, 0.3)),
                    "temperature": round(16.0 + 4 * (8 <= local.hour < 17), 1),
                    "battery": round(self.battery),
                    "linkquality": self.rng.randint(60, 120),
                }
            )


@dataclass
class AirSensor(_Reporter):
    """A classroom's air box: CO2 follows occupancy (lessons) and ventilation; fault
    `co2_rise` (windows shut, a full room) drives it up towards 2200 ppm."""

    co2: float = 520.0

    def set_fault(self, fault: str) -> None:
        check_fault(AIR_FAULTS, self.device_id, fault)
        self.faults.add(fault)

    def step(self, dt_s: float, local: datetime) -> None:
        if "co2_rise" in self.faults:
            self.co2 = min(2200.0, self.co2 + 15.0 * dt_s)
        else:
            occupied = local.weekday() < 5 and 8 <= local.hour < 17
            target = 750.0 if occupied else 450.0
            self.co2 += (target - self.co2) * min(1.0, dt_s / 300)
        if self._due(dt_s):
            self.pending.append(
                {
                    "co2": round(self.co2 + self.rng.gauss(0, 8)),
                    "pm25": max(0, round(self.rng.gauss(18, 3))),
                    "voc": max(0, round(self.rng.gauss(120, 15))),
                    "temperature": round(21.5 + self.rng.gauss(0, 0.2), 1),
                    "humidity": round(45 + self.rng.gauss(0, 1), 1),
                    "linkquality": self.rng.randint(80, 140),
                }
            )


@dataclass
class LeakSensor(_Reporter):
    """A water leak detector on a washroom floor: reports on change and once in a while;
    fault `leak` puts water under it."""

    wet: bool = False

    def set_fault(self, fault: str) -> None:
        check_fault(LEAK_FAULTS, self.device_id, fault)
        self.faults.add(fault)
        self.since_report_s = 1e9  # reports the change at once

    def clear(self) -> None:
        super().clear()
        self.since_report_s = 1e9

    def step(self, dt_s: float, local: datetime) -> None:
        self.wet = "leak" in self.faults
        if self._due(dt_s):
            self.pending.append(
                {
                    "water_leak": self.wet,
                    "tamper": False,
                    "battery": 96,
                    "battery_low": False,
                    "voltage": 3005,
                    "linkquality": self.rng.randint(70, 130),
                }
            )


@dataclass
class PatrolReader(_Reporter):
    """A checkpoint's card reader: a heartbeat every `report_every_s` and a scan for each card
    tapped on it. Faults: `scan` (a guard taps a card now), `skip` (the simulated guard
    passes it by), `offline` (silent)."""

    guard_card: str = "G0001"

    def set_fault(self, fault: str) -> None:
        check_fault(READER_FAULTS, self.device_id, fault)
        if fault == "scan":
            self.scan()
        else:
            self.faults.add(fault)

    def scan(self, card: str | None = None) -> None:
        self.pending.append({"event": "scan", "card": card or self.guard_card})

    def skipped(self) -> bool:
        return "skip" in self.faults

    def step(self, dt_s: float, local: datetime) -> None:
        if self._due(dt_s):
            self.pending.append({"event": "heartbeat", "rssi": self.rng.randint(-75, -50)})

    def messages(self, seq_start: int, ts_ms: int, heartbeat: bool) -> list[dict[str, Any]]:
        out, self.pending = self.pending, []
        if "offline" in self.faults:
            return []
        return [dict(m, seq=seq_start + i, ts=ts_ms + i) for i, m in enumerate(out)]


@dataclass
class BinSensor(_Reporter):
    """An ultrasonic fill sensor in a canteen waste bin, joined to a LoRaWAN network: its
    uplink as ChirpStack v4's MQTT integration publishes it (JSON), with `object` as the
    device profile's codec decodes it. The bin fills through the day and is emptied at
    60 % by the cleaners' round; fault `fill_up` (a busy lunch, no collection) fills it to
    the brim, `tilt` knocks it over. The runner sets the DevEUI and application id from the
    site file."""

    dev_eui: str = "0000000000000000"
    application_id: str = ""
    fill: float = 12.0
    fcnt: int = 0
    empty_mm: float = 1200.0  # distance from the sensor to the bin's floor
    full_mm: float = 200.0  # ... to the rubbish when full

    def set_fault(self, fault: str) -> None:
        check_fault(BIN_FAULTS, self.device_id, fault)
        self.faults.add(fault)

    def clear(self) -> None:
        super().clear()
        self.fill = 5.0  # emptied and set upright
        self.since_report_s = 1e9

    def step(self, dt_s: float, local: datetime) -> None:
        if "fill_up" in self.faults:
            self.fill = min(100.0, self.fill + 4.0 * dt_s)
        else:
            self.fill += dt_s / 600  # a per cent every 10 minutes
            if self.fill >= 60.0:
                self.fill = 5.0
        if self._due(dt_s):
            self.fcnt += 1
            self.pending.append(self.uplink())

    def uplink(self) -> dict[str, Any]:
        distance = self.empty_mm - self.fill / 100 * (self.empty_mm - self.full_mm)
        return {
            "deduplicationId": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "deviceInfo": {
                "tenantName": "ChirpStack",
                "applicationId": self.application_id,
                "applicationName": "campus-bins",
                "deviceName": self.device_id,
                "devEui": self.dev_eui,
            },
            "fCnt": self.fcnt,
            "fPort": 85,
            "object": {
                "distance": round(distance),
                "fill_level": round(self.fill),
                "battery": 93,
                "position": "tilt" if "tilt" in self.faults else "normal",
            },
            "rxInfo": [
                {
                    "gatewayId": "0016c001f153a14c",
                    "rssi": self.rng.randint(-105, -85),
                    "snr": round(self.rng.uniform(-2, 8), 1),
                }
            ],
            "txInfo": {
                "frequency": 471900000,
                "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 9}},
            },
        }

    def messages(self, seq_start: int, ts_ms: int, heartbeat: bool) -> list[dict[str, Any]]:
        """The uplinks with ChirpStack's `time` (the runner's clock, as the network heard it)."""
        at = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat()
        out, self.pending = self.pending, []
        return [{"time": at, **m} for m in out]


CampusModel = SoilSensor | AirSensor | LeakSensor | PatrolReader | BinSensor
