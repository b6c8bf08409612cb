"""`facility decode` as a field engineer runs it (the installed command, in a subprocess): JSON
for a good frame, exit 2 and a reason on stderr for a bad one. Frames are the published ones
of tests/unit/core/test_dlt645.py and test_modbus_frames.py (sources cited there)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_modbus_exception_reply_is_named() -> None:
    out = run("modbus", "01 84 02 C2 C1")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["kind"] == "exception" and got["exception"] == "illegal data address"


@pytest.mark.parametrize(
    ("protocol", "frame", "says"),
    [
        ("dlt645", "68 61 01 00 00 00 00 68 91 07 33 33 36 35 45 58 33 6C 16", "checksum"),
        ("dlt645", "68 37 03 00 92 81 39 68 D1 01 35 5D 16", "error 02 (no data requested"),
        ("dlt645", "68 61 01", "truncated"),
        ("dlt645", "00 68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16", "noise"),
        ("modbus", "11 03 06 AE 41 56 52 43 40 49 AE", "crc"),
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
