"""Modbus RTU frames through pymodbus's framer: published frames decode to their published
meaning; damaged ones are refused; random bytes never crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadInputRegistersResponse

from core.serial import modbus
from core.serial.errors import FrameError

# The example of function 03 in the Modbus Application Protocol specification (PDU), framed
# for RTU as simplymodbus.ca and many test suites quote it: read holding registers 40108-40110
# of slave 17, and the response 0xAE41, 0x5652, 0x4340.
SPEC_REQUEST = "11 03 00 6B 00 03 76 87"
SPEC_RESPONSE = "11 03 06 AE 41 56 52 43 40 49 AD"
# Slave 1, read input registers 30001-30002 (function 04 from 0x0000): the SDM120's voltage,
# per Eastron's register table (0x0000 V, 0x0006 A, 0x000C W, 0x0046 Hz, 0x0048 import kWh).
SDM120_VOLTAGE_REQUEST = "01 04 00 00 00 02 71 CB"
# arendst/Tasmota, tasmota/tasmota_xnrg_energy/xnrg_11_ddsu666.ino: a CHINT DDSU666 reply
# quoted in a comment as "01 04 04 43 66 33 34 1B 38 = 230.2 Volt" (float32, high word first).
DDSU666_VOLTAGE_REPLY = "01 04 04 43 66 33 34 1B 38"


def test_spec_request() -> None:
    frame = modbus.parse(bytes.fromhex(SPEC_REQUEST))
    assert (frame.slave, frame.function, frame.kind) == (17, 3, "request")
    assert (frame.pdu.address, frame.pdu.count) == (0x6B, 3)


def test_spec_response() -> None:
    frame = modbus.parse(bytes.fromhex(SPEC_RESPONSE))
    assert (frame.slave, frame.function, frame.kind) == (17, 3, "response")
    assert list(frame.pdu.registers) == [0xAE41, 0x5652, 0x4340]


def test_sdm120_voltage_request() -> None:
    frame = modbus.parse(bytes.fromhex(SDM120_VOLTAGE_REQUEST))
    assert (frame.slave, frame.function, frame.pdu.address, frame.pdu.count) == (1, 4, 0, 2)


def test_published_ddsu666_reply_decodes_to_its_published_voltage() -> None:
    frame = modbus.parse(bytes.fromhex(DDSU666_VOLTAGE_REPLY))
    assert (frame.slave, frame.function, frame.kind) == (1, 4, "response")
    assert list(frame.pdu.registers) == [0x4366, 0x3334]
    assert modbus.float32(list(frame.pdu.registers)) == pytest.approx(230.2, abs=1e-4)


def test_float32_high_word_first() -> None:
    # 230.0 V is 0x43660000 in IEEE-754; Eastron sends the high word first.
    assert modbus.float32([0x4366, 0x0000]) == 230.0
    assert modbus.float32_registers(230.0) == [0x4366, 0x0000]
    assert modbus.float32([0x0000, 0x4366], word_order="little") == 230.0


def test_exception_response() -> None:
    body = bytes([0x01, 0x84, 0x02])
    frame = modbus.parse(body + modbus.crc(body))
    assert frame.kind == "exception" and frame.pdu.exception_code == 2
    assert modbus.exception_text(2) == "illegal data address"


def test_bad_crc_is_refused() -> None:
    raw = bytearray(bytes.fromhex(SPEC_RESPONSE))
    raw[-1] ^= 0xFF
    with pytest.raises(FrameError) as exc:
        modbus.parse(bytes(raw))
    assert exc.value.reason == "crc"


def test_truncated_is_refused() -> None:
    with pytest.raises(FrameError) as exc:
        modbus.parse(bytes.fromhex("11 03"))
    assert exc.value.reason == "truncated"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        modbus.parse(data)
    except FrameError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=2, max_size=40))
def test_random_body_with_valid_crc_never_crashes(body: bytes) -> None:
    try:
        modbus.parse(body + modbus.crc(body))
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=247),
    st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=1, max_size=20),
    st.data(),
)
def test_any_bit_flip_or_truncation_of_a_reply_is_refused(
    slave: int, registers: list[int], data: st.DataObject
) -> None:
    # A reply as a meter would send it, built by pymodbus: CRC-16 catches every single-bit
    # error, and a cut frame never passes as a whole one.
    pdu = ReadInputRegistersResponse(registers=registers, dev_id=slave)
    good = bytes(FramerRTU(DecodePDU(True)).buildFrame(pdu))
    assert list(modbus.parse(good).pdu.registers) == registers
    bit = data.draw(st.integers(min_value=0, max_value=len(good) * 8 - 1))
    flipped = bytearray(good)
    flipped[bit // 8] ^= 1 << (bit % 8)
    cut = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
    for damaged in (bytes(flipped), good[:cut]):
        with pytest.raises(FrameError):
            modbus.parse(damaged)
