"""The simulated dorm door controller: traffic shaped by meals and curfew, and its faults,
all in messages the cfm-sim-door profile decodes without a single rejection."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
import pytest

from core.profiles import load_profiles
from firmware_sim.devices.door import DoorController, entries_per_hour
from firmware_sim.faults import UnknownFault
from gateway.decode.json_payload import JsonDecoder

PROFILE = load_profiles()["cfm-sim-door"]
DAY = datetime(2026, 11, 25)  # local wall time: the controller is given local datetimes


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def test_traffic_peaks_at_meals_and_before_curfew() -> None:
    quiet = entries_per_hour(at(10.0))
    for meal in (6.75, 12.0, 17.75):
        assert entries_per_hour(at(meal)) > 4 * quiet
    assert entries_per_hour(at(22.5)) > 4 * quiet
    assert entries_per_hour(at(3.0)) < quiet / 4
    # Stragglers just after curfew outnumber the small hours.
    assert entries_per_hour(at(23.25)) > 5 * entries_per_hour(at(3.0))


def test_an_earlier_curfew_moves_the_evening_rush() -> None:
    early = time(22, 0)
    assert entries_per_hour(at(21.5), early) > 2 * entries_per_hour(at(22.5), early)
    assert entries_per_hour(at(22.5)) > 2 * entries_per_hour(at(22.5), early)


class Run:
    """Steps a controller through local time, collecting and decoding what it publishes."""

    def __init__(self, door: DoorController, start: datetime) -> None:
        self.door = door
        self.now = start
        self.seq = 0
        self.messages: list[dict[str, Any]] = []
        self.decoder = JsonDecoder(b"k" * 32)
        self.kinds: list[str] = []
        self.rejections: list[str] = []

    def run(self, seconds: float, dt: float = 1.0, heartbeat_every: int = 60) -> None:
        for i in range(int(seconds / dt)):
            self.door.step(dt, self.now)
            msgs = self.door.messages(
                self.seq + 1,
                int(self.now.replace(tzinfo=UTC).timestamp() * 1000),
                i % heartbeat_every == 0,
            )
            self.seq += len(msgs)
            for m in msgs:
                self.messages.append(m)
                out = self.decoder.decode(
                    device_id="door",
                    profile=PROFILE,
                    topic="t",
                    payload=orjson.dumps(m),
                    received_at=self.now.replace(tzinfo=UTC),
                )
                self.kinds += [e.kind for e in out.events]
                self.rejections += [r.detail for r in out.rejections]
            self.now += timedelta(seconds=dt)


def test_a_simulated_day_has_the_school_days_shape() -> None:
    run = Run(DoorController("dorm-a-door-01", random.Random(11)), at(0))
    run.run(24 * 3600, dt=2.0)
    assert run.rejections == []
    swipes = [m for m in run.messages if m["event"] in {"granted", "denied"}]
    by_hour = Counter(datetime.fromtimestamp(m["ts"] / 1000, UTC).hour for m in swipes)
    assert by_hour[12] > 3 * by_hour[10]
    assert by_hour[22] > 3 * by_hour[15]
    assert by_hour[3] <= 2
    late = [m for m in swipes if datetime.fromtimestamp(m["ts"] / 1000, UTC).hour == 23]
    assert late and sum(m["reader"] == "in" for m in late) > 0.8 * len(late)
    denied = [m for m in swipes if m["event"] == "denied"]
    assert {m["reason"] for m in denied} <= {"unknown_card", "outside_schedule"}
    # Every granted card opens the door and every opening closes again.
    assert run.kinds.count("door_opened") == run.kinds.count("card_granted")
    assert run.kinds.count("door_closed") == run.kinds.count("door_opened")
    assert "door_held_open" not in run.kinds and "door_forced" not in run.kinds


def test_invalid_cards_is_a_burst_of_different_refused_cards() -> None:
    run = Run(DoorController("d", random.Random(1), invalid_every_s=3.0), at(3.0))
    run.door.set_fault("invalid_cards")
    run.run(30)
    burst = [m for m in run.messages if m.get("reason") == "unknown_card"]
    assert len(burst) == 6 and len({m["card"] for m in burst}) == 6
    gaps = {b["ts"] - a["ts"] for a, b in itertools.pairwise(burst)}
    assert gaps == {3000}  # 6 in 15 s: over the server's 5-in-5-minutes warning
    assert run.kinds.count("card_denied") >= 6 and run.rejections == []


def test_forced_open_then_closes_by_itself() -> None:
    run = Run(DoorController("d", random.Random(2)), at(3.0))
    run.door.set_fault("forced_open")
    run.run(20)
    assert run.kinds[:1] == ["door_forced"]
    assert "door_closed" in run.kinds and run.rejections == []


def test_held_open_alarms_after_the_delay_and_closes_on_clear() -> None:
    run = Run(DoorController("d", random.Random(3), held_alarm_s=30.0), at(3.0))
    run.door.set_fault("held_open")
    run.run(29)
    assert run.kinds == ["card_granted", "door_opened"]
    run.run(300)
    assert run.kinds.count("door_held_open") == 1  # once per opening, not every tick
    assert "door_closed" not in run.kinds
    run.door.clear()
    run.run(1)
    assert run.kinds[-1] == "door_closed" and run.rejections == []


def test_controller_offline_publishes_nothing_and_unknown_faults_are_refused() -> None:
    door = DoorController("d", random.Random(4))
    door.set_fault("controller_offline")
    door.set_fault("forced_open")
    assert door.messages(1, 0, heartbeat=True) == []
    with pytest.raises(UnknownFault, match="does not simulate fault 'leak'"):
        door.set_fault("leak")
