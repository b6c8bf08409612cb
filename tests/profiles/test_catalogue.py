"""Every shipped profile loads, is consistent, and decodes its own examples as stated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.profiles import DEFAULT_PROFILES_DIR, MqttTransport, load_profiles
from core.ruleset import effective_rules, load_class_rules
from core.site import load_site
from core.yamlfile import ConfigError, ConfigErrors
from gateway.decode.json_payload import JsonDecoder

PROFILES = load_profiles()
CLASS_RULES = load_class_rules()
NOW = datetime(2025, 11, 24, 16, 0, tzinfo=UTC)  # examples carry ts 1764000000000


def test_every_profile_file_is_named_after_its_id() -> None:
    files = sorted(p.stem for p in DEFAULT_PROFILES_DIR.glob("*.yaml"))
    assert files == sorted(PROFILES)
    assert len(files) >= 5


def test_every_device_class_with_profiles_has_class_rules() -> None:
    for profile in PROFILES.values():
        assert profile.device_class.value in CLASS_RULES, profile.profile


def test_class_rules_name_metrics_their_profiles_have() -> None:
    for profile in PROFILES.values():
        keys = {m.key for m in profile.metrics}
        for rule in CLASS_RULES[profile.device_class.value].rules:
            metric = getattr(rule, "metric", None)
            assert metric is None or metric in keys, (profile.profile, rule.rule)


EXAMPLES = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name, profile in sorted(PROFILES.items())
    if isinstance(profile.transport, MqttTransport)
    for i in range(len(profile.examples))
]


@pytest.mark.parametrize(("name", "index"), EXAMPLES)
def test_profile_example_decodes_as_stated(name: str, index: int) -> None:
    profile = PROFILES[name]
    example = profile.examples[index]
    out = JsonDecoder().decode(
        device_id="dev-1",
        profile=profile,
        topic="t",
        payload=example.payload.encode(),
        received_at=NOW,
    )
    if example.reject:
        assert [r.reason.value for r in out.rejections] == [example.reject]
    else:
        assert out.rejections == []
    if example.expect is not None:
        got = {r.metric: r.value for r in out.readings}
        assert got == pytest.approx(example.expect)
    assert [e.kind for e in out.events] == list(example.events)


def test_demo_site_loads_with_all_contract_ids() -> None:
    site = load_site(DEFAULT_PROFILES_DIR.parent / "sites" / "demo" / "site.yaml", PROFILES)
    ids = {d.id for d in site.devices}
    expected = (
        {f"canteen-fridge-0{i}" for i in range(1, 5)}
        | {"canteen-freezer-01", "canteen-freezer-02", "canteen-sample-01"}
        | {f"dorm-{b}-door-0{i}" for b in "ab" for i in range(1, 5)}
        | {"meter-elec-01", "meter-elec-02", "meter-water-01"}
    )
    assert ids == expected
    for device in site.devices:
        rules = effective_rules(device, PROFILES[device.profile], site, CLASS_RULES)
        assert rules, f"{device.id} has no rules"


def test_bad_profile_error_names_file_line_and_field(tmp_path: Path) -> None:
    good = (DEFAULT_PROFILES_DIR / "cfm-sim-fridge.yaml").read_text()
    bad = good.replace("    valid: {min: -40, max: 60}", "    valid: {min: -40, max: hot}")
    (tmp_path / "cfm-sim-fridge.yaml").write_text(bad)
    (tmp_path / "other.yaml").write_text("profile: other\nvendor: x\n")
    with pytest.raises(ConfigErrors) as info:
        load_profiles(tmp_path)
    text = str(info.value)
    line = next(i for i, s in enumerate(bad.splitlines(), 1) if "max: hot" in s)
    assert f"cfm-sim-fridge.yaml:{line}: metrics.0.valid.max" in text
    assert "other.yaml:" in text and "model: Field required" in text


def test_unknown_preset_and_rule_metric_are_refused(tmp_path: Path) -> None:
    good = (DEFAULT_PROFILES_DIR / "cfm-sim-fridge.yaml").read_text()
    path = tmp_path / "cfm-sim-fridge.yaml"
    path.write_text(good.replace("preset: temperature_c", "preset: temperature_k"))
    with pytest.raises(ConfigErrors, match="unknown preset 'temperature_k'"):
        load_profiles(tmp_path)


def test_site_with_unknown_profile_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text(
        "site: s\nname: S\nbuildings: [{id: b, name: B}]\n"
        "devices: [{id: d1, profile: nope, building: b, location: here}]\n"
    )
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        load_site(site, PROFILES)
