"""DL/T 645-2007 framing against frames published by other implementations (their decoded
values quoted beside them), then properties: nothing malformed gets through or crashes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.serial import dlt645
from core.serial.errors import FrameError

# Published frames and the values their authors decoded from them. Sources: public DL/T 645
# tools and tests on GitHub (a protocol analyser's sample log for meter 000000000161, a Java
# meter-reader's comments for meter 398192000337, a Lua gateway script, the rhilex codec test).
PUBLISHED_REPLIES = [
    # (frame, address, data identifier, value)
    ("68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16", "000000000161", 0x02010100, 100.1),
    ("68 61 01 00 00 00 00 68 91 07 33 34 35 35 CC 7C 33 16 16", "000000000161", 0x02020100, 4.999),
    (
        "68 61 01 00 00 00 00 68 91 07 33 33 36 35 45 58 33 6B 16",
        "000000000161",
        0x02030000,
        0.2512,
    ),
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
        "FE FE FE FE 68 01 01 19 00 00 00 68 91 06 33 34 34 35 77 55 1E 16",
        "000000190101",
        0x02010100,
        224.4,
    ),
    (
        "FE FE FE FE 68 66 00 00 02 30 22 68 91 08 33 33 33 33 B4 54 33 33 5D 16",
        "223002000066",
        0x00000000,
        21.81,
    ),
]

PUBLISHED_REQUESTS = [
    # (frame, address, control, data)  -- read-address broadcast, read forward energy
    ("68 AA AA AA AA AA AA 68 13 00 DF 16", "AAAAAAAAAAAA", 0x13, b""),
    ("68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16", "000000000001", 0x11, bytes([0, 0, 1, 0])),
    (
        "FE FE FE FE 68 AA AA AA AA AA AA 68 11 04 33 33 34 33 AE 16",
        "AAAAAAAAAAAA",
        0x11,
        bytes([0, 0, 1, 0]),
    ),
]


@pytest.mark.parametrize(("hex_frame", "address", "di", "value"), PUBLISHED_REPLIES)
def test_published_replies_decode_to_their_published_values(
    hex_frame: str, address: str, di: int, value: float
) -> None:
    reply = dlt645.decode_read_reply(dlt645.parse(bytes.fromhex(hex_frame)), address=address, di=di)
    assert reply.value == pytest.approx(value)
    assert reply.address == address


@pytest.mark.parametrize(("hex_frame", "address", "control", "data"), PUBLISHED_REQUESTS)
def test_published_requests_parse(hex_frame: str, address: str, control: int, data: bytes) -> None:
    frame = dlt645.parse(bytes.fromhex(hex_frame))
    assert (frame.address, frame.control, frame.data) == (address, control, data)


def test_our_read_request_is_byte_for_byte_the_published_one() -> None:
    expected = "FE FE FE FE 68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16"
    assert dlt645.build_read("000000000001", 0x00010000).hex(" ").upper() == expected


def test_our_reply_is_byte_for_byte_the_published_one() -> None:
    built = dlt645.build_read_reply("000000000161", 0x02020100, 4.999)
    assert built.hex(" ").upper() == "FE FE FE FE " + PUBLISHED_REPLIES[1][0]


def test_published_error_reply_names_the_meters_reason() -> None:
    frame = dlt645.parse(bytes.fromhex("68 37 03 00 92 81 39 68 D1 01 35 5D 16"))
    with pytest.raises(FrameError, match=r"error 02 \(no data requested") as exc:
        dlt645.decode_read_reply(frame)
    assert exc.value.reason == "error_reply"


def test_negative_power_uses_the_sign_bit() -> None:
    raw = dlt645.build_read_reply("000000000001", 0x02030000, -1.2345)
    assert dlt645.decode_read_reply(dlt645.parse(raw)).value == pytest.approx(-1.2345)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:-3] + bytes([b[-3] ^ 0x01]) + b[-2:], "checksum"),
        (lambda b: b[:-1], "truncated"),
        (lambda b: b[:-1] + b"\x17", "delimiter"),
        (lambda b: b"\x00" + b, "noise"),
        (lambda b: b + b"\x16", "length"),
    ],
)
def test_damaged_frames_are_refused_with_a_reason(mutate: object, reason: str) -> None:
    good = bytes.fromhex(PUBLISHED_REPLIES[0][0])
    with pytest.raises(FrameError) as exc:
        dlt645.parse(mutate(good))  # type: ignore[operator]
    assert exc.value.reason == reason


def test_reply_from_another_meter_is_refused() -> None:
    frame = dlt645.parse(bytes.fromhex(PUBLISHED_REPLIES[0][0]))
    with pytest.raises(FrameError) as exc:
        dlt645.decode_read_reply(frame, address="000000000001")
    assert exc.value.reason == "wrong_address"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        frame = dlt645.parse(data)
        dlt645.decode_read_reply(frame)
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
    reply = dlt645.decode_read_reply(
        dlt645.parse(dlt645.build_read_reply(address, di, value_f)), address=address, di=di
    )
    assert reply.value == pytest.approx(value_f)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=19), st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_is_caught(pos: int, new: int) -> None:
    good = bytearray(bytes.fromhex(PUBLISHED_REPLIES[0][0]))
    pos = pos % len(good)
    if good[pos] == new:
        return
    good[pos] = new
    try:
        frame = dlt645.parse(bytes(good))
        reply = dlt645.decode_read_reply(frame, address="000000000161", di=0x02010100)
    except FrameError:
        return
    # Only a change that keeps checksum and delimiters consistent could pass: there is none
    # for one byte (the checksum covers every byte but itself and the end mark).
    raise AssertionError(f"changed byte {pos} to {new:02X} and still got {reply}")
