"""`facility profiles check`: what a field engineer runs after editing a profile. A broken
file is named with its line and field, every broken file in one run, and the exit is 1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from core.profiles import DEFAULT_PROFILES_DIR

REPO = DEFAULT_PROFILES_DIR.parent


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facility.cli", "profiles", "check", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def line_of(path: Path, needle: str) -> int:
    return next(i for i, s in enumerate(path.read_text().splitlines(), 1) if needle in s)


def test_shipped_profiles_pass() -> None:
    done = check()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")


def test_broken_profiles_are_named_by_file_line_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    shutil.copytree(DEFAULT_PROFILES_DIR, folder)
    access = folder / "access-controller-json.yaml"
    access.write_text(
        access.read_text()
        .replace("    map: {open: true, closed: false}", "    map: {open: true, closed: nope}")
        .replace("    pseudonymize: [card]", "    pseudonymize: [card_no]")
    )
    tasmota = folder / "tasmota-ds18b20.yaml"
    tasmota.write_text(
        tasmota.read_text().replace("naive_timestamp: receive_time", "naive_timestamp: guess")
    )

    done = check(str(folder))

    assert done.returncode == 1
    err = done.stderr
    metric = line_of(access, "- key: door_open")
    assert (
        f"{access}:{metric}: metrics.0: Value error, map: 'closed' -> 'nope' is not a bool" in err
    )
    event = line_of(access, "- from_field:")
    assert f"{access}:{event}: events.0: Value error, pseudonymize names attrs" in err
    policy = line_of(tasmota, "naive_timestamp: guess")
    assert f"{tasmota}:{policy}: transport.mqtt.naive_timestamp: Input should be" in err
    assert done.stdout == ""
