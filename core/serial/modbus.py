"""Modbus RTU frames through pymodbus's own framer and PDU classes (CRC, sizes, decoding):
only the value layout of a meter's registers is ours."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse

from core.serial.errors import FrameError

EXCEPTION_CODES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@dataclass(frozen=True, slots=True)
class RtuFrame:
    slave: int
    function: int
    kind: str  # "request" | "response" | "exception"
    pdu: Any  # the pymodbus PDU object


def crc(data: bytes) -> bytes:
    """CRC-16/Modbus of ``data``, low byte first as sent on the line."""
    return FramerRTU.compute_CRC(data).to_bytes(2, "big")


def parse(frame: bytes) -> RtuFrame:
    """Check one whole RTU frame (address, PDU, CRC) and decode it as the request or the
    response whose size matches (a sniffer capture can be either)."""
    if len(frame) < 4:
        raise FrameError("truncated", f"{len(frame)} bytes; an RTU frame has at least 4")
    body, got = frame[:-2], frame[-2:]
    if crc(body) != got:
        raise FrameError("crc", f"CRC {got.hex().upper()}, computed {crc(body).hex().upper()}")
    slave, function = body[0], body[1]
    if function & 0x80:
        pdu = DecodePDU(False).decode(body[1:]) if len(body) == 3 else None
        if not isinstance(pdu, ExceptionResponse):
            raise FrameError("function", f"exception frame for function {function:02X} is bad")
        return RtuFrame(slave, function & 0x7F, "exception", pdu)
    for is_server, kind in ((False, "response"), (True, "request")):
        decoder = DecodePDU(is_server)
        try:
            cls = decoder.lookupPduClass(frame)
            if cls is None or cls.calculateRtuFrameSize(frame) != len(frame):
                continue
            pdu = decoder.decode(body[1:])
        except (IndexError, ValueError, struct.error, ModbusException):
            continue  # pymodbus refuses it as this kind; try the other, then give up
        if pdu is not None:
            return RtuFrame(slave, function, kind, pdu)
    raise FrameError(
        "function", f"function {function:02X} with {len(frame)} bytes is not a known PDU"
    )


def exception_text(code: int) -> str:
    return EXCEPTION_CODES.get(code, f"exception {code}")


def float32(registers: Sequence[int], word_order: str = "big") -> float:
    """IEEE-754 float from two 16-bit registers; "big" = high word first (Eastron, CHINT)."""
    hi, lo = (registers[0], registers[1]) if word_order == "big" else (registers[1], registers[0])
    return float(struct.unpack(">f", struct.pack(">HH", hi, lo))[0])


def float32_registers(value: float, word_order: str = "big") -> list[int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo] if word_order == "big" else [lo, hi]
