"""DL/T 645-2007 data items (gateway/decode/dlt645_items.py): replies published by other
implementations decode to the values their authors quoted; then properties: a damaged reply
is refused, never decoded to a wrong value, and every identifier round-trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.serial import dlt645
from core.serial.errors import FrameError
from gateway.decode.dlt645_items import decode_read_reply, read_item

# Sources ([X], [R], [G]) are cited in full in tests/unit/core/test_dlt645.py:
#  [X] LoverITer/energy-management-sys_communication-sub-sys, Test.java and DLT645FrameUtils.java;
#  [R] ronje/rhilex, test/dlt645-2007-codec_test.go; [G] cqqqq/go645, protocol_test.go.
PUBLISHED_REPLIES = [
    # (frame, address, data identifier, value)
    (
        "68 61 01 00 00 00 00 68 91 08 33 33 34 33 59 33 33 33 8A 16",
        "000000000161",
        0x00010000,
        0.26,
    ),
    ("68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16", "000000000161", 0x02010100, 100.1),
    ("68 61 01 00 00 00 00 68 91 07 33 34 35 35 CC 7C 33 16 16", "000000000161", 0x02020100, 4.999),
    (
        "68 61 01 00 00 00 00 68 91 07 33 33 36 35 45 58 33 6B 16",
        "000000000161",
        0x02030000,
        0.2512,
    ),
    ("68 61 01 00 00 00 00 68 91 06 33 33 39 35 34 38 09 16", "000000000161", 0x02060000, 0.501),
    (
        "68 37 03 00 92 81 39 68 91 08 33 33 34 33 37 33 33 33 8C 16",
        "398192000337",
        0x00010000,
        0.04,
    ),
    (
        "68 37 03 00 92 81 39 68 91 08 33 33 34 33 3A 33 33 33 8F 16",
        "398192000337",
        0x00010000,
        0.07,
    ),
    ("68 45 92 66 23 00 10 68 91 06 33 34 34 35 66 55 62 16", "100023669245", 0x02010100, 223.3),
    (
        "68 14 01 00 31 82 21 68 91 08 33 33 34 33 39 33 33 33 F1 16",
        "218231000114",
        0x00010000,
        0.06,
    ),
]


@pytest.mark.parametrize(("hex_frame", "address", "di", "value"), PUBLISHED_REPLIES)
def test_published_replies_decode_to_their_published_values(
    hex_frame: str, address: str, di: int, value: float
) -> None:
    frame = dlt645.parse(bytes.fromhex(hex_frame))
    item = decode_read_reply(frame, address=address, di=di)
    assert item.value == pytest.approx(value)
    assert (frame.address, item.di) == (address, di)


def test_wake_up_preamble_before_a_published_reply_is_skipped() -> None:
    frame = dlt645.parse(dlt645.WAKE_UP + bytes.fromhex(PUBLISHED_REPLIES[1][0]))
    assert decode_read_reply(frame).value == pytest.approx(100.1)


def test_negative_power_uses_the_sign_bit() -> None:
    raw = dlt645.build_read_reply("000000000001", 0x02030000, -1.2345)
    assert decode_read_reply(dlt645.parse(raw)).value == pytest.approx(-1.2345)


def test_the_published_error_reply_is_refused_as_a_value() -> None:
    frame = dlt645.parse(bytes.fromhex("68 37 03 00 92 81 39 68 D1 01 35 5D 16"))  # [X]
    with pytest.raises(FrameError, match=r"error 02 \(no data requested") as exc:
        decode_read_reply(frame)
    assert exc.value.reason == "error_reply"


@pytest.mark.parametrize(
    ("data", "di", "reason"),
    [
        ("00 01 01", None, "length"),  # not even an identifier
        ("00 01 01 02 01 10", 0x02020100, "wrong_id"),  # voltage, when current was asked
        ("01 04 00 04 00 00", None, "unknown_id"),
        ("00 01 01 02 01", None, "length"),  # voltage takes 2 bytes
        ("00 01 01 02 0A 10", None, "bad_bcd"),
    ],
)
def test_a_data_item_that_cannot_be_read_says_why(data: str, di: int | None, reason: str) -> None:
    with pytest.raises(FrameError) as exc:
        read_item(bytes.fromhex(data), di)
    assert exc.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        decode_read_reply(dlt645.parse(data))
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(dlt645.DATA_IDS)),
    st.integers(min_value=0, max_value=999_999_999_999).map(lambda n: f"{n:012d}"),
    st.data(),
)
def test_round_trip_of_every_identifier(di: int, address: str, data: st.DataObject) -> None:
    spec = dlt645.DATA_IDS[di]
    top = 10 ** (spec.length * 2 - (1 if spec.signed else 0)) - 1
    limit = min(top, 7 * 10 ** (spec.length * 2 - 1)) / 10**spec.decimals
    value = data.draw(st.integers(-int(limit * 10**spec.decimals), int(limit * 10**spec.decimals)))
    value_f = (value if spec.signed else abs(value)) / 10**spec.decimals
    reply = decode_read_reply(
        dlt645.parse(dlt645.build_read_reply(address, di, value_f)), address=address, di=di
    )
    assert reply.value == pytest.approx(value_f)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=19), st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_is_caught(pos: int, new: int) -> None:
    good = bytearray(bytes.fromhex(PUBLISHED_REPLIES[1][0]))
    pos = pos % len(good)
    if good[pos] == new:
        return
    good[pos] = new
    try:
        frame = dlt645.parse(bytes(good))
        reply = decode_read_reply(frame, address="000000000161", di=0x02010100)
    except FrameError:
        return
    # Only a change that keeps checksum and delimiters consistent could pass: there is none
    # for one byte (the checksum covers every byte but itself and the end mark).
    raise AssertionError(f"changed byte {pos} to {new:02X} and still got {reply}")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(dlt645.DATA_IDS)),
    st.integers(min_value=0, max_value=999_999_999_999).map(lambda n: f"{n:012d}"),
    st.booleans(),
    st.data(),
)
def test_any_bit_flip_or_truncation_of_a_reply_is_refused(
    di: int, address: str, wake_up: bool, data: st.DataObject
) -> None:
    spec = dlt645.DATA_IDS[di]
    value = data.draw(st.integers(0, 10 ** (spec.length * 2 - 1) - 1)) / 10**spec.decimals
    good = dlt645.build(
        address,
        dlt645.READ_REPLY,
        di.to_bytes(4, "little")
        + dlt645.bcd_encode(value, spec.length, spec.decimals, spec.signed),
        wake_up=wake_up,
    )
    assert decode_read_reply(dlt645.parse(good)).value == pytest.approx(value)
    # One flipped bit anywhere (preamble, delimiters, address, length, data, checksum) and any
    # cut short frame: a FrameError, never a wrong value.
    bit = data.draw(st.integers(min_value=0, max_value=len(good) * 8 - 1))
    flipped = bytearray(good)
    flipped[bit // 8] ^= 1 << (bit % 8)
    cut = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
    for damaged in (bytes(flipped), good[:cut]):
        with pytest.raises(FrameError):
            decode_read_reply(dlt645.parse(damaged), address=address, di=di)
