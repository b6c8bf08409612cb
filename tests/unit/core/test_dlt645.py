"""DL/T 645-2007 framing against frames published by other implementations (their decoded
values quoted beside them), then properties: nothing malformed gets through or crashes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.serial import dlt645
from core.serial.errors import FrameError

# Published frames and the values their authors decoded from them, quoted beside them:
#  [X] LoverITer/energy-management-sys_communication-sub-sys (a Java DL/T 645 reader),
#      src/main/java/cn/edu/xust/communication/Test.java: a decoded session with meter
#      000000000161 ("A相电压: 100.1 V", "A相电流: 004.999 A", "瞬时总有功功率: 00.2512 kW", ...);
#      util/DLT645FrameUtils.java: meter 398192000337 replies "000000.04 kWh" / "...07";
#      protocol/Dlt645Frame.java: the error reply "68 37 03 00 92 81 39 68 D1 01 35 5D 16" and
#      BROADCAST_FRAME "68 AA AA AA AA AA AA 68 11 04 33 33 33 33 AD 16".
#  [R] ronje/rhilex, test/dlt645-2007-codec_test.go: request and reply of meter 100023669245,
#      data "00 01 01 02 | 33 22" (223.3 V) after removing 33H.
#  [G] cqqqq/go645, protocol_test.go: TestDecode "681401003182216891083333343339333333f116"
#      (a slave read reply, data length 8) and TestSend "68610100000000681104333334331416".
# Replies of [X]'s meter 000000000161: phase A voltage 100.1 V and current 4.999 A. Their
# values are decoded in tests/unit/gateway/test_dlt645_items.py; here they are frames.
VOLTAGE_REPLY = "68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16"
CURRENT_REPLY = "68 61 01 00 00 00 00 68 91 07 33 34 35 35 CC 7C 33 16 16"
ERROR_REPLY = "68 37 03 00 92 81 39 68 D1 01 35 5D 16"  # [X] Dlt645Frame.java

PUBLISHED_REQUESTS = [
    # (frame, address, control, data): [X] and [R] read requests, [X]'s wildcard broadcast
    ("68 61 01 00 00 00 00 68 11 04 33 34 34 35 17 16", "000000000161", 0x11, bytes([0, 1, 1, 2])),
    ("68 45 92 66 23 00 10 68 11 04 33 34 34 35 25 16", "100023669245", 0x11, bytes([0, 1, 1, 2])),
    ("68 AA AA AA AA AA AA 68 11 04 33 33 33 33 AD 16", "AAAAAAAAAAAA", 0x11, bytes(4)),
]


@pytest.mark.parametrize(
    ("hex_frame", "data"),
    [(VOLTAGE_REPLY, "00 01 01 02 01 10"), (CURRENT_REPLY, "00 01 02 02 99 49 00")],
)
def test_published_replies_unpack_to_their_data(hex_frame: str, data: str) -> None:
    frame = dlt645.parse(bytes.fromhex(hex_frame))
    assert (frame.address, frame.control) == ("000000000161", dlt645.READ_REPLY)
    assert frame.data == bytes.fromhex(data)
    dlt645.expect_reply(frame, address="000000000161")  # our reply: nothing raised


@pytest.mark.parametrize(("hex_frame", "address", "control", "data"), PUBLISHED_REQUESTS)
def test_published_requests_parse(hex_frame: str, address: str, control: int, data: bytes) -> None:
    frame = dlt645.parse(bytes.fromhex(hex_frame))
    assert (frame.address, frame.control, frame.data) == (address, control, data)


@pytest.mark.parametrize(
    ("address", "di", "expected"),
    [
        ("000000000161", 0x00010000, "68 61 01 00 00 00 00 68 11 04 33 33 34 33 14 16"),  # [G]
        ("100023669245", 0x02010100, "68 45 92 66 23 00 10 68 11 04 33 34 34 35 25 16"),  # [R]
        ("AAAAAAAAAAAA", 0x00000000, "68 AA AA AA AA AA AA 68 11 04 33 33 33 33 AD 16"),  # [X]
    ],
)
def test_our_read_request_is_byte_for_byte_the_published_one(
    address: str, di: int, expected: str
) -> None:
    built = dlt645.build_read(address, di)
    # The wake-up preamble is optional on the line; the frame after it must match exactly.
    assert built.startswith(dlt645.WAKE_UP)
    assert built[len(dlt645.WAKE_UP) :].hex(" ").upper() == expected


def test_our_reply_is_byte_for_byte_the_published_one() -> None:
    built = dlt645.build_read_reply("000000000161", 0x02020100, 4.999)
    assert built.hex(" ").upper() == "FE FE FE FE " + CURRENT_REPLY


def test_wake_up_preamble_before_a_published_reply_is_skipped() -> None:
    frame = dlt645.parse(dlt645.WAKE_UP + bytes.fromhex(VOLTAGE_REPLY))
    assert frame.data == bytes.fromhex("00 01 01 02 01 10")


def test_published_frame_with_a_wrong_checksum_is_caught() -> None:
    # [X] DLT645FrameUtils.java's comment quotes "... 68 91 06 33 34 34 35 C7 56 B6 16" as
    # 239.4 V, but the bytes sum to DA, not B6: a frame edited by hand. Refused, not decoded.
    with pytest.raises(FrameError, match="checksum B6, computed DA"):
        dlt645.parse(bytes.fromhex("68 37 03 00 92 81 39 68 91 06 33 34 34 35 C7 56 B6 16"))


def test_published_error_reply_names_the_meters_reason() -> None:
    frame = dlt645.parse(bytes.fromhex(ERROR_REPLY))
    error = dlt645.decode_error_reply(frame)
    assert (error.address, error.function, error.code) == ("398192000337", dlt645.READ, 0x02)
    assert error.reasons == ("no data requested (unknown data identifier)",)
    # Where a value was expected, the same answer is a refusal that names the meter's reason.
    with pytest.raises(FrameError, match=r"error 02 \(no data requested") as exc:
        dlt645.expect_reply(frame)
    assert exc.value.reason == "error_reply"


@pytest.mark.parametrize(
    ("code", "reasons"),
    [
        (0x01, ["other error"]),
        (0x06, ["no data requested (unknown data identifier)", "password error / unauthorised"]),
        (0x40, ["tariffs exceed"]),
        (0x80, ["reserved bit 7"]),
        (0x00, ["unspecified"]),
    ],
)
def test_each_error_bit_is_named(code: int, reasons: list[str]) -> None:
    frame = dlt645.parse(dlt645.build_error_reply("000000000001", code))
    assert list(dlt645.decode_error_reply(frame).reasons) == reasons


def test_an_abnormal_reply_without_its_error_byte_is_a_bad_length() -> None:
    frame = dlt645.parse(dlt645.build("000000000001", dlt645.READ_ERROR, b""))
    with pytest.raises(FrameError) as exc:
        dlt645.decode_error_reply(frame)
    assert exc.value.reason == "length"


def test_negative_values_use_the_sign_bit() -> None:
    raw = dlt645.bcd_encode(-1.2345, 3, 4, signed=True)
    assert raw == bytes.fromhex("45 23 81")  # 01.2345 with the top bit of the last byte set
    assert dlt645.bcd_value(raw, 4, signed=True) == pytest.approx(-1.2345)


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
    good = bytes.fromhex(VOLTAGE_REPLY)
    with pytest.raises(FrameError) as exc:
        dlt645.parse(mutate(good))  # type: ignore[operator]
    assert exc.value.reason == reason


def test_reply_from_another_meter_is_refused() -> None:
    frame = dlt645.parse(bytes.fromhex(VOLTAGE_REPLY))
    with pytest.raises(FrameError) as exc:
        dlt645.expect_reply(frame, address="000000000001")
    assert exc.value.reason == "wrong_address"


def test_a_request_is_not_a_reply() -> None:
    frame = dlt645.parse(bytes.fromhex(PUBLISHED_REQUESTS[0][0]))
    with pytest.raises(FrameError, match="is a master request"):
        dlt645.expect_reply(frame)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        frame = dlt645.parse(data)
        dlt645.expect_reply(frame)
    except FrameError:
        pass
