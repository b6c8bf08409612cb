"""Modbus register words -> numbers (gateway/decode/modbus_registers.py), every type and word
order a profile can name, against values worked out by hand from their bit patterns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.profiles import ModbusSource
from core.serial import modbus
from core.serial.errors import FrameError
from gateway.decode.modbus_registers import register_count, registers_number


def source(kind: str, word_order: str = "big") -> ModbusSource:
    return ModbusSource.model_validate(
        {"function": "input", "register": 0, "type": kind, "word_order": word_order}
    )


@pytest.mark.parametrize(
    ("kind", "order", "words", "number"),
    [
        ("uint16", "big", [0xFFFF], 65535.0),
        ("int16", "big", [0xFFFF], -1.0),
        ("int16", "big", [0x8000], -32768.0),
        ("int16", "big", [0x7FFF], 32767.0),
        ("uint32", "big", [0x0001, 0xE240], 123456.0),
        ("uint32", "little", [0xE240, 0x0001], 123456.0),
        ("int32", "big", [0xFFFE, 0x33AB], -117845.0),
        ("int32", "little", [0x33AB, 0xFFFE], -117845.0),
        ("int32", "big", [0x8000, 0x0000], -2147483648.0),
        ("float32", "big", [0x4366, 0x3334], 230.2),  # CHINT DDSU666, as Tasmota quotes it
        ("float32", "little", [0x3334, 0x4366], 230.2),
        ("float32", "big", [0xBFC0, 0x0000], -1.5),
    ],
)
def test_words_decode_by_type_and_word_order(
    kind: str, order: str, words: list[int], number: float
) -> None:
    src = source(kind, order)
    assert register_count(src) == len(words)
    assert registers_number(words, src) == number


def test_a_float32_nan_is_passed_on_for_the_profile_to_refuse() -> None:
    value = registers_number([0x7FC0, 0x0000], source("float32"))
    assert value != value  # NaN: gateway/decode/values.py refuses it as not_finite


@pytest.mark.parametrize(
    ("kind", "words"),
    [("int16", []), ("int16", [1, 2]), ("int32", [1]), ("float32", [1, 2, 3]), ("uint16", [-1])],
)
def test_the_wrong_number_of_words_is_a_frame_error(kind: str, words: list[int]) -> None:
    with pytest.raises(FrameError) as exc:
        registers_number(words, source(kind))
    assert exc.value.reason == "length"


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_int32_round_trips_through_the_words_a_meter_sends(n: int, order: str) -> None:
    hi, lo = (n >> 16) & 0xFFFF, n & 0xFFFF
    words = [hi, lo] if order == "big" else [lo, hi]
    assert registers_number(words, source("int32", order)) == n


@given(
    st.floats(width=32, allow_nan=False, allow_infinity=False), st.sampled_from(["big", "little"])
)
def test_float32_round_trips_to_seven_digits(value: float, order: str) -> None:
    words = modbus.float32_registers(value, order)
    assert registers_number(words, source("float32", order)) == float(f"{value:.7g}")
