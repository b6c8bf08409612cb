"""A device class is data (issue 14): a new class and profile written into a copy of the
catalogue (a dorm-corridor noise sensor) need no code change. `facility profiles check`
passes, a demo-like site loads it, the profile's example decodes, and its rule (judged
after curfew only) raises an alert routed to the role the class names, through a real
Apprise json:// channel. Names that are not in the catalogue are refused with file, line
and field.

The class notifies `night_watch`, a role no code knows: the test's site file declares it
(acting as security, seeing the noise sensors), so routing follows from data alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient

from core.clock import ManualClock
from core.profiles import DEFAULT_PROFILES_DIR, load_profiles
from core.site import DEFAULT_SITE_FILE
from gateway.decode.json_payload import JsonDecoder
from server.app import create_app
from server.settings import ServerSettings
from tests.harness import Webhook
from tests.helpers import batch, reading, token, wait_until

pytestmark = pytest.mark.integration
TZ = ZoneInfo("Asia/Shanghai")
NIGHT = datetime(2026, 11, 24, 23, 30, tzinfo=TZ)

NOISE_CLASS = """\
device_class: noise_sensor
label: {zh-CN: 噪声传感器, en: Noise sensor}
metrics: [noise]
notify: [night_watch]
source: own, for the test
rules:
  - rule: noise_after_curfew
    kind: threshold
    metric: noise
    above: 55.0
    for: 5m
    clear_below: 45.0
    when: curfew
    severity: warning
"""

NOISE_PROFILE = """\
profile: noise-meter-json
vendor: Test
model: NM-1
device_class: noise_sensor
transport:
  kind: mqtt
  topic: "campus/{site}/noise/{address}"
  payload: json
metrics:
  - key: noise
    type: float
    unit: dB(A)
    source: laeq
    valid: {min: 0, max: 140}
    required: true
examples:
  - payload: '{"laeq": 61.5}'
    expect: {noise: 61.5}
"""


def catalogue(tmp: Path, profile: str = NOISE_PROFILE) -> Path:
    folder = tmp / "profiles"
    shutil.copytree(DEFAULT_PROFILES_DIR, folder, ignore=shutil.ignore_patterns("*.py"))
    (folder / "classes" / "noise_sensor.yaml").write_text(NOISE_CLASS)
    (folder / "noise-meter-json.yaml").write_text(profile)
    return folder


def site(tmp: Path, hook: Webhook, device_class: str | None = None) -> Path:
    doc = yaml.safe_load(DEFAULT_SITE_FILE.read_text())
    device: dict[str, Any] = {
        "id": "dorm-a-noise-01",
        "profile": "noise-meter-json",
        "building": "dorm-a",
        "name": "A栋三层走廊噪声",
        "location": "宿舍A栋三层走廊",
        "gateway": "gw-canteen",
    }
    if device_class is not None:
        device["device_class"] = device_class
    doc["devices"].append(device)
    url = f"json://127.0.0.1:{hook.port}"
    doc["roles"] = {
        "night_watch": {
            "acts_as": "security",
            "label": {"zh-CN": "夜间值班", "en": "Night watch"},
            "scope": {"device_classes": ["noise_sensor"]},
        }
    }
    doc["notifications"] = {
        "channels": [
            {"id": "security", "role": "security", "url": f"{url}/sec"},
            {"id": "night-watch", "role": "night_watch", "url": f"{url}/watch"},
            {"id": "dorm-b", "role": "dorm_manager", "buildings": ["dorm-b"], "url": f"{url}/b"},
        ]
    }
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def profiles_check(folder: Path, site_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "facility.cli",
            "profiles",
            "check",
            str(folder),
            "--site",
            str(site_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_new_class_and_profile_are_yaml_only(tmp_path: Path, webhook: Webhook) -> None:
    folder, site_file = catalogue(tmp_path), site(tmp_path, webhook)
    done = profiles_check(folder, site_file)
    assert done.returncode == 0, done.stderr
    profile = load_profiles(folder)["noise-meter-json"]
    out = JsonDecoder().decode(
        device_id="dorm-a-noise-01",
        profile=profile,
        topic="campus/demo/noise/dorm-a-noise-01",
        payload=b'{"laeq": 61.5}',
        received_at=NIGHT,
    )
    assert [(r.metric, r.value, r.unit) for r in out.readings] == [("noise", 61.5, "dB(A)")]

    clock = ManualClock(NIGHT - timedelta(hours=2))
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "server",
        broker="mqtt://127.0.0.1:1",
        site_file=site_file,
        profiles_dir=folder,
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        ctx: Any = client.app.state.ctx  # type: ignore[attr-defined]
        for start in (NIGHT - timedelta(hours=2), NIGHT):  # 21:30 (before curfew), 23:30
            for minute in range(0, 8):
                t = start + timedelta(minutes=minute)
                clock.set(t)
                ctx.pipeline.handle_batch(batch([reading("dorm-a-noise-01", "noise", 68.0, t)]))
                ctx.pipeline.tick(t)
        rows = client.get("/api/alerts", headers=token(client, "admin")).json()
        assert [(a["rule"], a["raised_at"][11:16]) for a in rows] == [
            ("noise_after_curfew", "15:35")  # 23:35 in Shanghai, 5 min after the first
        ]
        devices = client.get("/api/devices", headers=token(client, "admin")).json()
        assert next(d for d in devices if d["id"] == "dorm-a-noise-01")["device_class"] == (
            "noise_sensor"
        )
        ctx.notifier.drain()
        wait_until(lambda: webhook.received, 15, "the noise alert at the night watch's channel")
        ctx.notifier.drain()
        # The site's own role hears it; the built-in security role, which the class does not
        # name, and dorm B's manager do not.
        assert webhook.by_path() == {
            "/watch": ["[warning] ALERT: dorm-a-noise-01 noise after curfew"]
        }


def test_names_outside_the_catalogue_are_refused_with_file_line_and_field(
    tmp_path: Path, webhook: Webhook
) -> None:
    folder = catalogue(tmp_path, NOISE_PROFILE.replace("noise_sensor", "noise_sensr"))
    done = profiles_check(folder, site(tmp_path, webhook))
    assert done.returncode == 1
    assert (
        f"{folder / 'noise-meter-json.yaml'}:4: device_class: Value error, unknown device "
        "class 'noise_sensr'" in done.stderr
    )

    folder = catalogue(tmp_path / "second")
    site_file = site(tmp_path, webhook, device_class="freezer")  # a noise meter has no temperature
    done = profiles_check(folder, site_file)
    assert done.returncode == 1
    line = next(
        i for i, s in enumerate(site_file.read_text().splitlines(), 1) if "dorm-a-noise-01" in s
    )
    assert f"{site_file}:" in done.stderr and "a freezer reports ['temperature']" in done.stderr
    assert any(f"{site_file}:{n}: devices." in done.stderr for n in range(line - 8, line + 8))
