"""Dorm door access controller: card traffic shaped by the school day, alarms, heartbeats.

Traffic follows the day of a boarding school: students go out to breakfast, lunch and
dinner and come back, and crowd in just before the building's curfew; after curfew a few
stragglers return (the server lists them as late returns) and more of their cards are
refused by the controller's schedule. All rates are our own estimates.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from firmware_sim.faults import DOOR_FAULTS, check_fault

DEFAULT_CURFEW = time(23, 0)
MEALS_H = (6.75, 12.0, 17.75)  # breakfast, lunch, dinner peaks (local hours)
MEAL_PEAK_PER_H = 30.0  # card swipes per hour at a meal's peak, one door
CURFEW_PEAK_PER_H = 40.0  # in the half hour before curfew
DAYTIME_PER_H = 4.0
NIGHT_PER_H = 0.3
LATE_PER_H = 6.0  # just after curfew, tapering to none over LATE_TAPER_H
LATE_TAPER_H = 2.0
DENIED_SHARE = 0.03  # lost, expired or wrong cards
DENIED_SHARE_AFTER_CURFEW = 0.25  # cards refused by their time schedule
INVALID_BURST = 6  # `invalid_cards`: unknown cards tried one after another ...
INVALID_EVERY_S = 3.0  # ... this far apart (the server warns at 5 within 5 min)
CARDS = 400  # residents per door
NIGHT_AFTER_CURFEW_H = 6.0  # hours after curfew that count as the night


def _hours(local: datetime) -> float:
    return local.hour + local.minute / 60 + local.second / 3600


def _bump(h: float, centre: float, width: float) -> float:
    """Gaussian bump on the 24 h circle (a curfew at 00:30 peaks at 00:00)."""
    d = (h - centre + 12) % 24 - 12
    return math.exp(-0.5 * (d / width) ** 2)


def _since_curfew(h: float, curfew: time) -> float:
    return (h - (curfew.hour + curfew.minute / 60)) % 24


def after_curfew(local: datetime, curfew: time = DEFAULT_CURFEW) -> bool:
    return _since_curfew(_hours(local), curfew) < NIGHT_AFTER_CURFEW_H


def entries_per_hour(local: datetime, curfew: time = DEFAULT_CURFEW) -> float:
    """Expected card swipes per hour at one dorm door at this local time."""
    h = _hours(local)
    c = curfew.hour + curfew.minute / 60
    since = _since_curfew(h, curfew)
    awake = h >= 6.0 and not after_curfew(local, curfew)  # from 06:00 until curfew
    rate = DAYTIME_PER_H if awake else NIGHT_PER_H
    rate += sum(MEAL_PEAK_PER_H * _bump(h, m, 0.5) for m in MEALS_H)
    rate += CURFEW_PEAK_PER_H * _bump(h, c - 0.5, 0.35)
    if since < LATE_TAPER_H:
        rate += LATE_PER_H * (1 - since / LATE_TAPER_H)
    return rate


def share_coming_in(local: datetime, curfew: time = DEFAULT_CURFEW) -> float:
    """Of the swipes now, the share on the entry reader: out in the morning, back at night."""
    h = _hours(local)
    if after_curfew(local, curfew):
        return 0.95
    if h < 10:
        return 0.3
    if h < 16:
        return 0.5
    return 0.75


@dataclass
class DoorController:
    device_id: str
    rng: random.Random
    held_alarm_s: float = 60.0  # controller raises "held" after the door stays open this long
    invalid_every_s: float = INVALID_EVERY_S
    curfew: time = DEFAULT_CURFEW
    door_open: bool = False
    open_for_s: float = 0.0
    close_after_s: float = 6.0  # how long the current passer-by keeps the door open
    held_reported: bool = False
    faults: set[str] = field(default_factory=set)
    pending: list[dict[str, Any]] = field(default_factory=list)
    invalid_left: int = 0
    invalid_wait_s: float = 0.0

    def set_fault(self, fault: str) -> None:
        check_fault(DOOR_FAULTS, self.device_id, fault)
        if fault == "forced_open":
            # Opened without a card: the contact opens while the lock is shut.
            self._open(close_after_s=self.rng.uniform(4, 10))
            self.pending.append({"event": "forced", "door": True, "reader": "in"})
        elif fault == "invalid_cards":
            self.invalid_left, self.invalid_wait_s = INVALID_BURST, 0.0
        elif fault == "held_open":
            self.faults.add(fault)
            if not self.door_open:
                self.pending.append(
                    {"event": "granted", "door": False, "card": self._card(1), "reader": "in"}
                )
                self._open(close_after_s=math.inf)
                self.pending.append({"event": "opened", "door": True})
        else:
            self.faults.add(fault)

    def clear(self) -> None:
        self.faults.clear()
        self.invalid_left = 0
        if self.door_open:
            self._close()

    def _card(self, n: int) -> str:
        # Simulated card serials; the gateway pseudonymises them before storage.
        return hashlib.sha256(f"{self.device_id}:{n}".encode()).hexdigest()[:8].upper()

    def _open(self, close_after_s: float) -> None:
        self.door_open, self.open_for_s, self.held_reported = True, 0.0, False
        self.close_after_s = close_after_s

    def _close(self) -> None:
        self.door_open, self.open_for_s, self.held_reported = False, 0.0, False
        self.pending.append({"event": "closed", "door": False})

    def step(self, dt_s: float, local: datetime) -> None:
        self._invalid_burst(dt_s)
        if self.door_open:
            self.open_for_s += dt_s
            if self.open_for_s >= self.held_alarm_s and not self.held_reported:
                self.held_reported = True
                self.pending.append({"event": "held", "door": True})
            if "held_open" not in self.faults and self.open_for_s >= self.close_after_s:
                self._close()
            return
        rate = entries_per_hour(local, self.curfew) / 3600
        if self.rng.random() >= rate * dt_s:
            return
        card = self._card(self.rng.randrange(CARDS))
        late = after_curfew(local, self.curfew)
        if self.rng.random() < (DENIED_SHARE_AFTER_CURFEW if late else DENIED_SHARE):
            reason = "outside_schedule" if late else "unknown_card"
            self.pending.append(
                {"event": "denied", "door": False, "card": card, "reader": "in", "reason": reason}
            )
            return
        coming_in = self.rng.random() < share_coming_in(local, self.curfew)
        self.pending.append(
            {
                "event": "granted",
                "door": False,
                "card": card,
                "reader": "in" if coming_in else "out",
            }
        )
        self._open(close_after_s=self.rng.uniform(3, 12))
        self.pending.append({"event": "opened", "door": True})

    def _invalid_burst(self, dt_s: float) -> None:
        self.invalid_wait_s -= dt_s
        if self.invalid_left > 0 and self.invalid_wait_s <= 0:
            n = INVALID_BURST - self.invalid_left
            self.pending.append(
                {
                    "event": "denied",
                    "door": self.door_open,
                    "card": self._card(9000 + n),
                    "reader": "in",
                    "reason": "unknown_card",
                }
            )
            self.invalid_left -= 1
            self.invalid_wait_s = self.invalid_every_s

    def messages(self, seq_start: int, ts_ms: int, heartbeat: bool) -> list[dict[str, Any]]:
        if "controller_offline" in self.faults:
            self.pending.clear()
            return []
        out = self.pending
        self.pending = []
        if heartbeat:
            out.append({"event": "heartbeat", "door": self.door_open})
        return [dict(m, seq=seq_start + i, ts=ts_ms + i) for i, m in enumerate(out)]
