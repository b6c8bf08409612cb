"""`facility decode` as a field engineer runs it (the installed command, in a subprocess): JSON
for a good frame, a meter's error answer included; exit 2 and a reason on stderr for a broken
one. Frames are the published ones of tests/unit/core/test_dlt645.py and
test_modbus_frames.py (sources cited there)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.serial import dlt645

# The console script installed next to this interpreter (.venv/bin/facility).
FACILITY = Path(sys.executable).parent / "facility"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FACILITY), "decode", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_dlt645_reply_prints_address_identifier_value_and_unit() -> None:
    out = run("dlt645", "68 61 01 00 00 00 00 68 91 07 33 33 36 35 45 58 33 6B 16")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["address"] == "000000000161" and got["control"] == "91"
    assert got["data_id"] == "02030000" and got["name"] == "active power, total"
    assert got["value"] == pytest.approx(0.2512) and got["unit"] == "kW"


def test_dlt645_reply_after_wake_up_preamble() -> None:
    out = run("dlt645", "FEFEFEFE 68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["value"] == pytest.approx(100.1) and got["unit"] == "V"


def test_dlt645_request_names_the_identifier_asked_for() -> None:
    out = run("dlt645", "68 45 92 66 23 00 10 68 11 04 33 34 34 35 25 16")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["kind"] == "read request" and got["data_id"] == "02010100"
    assert got["direction"] == "master->slave"


def test_modbus_response_prints_registers_and_float_pairs() -> None:
    out = run("modbus", "01 04 04 43 66 33 34 1B 38")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert (got["slave"], got["function"], got["kind"]) == (1, 4, "response")
    assert got["registers"] == [0x4366, 0x3334]
    assert got["float32_high_word_first"] == [230.2]


def test_modbus_request_prints_address_and_count() -> None:
    out = run("modbus", "11 03 00 6B 00 03 76 87")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert (got["slave"], got["kind"], got["address"], got["count"]) == (17, "request", 0x6B, 3)


def test_modbus_exception_reply_is_a_frame_with_its_exception_named() -> None:
    # Slave 1 refusing a read of input registers (function 04) at an address it does not
    # have: the exception reply Modbus references quote for an illegal data address.
    out = run("modbus", "01 84 02 C2 C1")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert (got["slave"], got["function"], got["kind"]) == (1, 4, "exception")
    assert got["exception_code"] == 2 and got["exception"] == "illegal data address"


def test_dlt645_abnormal_reply_is_a_frame_with_its_error_bits_named() -> None:
    # [X]'s error reply: meter 398192000337 answers a read (control D1: slave, abnormal,
    # function 11) with ERR = 02, "no data requested".
    out = run("dlt645", "68 37 03 00 92 81 39 68 D1 01 35 5D 16")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert (got["address"], got["control"], got["kind"]) == ("398192000337", "D1", "error reply")
    assert got["function"] == "read data" and got["direction"] == "slave->master"
    assert got["error_code"] == "02"
    assert got["errors"] == ["no data requested (unknown data identifier)"]


def test_dlt645_reply_for_an_identifier_without_a_layout_is_shown_raw() -> None:
    # A sound reply for 04000401 (the meter's address as data): not ours to decode, still a
    # frame, so it is shown with its value bytes rather than refused.
    frame = dlt645.build("000000000161", dlt645.READ_REPLY, bytes.fromhex("01 04 00 04 61 01"))
    out = run("dlt645", frame.hex())
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert (got["data_id"], got["name"], got["value_hex"]) == ("04000401", "unknown", "61 01")


@pytest.mark.parametrize(
    ("protocol", "frame", "says"),
    [
        ("dlt645", "68 61 01 00 00 00 00 68 91 07 33 33 36 35 45 58 33 6C 16", "checksum"),
        # [X]'s error reply with its checksum off by one, and without its ERR byte.
        ("dlt645", "68 37 03 00 92 81 39 68 D1 01 35 5E 16", "checksum"),
        ("dlt645", "68 37 03 00 92 81 39 68 D1 00 27 16", "abnormal reply with 0 data bytes"),
        # A voltage reply one byte short of its 2 BCD bytes, checksum intact.
        ("dlt645", "68 61 01 00 00 00 00 68 91 05 33 34 34 35 34 CC 16", "expected 2"),
        ("dlt645", "68 61 01", "truncated"),
        ("dlt645", "00 68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16", "noise"),
        ("modbus", "11 03 06 AE 41 56 52 43 40 49 AE", "crc"),
        ("modbus", "01 84 02 C2 C0", "crc"),
        ("modbus", "11 03", "truncated"),
        ("modbus", "11 0G", "not a hex digit"),
        ("modbus", "110", "odd number of hex digits"),
    ],
)
def test_corrupt_frame_exits_2_naming_the_fault(protocol: str, frame: str, says: str) -> None:
    out = run(protocol, frame)
    assert out.returncode == 2
    assert says in out.stderr and out.stdout == ""


def test_unknown_protocol_is_refused() -> None:
    out = run("mbus", "68")
    assert out.returncode == 2 and "invalid choice" in out.stderr
