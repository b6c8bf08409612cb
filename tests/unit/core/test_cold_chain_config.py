"""Cold-chain configuration: class-file compliance limits, the site's overrides and meals,
each mistake refused naming the field (core/site.py, core/ruleset.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.profiles import load_profiles
from core.ruleset import load_class_rules
from core.site import DEFAULT_SITE_FILE, load_site
from core.yamlfile import ConfigError
from server.coldchain.devices import cold_devices


def site_with(tmp_path: Path, cold_chain: dict[str, Any]) -> Path:
    doc = yaml.safe_load(DEFAULT_SITE_FILE.read_text())
    doc["cold_chain"] = cold_chain
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def test_class_files_carry_the_regulation_limits() -> None:
    classes = load_class_rules()
    chilled, frozen, sample = (
        classes[c].compliance for c in ("chilled_fridge", "freezer", "sample_fridge")
    )
    assert chilled is not None and (chilled.min, chilled.max) == (0.0, 8.0)
    assert frozen is not None and (frozen.min, frozen.max) == (None, -12.0)
    assert sample is not None and (sample.min, sample.max) == (0.0, 8.0)
    assert all(c.compliance is None for k, c in classes.items() if k == "dorm_door")


def test_a_device_override_wins_over_its_class(tmp_path: Path) -> None:
    profiles = load_profiles()
    site = load_site(
        site_with(
            tmp_path,
            {
                "compliance": [
                    {"device": "canteen-fridge-02", "max": 4.0},
                    {"device_class": "chilled_fridge", "max": 5.0},
                ]
            },
        ),
        profiles,
    )
    devices = cold_devices(site, profiles, load_class_rules())
    assert devices["canteen-fridge-01"].limits.max == 5.0
    assert devices["canteen-fridge-02"].limits.max == 4.0
    assert devices["canteen-fridge-02"].limits.min == 0.0
    assert devices["canteen-sample-01"].name == "留样柜"
    assert "dorm-a-door-01" not in devices


@pytest.mark.parametrize(
    ("cold_chain", "message"),
    [
        ({"compliance": [{"device": "fridge-x", "max": 5}]}, "unknown device 'fridge-x'"),
        (
            {"compliance": [{"device_class": "freezer", "device": "canteen-freezer-01"}]},
            "exactly one",
        ),
        ({"meals": [{"id": "lunch", "name": "午餐", "ends": "13:00"}] * 2}, "appears twice"),
        (
            {"meals": [{"id": "lunch", "name": "午餐", "ends": "13:00", "buildings": ["x"]}]},
            "unknown building 'x'",
        ),
        ({"keep_readings": "365d"}, "at least 2 years"),
        ({"samples": {"min_weight_g": 0}}, "min_weight_g"),
    ],
    ids=["device", "target", "meal twice", "meal building", "retention", "weight"],
)
def test_a_wrong_cold_chain_section_is_refused_by_name(
    tmp_path: Path, cold_chain: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_site(site_with(tmp_path, cold_chain), load_profiles())
