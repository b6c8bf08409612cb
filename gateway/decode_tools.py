"""`facility decode dlt645|modbus HEX`: a serial sniffer's frame, decoded for a person.

A meter's well-formed refusal (a Modbus exception reply, a DL/T 645 abnormal reply) is a
frame like any other and is decoded, its reason named; only a broken frame (checksum or
CRC, length, not a frame at all) raises FrameError, which the command turns into exit 2.
"""

from __future__ import annotations

import math
import re
from typing import Any

from core.serial import dlt645, modbus
from core.serial.errors import FrameError
from gateway.decode.dlt645_items import decode_read_reply

_HEX = re.compile(r"^[0-9a-fA-F]*$")


def parse_hex(text: str) -> bytes:
    """Hex with optional spaces, colons, dashes or 0x prefixes."""
    cleaned = re.sub(r"0x|[\s:,-]", "", text, flags=re.IGNORECASE)
    if not cleaned:
        raise ValueError("no hex digits given")
    if not _HEX.match(cleaned):
        bad = next(c for c in cleaned if c not in "0123456789abcdefABCDEF")
        raise ValueError(f"{bad!r} is not a hex digit")
    if len(cleaned) % 2:
        raise ValueError(f"odd number of hex digits ({len(cleaned)})")
    return bytes.fromhex(cleaned)


def decode_hex(protocol: str, text: str) -> dict[str, Any]:
    raw = parse_hex(text)
    if protocol == "dlt645":
        return _dlt645(raw)
    if protocol == "modbus":
        return _modbus(raw)
    raise ValueError(f"unknown protocol {protocol!r} (dlt645 or modbus)")


def _dlt645(raw: bytes) -> dict[str, Any]:
    frame = dlt645.parse(raw)
    out: dict[str, Any] = {
        "protocol": "DL/T 645-2007",
        "address": frame.address,
        "control": f"{frame.control:02X}",
        "direction": "slave->master" if frame.from_slave else "master->slave",
        "data_hex": frame.data.hex(" ").upper(),
    }
    if not frame.from_slave:
        if frame.function == dlt645.READ & 0x1F and len(frame.data) == 4:
            di = int.from_bytes(frame.data, "little")
            spec = dlt645.DATA_IDS.get(di)
            out.update(
                kind="read request", data_id=f"{di:08X}", name=spec.name if spec else "unknown"
            )
        elif frame.function == dlt645.READ_ADDRESS & 0x1F:
            out.update(kind="read address request")
        else:
            out.update(kind=f"request, function {frame.function:02X}")
        return out
    if frame.is_error:
        error = dlt645.decode_error_reply(frame)
        out.update(
            kind="error reply",
            function=dlt645.FUNCTIONS.get(error.function, f"{error.function:02X}"),
            error_code=f"{error.code:02X}",
            errors=list(error.reasons),
        )
        return out
    if frame.function == dlt645.READ_ADDRESS & 0x1F:
        out.update(kind="address reply", meter_address=dlt645.address_from_data(frame.data))
        return out
    if frame.function == dlt645.READ & 0x1F and len(frame.data) >= 4:
        di = int.from_bytes(frame.data[:4], "little")
        if di not in dlt645.DATA_IDS:
            # A sound frame for an identifier we have no layout of: shown, not refused.
            out.update(
                kind="read reply",
                data_id=f"{di:08X}",
                name="unknown",
                value_hex=frame.data[4:].hex(" ").upper(),
            )
            return out
    reply = decode_read_reply(frame)  # a wrong length or bad BCD raises: exit 2
    out.update(
        kind="read reply",
        data_id=f"{reply.di:08X}",
        name=reply.spec.name,
        value=reply.value,
        unit=reply.spec.unit,
    )
    return out


def _float32_text(value: float) -> float | str:
    """A float32 to its ~7 significant digits (230.2, not 230.200012); NaN/inf as text."""
    return float(f"{value:.7g}") if math.isfinite(value) else str(value)


def _modbus(raw: bytes) -> dict[str, Any]:
    frame = modbus.parse(raw)
    out: dict[str, Any] = {
        "protocol": "Modbus RTU",
        "slave": frame.slave,
        "function": frame.function,
        "kind": frame.kind,
        "crc": "ok",
    }
    pdu = frame.pdu
    if frame.kind == "exception":
        code = int(pdu.exception_code)
        out.update(exception_code=code, exception=modbus.exception_text(code))
        return out
    registers = getattr(pdu, "registers", None)
    if frame.kind == "response" and registers:
        regs = [int(r) for r in registers]
        out["registers"] = regs
        if len(regs) % 2 == 0:
            # Both word orders: the engineer reading a capture may not know the meter's.
            for order, key in (
                ("big", "float32_high_word_first"),
                ("little", "float32_low_word_first"),
            ):
                floats = [modbus.float32(regs[i : i + 2], order) for i in range(0, len(regs), 2)]
                out[key] = [_float32_text(f) for f in floats]
        return out
    bits = getattr(pdu, "bits", None)
    if frame.kind == "response" and bits:
        out["bits"] = [bool(b) for b in bits]
        return out
    address = getattr(pdu, "address", None)
    count = getattr(pdu, "count", None)
    if address is not None:
        out["address"] = int(address)
    if count is not None:
        out["count"] = int(count)
    if registers:
        out["registers"] = [int(r) for r in registers]
    return out


__all__ = ["FrameError", "decode_hex", "parse_hex"]
