"""Fault names each simulated device class accepts on its command topic."""

from __future__ import annotations

FRIDGE_FAULTS = frozenset({"compressor_failure", "door_ajar", "sensor_offline", "defrost"})
DOOR_FAULTS = frozenset({"held_open", "forced_open", "invalid_cards", "controller_offline"})
METER_FAULTS = frozenset({"overload", "leak", "comm_loss", "bad_crc", "power_loss"})
SOIL_FAULTS = frozenset({"dry"})
AIR_FAULTS = frozenset({"co2_rise"})
LEAK_FAULTS = frozenset({"leak"})
READER_FAULTS = frozenset({"scan", "skip", "offline"})
BIN_FAULTS = frozenset({"fill_up", "tilt"})
# Every fault some simulated device takes: what `facility sim fault` accepts to send.
ALL_FAULTS = (
    FRIDGE_FAULTS
    | DOOR_FAULTS
    | METER_FAULTS
    | SOIL_FAULTS
    | AIR_FAULTS
    | LEAK_FAULTS
    | READER_FAULTS
    | BIN_FAULTS
)


class UnknownFault(ValueError):
    pass


def check_fault(allowed: frozenset[str], device_id: str, fault: str) -> None:
    if fault not in allowed:
        raise UnknownFault(
            f"{device_id} does not simulate fault {fault!r}; it knows {sorted(allowed)}"
        )
