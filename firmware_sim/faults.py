"""Fault names each simulated device class accepts on its command topic."""

from __future__ import annotations

FRIDGE_FAULTS = frozenset({"compressor_failure", "door_ajar", "sensor_offline", "defrost"})
DOOR_FAULTS = frozenset({"held_open", "forced_open", "invalid_cards", "controller_offline"})
METER_FAULTS = frozenset({"overload", "leak", "comm_loss", "bad_crc", "power_loss"})


class UnknownFault(ValueError):
    pass


def check_fault(allowed: frozenset[str], device_id: str, fault: str) -> None:
    if fault not in allowed:
        raise UnknownFault(
            f"{device_id} does not simulate fault {fault!r}; it knows {sorted(allowed)}"
        )
