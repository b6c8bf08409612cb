"""Modbus RTU frames through pymodbus's framer: published frames decode to their published
meaning; damaged ones are refused; random bytes never crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.serial import modbus
from core.serial.errors import FrameError

# The Modbus over serial line specification's example (Modicon/Modbus.org, also on
# simplymodbus.ca): read holding registers 40108-40110 of slave 17, and its response.
SPEC_REQUEST = "11 03 00 6B 00 03 76 87"
SPEC_RESPONSE = "11 03 06 AE 41 56 52 43 40 49 AD"
# Eastron SDM120 protocol sheet: read the voltage (input registers 30001-30002) of slave 1.
SDM120_VOLTAGE_REQUEST = "01 04 00 00 00 02 71 CB"


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
