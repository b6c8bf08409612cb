"""Dorm door access controller: card traffic shaped by the school day, alarms, heartbeats."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from firmware_sim.faults import DOOR_FAULTS, check_fault

# Entries per hour by local hour: peaks around meals and before curfew (own estimate).
_TRAFFIC = [0, 0, 0, 0, 0, 1, 8, 30, 12, 4, 4, 12, 35, 20, 6, 6, 10, 25, 30, 15, 20, 30, 35, 8]


@dataclass
class DoorController:
    device_id: str
    rng: random.Random
    held_alarm_s: float = 60.0  # controller raises "held" after the door stays open this long
    door_open: bool = False
    open_for_s: float = 0.0
    held_reported: bool = False
    faults: set[str] = field(default_factory=set)
    pending: list[dict[str, Any]] = field(default_factory=list)

    def set_fault(self, fault: str) -> None:
        check_fault(DOOR_FAULTS, self.device_id, fault)
        if fault == "forced_open":
            self.door_open, self.open_for_s = True, 0.0
            self.pending.append({"event": "forced", "door": True, "reader": "in"})
        elif fault == "invalid_cards":
            for i in range(6):
                self.pending.append(
                    {"event": "denied", "door": False, "card": self._card(9000 + i), "reader": "in"}
                )
        elif fault == "held_open":
            self.faults.add(fault)
            if not self.door_open:
                self.door_open, self.open_for_s, self.held_reported = True, 0.0, False
                self.pending.append(
                    {"event": "granted", "door": False, "card": self._card(1), "reader": "in"}
                )
                self.pending.append({"event": "opened", "door": True})
        else:
            self.faults.add(fault)

    def clear(self) -> None:
        self.faults.clear()
        if self.door_open:
            self.door_open, self.open_for_s, self.held_reported = False, 0.0, False
            self.pending.append({"event": "closed", "door": False})

    def _card(self, n: int) -> str:
        # Simulated card serials; the gateway pseudonymises them before storage.
        return hashlib.sha256(f"{self.device_id}:{n}".encode()).hexdigest()[:8].upper()

    def step(self, dt_s: float, local: datetime) -> None:
        if self.door_open:
            self.open_for_s += dt_s
            if self.open_for_s >= self.held_alarm_s and not self.held_reported:
                self.held_reported = True
                self.pending.append({"event": "held", "door": True})
            if "held_open" not in self.faults and self.open_for_s >= 8 and not self.held_reported:
                self.door_open, self.open_for_s = False, 0.0
                self.pending.append({"event": "closed", "door": False})
            return
        rate = _TRAFFIC[local.hour] / 3600
        if self.rng.random() < rate * dt_s:
            card = self._card(self.rng.randrange(400))
            if self.rng.random() < 0.03:
                self.pending.append(
                    {"event": "denied", "door": False, "card": card, "reader": "in"}
                )
            else:
                self.pending.append(
                    {
                        "event": "granted",
                        "door": False,
                        "card": card,
                        "reader": self.rng.choice(["in", "out"]),
                    }
                )
                self.pending.append({"event": "opened", "door": True})
                self.door_open, self.open_for_s = True, 0.0

    def messages(self, seq_start: int, ts_ms: int, heartbeat: bool) -> list[dict[str, Any]]:
        if "controller_offline" in self.faults:
            self.pending.clear()
            return []
        out = self.pending
        self.pending = []
        if heartbeat:
            out.append({"event": "heartbeat", "door": self.door_open})
        return [dict(m, seq=seq_start + i, ts=ts_ms + i) for i, m in enumerate(out)]
