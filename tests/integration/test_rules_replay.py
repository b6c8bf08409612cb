"""A recorded day of readings replayed through the real ingest pipeline and rule kinds gives
exactly the expected alerts, whether it arrives live (in event-time order, with the offline
tick running on event time) or in one burst (as after a long gateway outage).

The expected list in tests/fixtures/replay/expected-alerts.json was worked out by hand from
the incidents described in make_recorded_day.py and the production rule defaults in
device_profiles/classes/ (delay, clear level, clear delay), not by running the code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.profiles import DEFAULT_PROFILES_DIR
from server.rules.replay import ReplayError, read_records, replay
from tests.helpers import production_site

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "replay"
RECORDED_DAY = FIXTURES / "recorded-day.jsonl"


def _expected() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((FIXTURES / "expected-alerts.json").read_text())
    return rows


def _comparable(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("device_id", "rule", "severity", "raised_at", "resolved_at")
    return [{k: a[k] for k in keys} for a in alerts]


@pytest.mark.parametrize("burst", [False, True], ids=["live", "burst"])
def test_recorded_day_gives_exactly_the_expected_alerts(tmp_path: Path, burst: bool) -> None:
    alerts = replay(
        read_records(RECORDED_DAY),
        site_file=production_site(tmp_path),
        profiles_dir=DEFAULT_PROFILES_DIR,
        burst=burst,
    )
    assert _comparable([a.as_dict() for a in alerts]) == _expected()


def test_rules_test_command_prints_the_alerts_as_json(tmp_path: Path) -> None:
    site = production_site(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "facility.cli",
            "rules",
            "test",
            "--replay",
            str(RECORDED_DAY),
            "--site",
            str(site),
            "--burst",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert _comparable(json.loads(proc.stdout)) == _expected()


def test_rules_test_command_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"device": "canteen-fridge-01", "at": "2026-03-10T00:00:00+08:00", '
        '"metric": "temperature", "value": 3.1}\n'
        '{"device": "canteen-fridge-01", "at": "yesterday", "metric": "temperature"}\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "facility.cli", "rules", "test", "--replay", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{bad}:2" in proc.stderr


def test_a_reading_without_time_zone_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "naive.jsonl"
    f.write_text('{"device": "d", "at": "2026-03-10T00:00:00", "metric": "m", "value": 1}\n')
    with pytest.raises(ReplayError, match="time zone"):
        read_records(f)
