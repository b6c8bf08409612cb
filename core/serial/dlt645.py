"""DL/T 645-2007 framing, written here because no maintained Python library does it.

Frame (shared/DOMAIN.md): optional wake-up ``FE FE FE FE``, ``68``, 6-byte address (BCD,
least significant byte first), ``68``, control code, data length, data (each byte + 33H on
the line), checksum (sum of every byte from the first ``68`` to the last data byte, mod 256),
``16``. Values are BCD, least significant byte first; for signed quantities (current, power)
the top bit of the most significant byte is the sign.

Framing, the identifiers' BCD layouts and the codec live here because gateway and simulator
both need them; what a reply's data item means for a profile's metric is decoded in
gateway/decode/dlt645_items.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.serial.errors import FrameError

START = 0x68
END = 0x16
WAKE_UP = b"\xfe\xfe\xfe\xfe"
OFFSET = 0x33
BROADCAST = "999999999999"

READ = 0x11  # master: read data
READ_REPLY = 0x91  # slave: normal reply to read
READ_ERROR = 0xD1  # slave: error reply to read
READ_ADDRESS = 0x13
READ_ADDRESS_REPLY = 0x93

# Function codes (the control code's low 5 bits), DL/T 645-2007 clause 7.1.
FUNCTIONS = {
    0x08: "broadcast time sync",
    0x11: "read data",
    0x12: "read follow-up data",
    0x13: "read address",
    0x14: "write data",
    0x15: "write address",
    0x16: "freeze",
    0x17: "change baud rate",
    0x18: "change password",
    0x19: "clear maximum demand",
    0x1A: "clear meter",
    0x1B: "clear events",
}

# Error-information byte (ERR) of an abnormal reply, DL/T 645-2007 clause 7.3.3: bit -> meaning.
ERROR_BITS = {
    0x01: "other error",
    0x02: "no data requested (unknown data identifier)",
    0x04: "password error / unauthorised",
    0x08: "communication rate cannot be changed",
    0x10: "annual time zones exceed",
    0x20: "daily time periods exceed",
    0x40: "tariffs exceed",
    0x80: "reserved bit 7",
}


def error_reasons(code: int) -> list[str]:
    """What each set bit of an ERR byte means; ["unspecified"] when none is set."""
    return [m for bit, m in ERROR_BITS.items() if code & bit] or ["unspecified"]


@dataclass(frozen=True, slots=True)
class DataId:
    """One data identifier: its BCD layout and what it measures."""

    di: int  # DI3 DI2 DI1 DI0 as one number, e.g. 0x02010100
    name: str
    unit: str
    length: int  # data bytes
    decimals: int
    signed: bool = False


DATA_IDS: dict[int, DataId] = {
    d.di: d
    for d in (
        DataId(0x00000000, "combined active energy, total", "kWh", 4, 2, signed=True),
        DataId(0x00010000, "forward active energy, total", "kWh", 4, 2),
        DataId(0x00020000, "reverse active energy, total", "kWh", 4, 2),
        DataId(0x02010100, "voltage, phase A", "V", 2, 1),
        DataId(0x02020100, "current, phase A", "A", 3, 3, signed=True),
        DataId(0x02030000, "active power, total", "kW", 3, 4, signed=True),
        DataId(0x02060000, "power factor, total", "", 2, 3, signed=True),
        DataId(0x02800002, "grid frequency", "Hz", 2, 2),
    )
}


@dataclass(frozen=True, slots=True)
class Frame:
    address: str  # 12 digits, as printed on the nameplate
    control: int
    data: bytes  # with the 33H offset removed

    @property
    def from_slave(self) -> bool:
        return bool(self.control & 0x80)

    @property
    def is_error(self) -> bool:
        return bool(self.control & 0x40)

    @property
    def function(self) -> int:
        return self.control & 0x1F


def parse_di(text: str) -> int:
    """``"02010100"`` (DI3..DI0, as written in the standard) -> 0x02010100."""
    if len(text) != 8:
        raise ValueError(f"data identifier {text!r} must be 8 hex digits (DI3 DI2 DI1 DI0)")
    return int(text, 16)


def encode_address(address: str) -> bytes:
    if len(address) != 12 or (not address.isdigit() and address.upper() != "AAAAAAAAAAAA"):
        raise ValueError(f"DL/T 645 address {address!r} must be 12 decimal digits")
    return bytes.fromhex(address)[::-1]


def _decode_address(raw: bytes) -> str:
    return raw[::-1].hex().upper()


def address_from_data(data: bytes) -> str:
    """The meter address carried in the data of a read-address reply (93H)."""
    if len(data) != 6:
        raise FrameError("length", f"address reply with {len(data)} data bytes, expected 6")
    return _decode_address(data)


def checksum(body: bytes) -> int:
    return sum(body) & 0xFF


def build(address: str, control: int, data: bytes = b"", *, wake_up: bool = True) -> bytes:
    """A whole frame; ``data`` without the offset (it is added here)."""
    if len(data) > 200:
        raise ValueError("DL/T 645 data field is at most 200 bytes")
    body = (
        bytes([START])
        + encode_address(address)
        + bytes([START, control, len(data)])
        + bytes((b + OFFSET) & 0xFF for b in data)
    )
    return (WAKE_UP if wake_up else b"") + body + bytes([checksum(body), END])


def build_read(address: str, di: int) -> bytes:
    return build(address, READ, di.to_bytes(4, "little"))


def frame_length(buf: bytes) -> int | None:
    """Bytes of the first frame in ``buf`` (after any wake-up/noise before ``68``), or None
    while it is incomplete. Used by the bus reader to know when a reply has all arrived."""
    start = buf.find(bytes([START]))
    if start < 0 or len(buf) < start + 10:
        return None
    total = start + 12 + buf[start + 9]
    return total if len(buf) >= total else None


def parse(buf: bytes) -> Frame:
    """Check and unpack one frame (leading FE wake-up bytes allowed)."""
    i = 0
    while i < len(buf) and buf[i] == 0xFE:
        i += 1
    raw = buf[i:]
    if not raw:
        raise FrameError("truncated", "no bytes after the wake-up preamble")
    if raw[0] != START:
        raise FrameError("noise", f"frame starts with {raw[0]:02X}, not 68")
    if len(raw) < 12:
        raise FrameError("truncated", f"{len(raw)} bytes, a frame has at least 12")
    if raw[7] != START:
        raise FrameError("delimiter", f"byte 8 is {raw[7]:02X}, the second 68 is missing")
    length = raw[9]
    expected = 12 + length
    if len(raw) < expected:
        raise FrameError("truncated", f"length byte says {length} data bytes; frame is short")
    if len(raw) > expected:
        raise FrameError("length", f"{len(raw) - expected} bytes after the end of the frame")
    body = raw[: 10 + length]
    cs = raw[10 + length]
    if checksum(body) != cs:
        raise FrameError("checksum", f"checksum {cs:02X}, computed {checksum(body):02X}")
    if raw[-1] != END:
        raise FrameError("delimiter", f"last byte is {raw[-1]:02X}, not 16")
    data = bytes((b - OFFSET) & 0xFF for b in raw[10 : 10 + length])
    return Frame(_decode_address(raw[1:7]), raw[8], data)


def bcd_value(data_le: bytes, decimals: int, signed: bool) -> float:
    """BCD, least significant byte first; top bit of the last byte is the sign if signed."""
    digits = bytearray(data_le[::-1])
    negative = False
    if signed and digits and digits[0] & 0x80:
        negative = True
        digits[0] &= 0x7F
    text = digits.hex()
    if not text.isdigit():
        raise FrameError("bad_bcd", f"data {data_le.hex(' ').upper()} is not BCD")
    value: float = int(text) / 10**decimals
    return -value if negative else value


def bcd_encode(value: float, length: int, decimals: int, signed: bool) -> bytes:
    scaled = round(abs(value) * 10**decimals)
    text = f"{scaled:0{length * 2}d}"
    if len(text) > length * 2:
        raise ValueError(f"{value} does not fit {length} BCD bytes")
    raw = bytearray(bytes.fromhex(text))
    if signed and value < 0:
        raw[0] |= 0x80
    return bytes(raw[::-1])


def expect_reply(frame: Frame, *, address: str | None = None, function: int = READ) -> None:
    """Check that `frame` is a slave's normal reply to our request of `function`; FrameError
    names what it is instead (another meter, a request, the meter's error answer)."""
    if address is not None and frame.address != address:
        raise FrameError("wrong_address", f"reply from {frame.address}, asked {address}")
    if not frame.from_slave:
        raise FrameError("function", f"control {frame.control:02X} is a master request")
    if frame.is_error:
        code = frame.data[0] if frame.data else 0
        what = ", ".join(error_reasons(code))
        raise FrameError("error_reply", f"meter {frame.address} answered error {code:02X} ({what})")
    if frame.function != function & 0x1F:
        asked = FUNCTIONS.get(function & 0x1F, f"function {function:02X}")
        raise FrameError("function", f"control {frame.control:02X} is not a {asked} reply")


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """A meter's abnormal reply (control bit 6 set): a well-formed answer saying no."""

    address: str
    function: int
    code: int  # the ERR byte
    reasons: tuple[str, ...]


def decode_error_reply(frame: Frame) -> ErrorReply:
    """The meaning of an abnormal reply; FrameError if it is not one or its data is not the
    one ERR byte the standard gives it."""
    if not (frame.from_slave and frame.is_error):
        raise FrameError("function", f"control {frame.control:02X} is not an abnormal reply")
    if len(frame.data) != 1:
        raise FrameError(
            "length", f"abnormal reply with {len(frame.data)} data bytes; its ERR byte is 1"
        )
    code = frame.data[0]
    return ErrorReply(frame.address, frame.function, code, tuple(error_reasons(code)))


def build_read_reply(address: str, di: int, value: float) -> bytes:
    spec = DATA_IDS[di]
    data = di.to_bytes(4, "little") + bcd_encode(value, spec.length, spec.decimals, spec.signed)
    return build(address, READ_REPLY, data)


def build_error_reply(address: str, code: int = 0x02) -> bytes:
    return build(address, READ_ERROR, bytes([code]))
