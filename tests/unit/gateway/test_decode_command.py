"""`facility decode` as a field engineer runs it: JSON for a good frame, exit 2 for a bad one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FACILITY = [sys.executable, "-m", "facility.cli", "decode"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FACILITY, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_dlt645_reply_prints_value_and_unit() -> None:
    out = run("dlt645", "68 61 01 00 00 00 00 68 91 07 33 33 36 35 45 58 33 6B 16")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["address"] == "000000000161" and got["data_id"] == "02030000"
    assert got["value"] == pytest.approx(0.2512) and got["unit"] == "kW"


def test_modbus_response_prints_registers() -> None:
    out = run("modbus", "11 03 06 AE 41 56 52 43 40 49 AD")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["slave"] == 17 and got["registers"] == [0xAE41, 0x5652, 0x4340]


@pytest.mark.parametrize(
    ("protocol", "frame", "says"),
    [
        ("dlt645", "68 61 01 00 00 00 00 68 91 07 33 33 36 35 45 58 33 6C 16", "checksum"),
        ("dlt645", "68 37 03 00 92 81 39 68 D1 01 35 5D 16", "no data requested"),
        ("dlt645", "68 61 01", "truncated"),
        ("modbus", "11 03 06 AE 41 56 52 43 40 49 AE", "crc"),
        ("modbus", "11 0G", "not a hex digit"),
    ],
)
def test_corrupt_frame_exits_2_naming_the_fault(protocol: str, frame: str, says: str) -> None:
    out = run(protocol, frame)
    assert out.returncode == 2
    assert says in out.stderr and out.stdout == ""
