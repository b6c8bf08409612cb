"""Decode stage for Modbus: the register words a meter answered -> the number a profile's
register source describes (type, sign, word order). Pure; the bus master reads the words.

Scale, offset, unit conversion and the valid range are the metric's, applied afterwards by
`gateway.decode.values` exactly as for a JSON payload.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.profiles import ModbusSource
from core.serial import modbus
from core.serial.errors import FrameError

# 16-bit registers per value type.
WORDS = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2}


def register_count(source: ModbusSource) -> int:
    """How many registers a read of this source asks for."""
    return WORDS[source.type]


def registers_number(words: Sequence[int], source: ModbusSource) -> float:
    """The value the words hold. FrameError("length") when they are not the number of
    16-bit words the type takes: the meter answered a different read."""
    need = WORDS[source.type]
    if len(words) != need or any(not 0 <= w <= 0xFFFF for w in words):
        shown = " ".join(f"{w:04X}" if 0 <= w <= 0xFFFF else str(w) for w in words)
        raise FrameError("length", f"{source.type} takes {need} 16-bit register(s), got [{shown}]")
    if source.type == "float32":
        # float32 carries ~7 significant digits; more would be noise (228.800003 V).
        return float(f"{modbus.float32(words, source.word_order):.7g}")
    if need == 1:
        raw = words[0]
        return float(raw - 0x10000 if source.type == "int16" and raw & 0x8000 else raw)
    # "big": high word first (Modbus's own byte order carried over to words); "little": the
    # low word first, as Carlo Gavazzi's meters send their INT32s.
    hi, lo = (words[0], words[1]) if source.word_order == "big" else (words[1], words[0])
    raw = (hi << 16) | lo
    if source.type == "int32" and raw & 0x80000000:
        raw -= 0x100000000
    return float(raw)
