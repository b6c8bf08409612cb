"""Every shipped profile loads, is consistent, and decodes its own examples as stated: MQTT
payloads through the JSON decoder, serial answers (Modbus register words, DL/T 645 data
fields) through the same decode functions the bus master calls between its polls."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.profiles import DEFAULT_PROFILES_DIR, MqttTransport, SerialTransport, load_profiles
from core.readings import Value
from core.ruleset import effective_rules, load_class_rules
from core.serial.errors import FrameError
from core.site import load_site
from core.yamlfile import ConfigError, ConfigErrors
from gateway.decode.json_payload import JsonDecoder
from gateway.decode.serial import SerialAnswer, metric_value, reject_reason
from gateway.decode.values import ValueRejected

PROFILES = load_profiles()
CLASS_RULES = load_class_rules()
NOW = datetime(2025, 11, 24, 16, 0, tzinfo=UTC)  # examples carry ts 1764000000000


def test_every_profile_file_is_named_after_its_id() -> None:
    files = sorted(p.stem for p in DEFAULT_PROFILES_DIR.glob("*.yaml"))
    assert files == sorted(PROFILES)
    assert len(files) >= 5


def test_every_device_class_with_profiles_has_class_rules() -> None:
    for profile in PROFILES.values():
        assert profile.device_class in CLASS_RULES, profile.profile


def test_class_rules_name_metrics_their_profiles_have() -> None:
    """Every metric a class rule watches is one each profile of the class reports, unless
    the class lists it as reported by some models only."""
    for profile in PROFILES.values():
        keys = {m.key for m in profile.metrics}
        cls = CLASS_RULES[profile.device_class]
        for rule in cls.rules:
            metric = getattr(rule, "metric", None)
            assert metric is None or metric in keys or metric in cls.optional_metrics, (
                profile.profile,
                rule.rule,
            )


def examples_of(transport: type[MqttTransport | SerialTransport]) -> list[Any]:
    """(profile, example index) of every shipped example of one kind of transport."""
    return [
        pytest.param(name, i, id=f"{name}-{i}")
        for name, profile in sorted(PROFILES.items())
        if isinstance(profile.transport, transport)
        for i in range(len(profile.examples))
    ]


@pytest.mark.parametrize(("name", "index"), examples_of(MqttTransport))
def test_profile_example_decodes_as_stated(name: str, index: int) -> None:
    profile = PROFILES[name]
    example = profile.examples[index]
    assert example.payload is not None  # an MQTT profile's examples are payloads
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


@pytest.mark.parametrize(("name", "index"), examples_of(SerialTransport))
def test_serial_profile_example_decodes_as_stated(name: str, index: int) -> None:
    profile = PROFILES[name]
    example = profile.examples[index]
    answers: dict[str, SerialAnswer] = (
        dict(example.registers)
        if example.registers is not None
        else {key: bytes.fromhex(text) for key, text in (example.data or {}).items()}
    )
    got: dict[str, Value] = {}
    reasons = []
    for key, answer in answers.items():
        spec = profile.metric(key)
        assert spec is not None
        try:
            got[key] = metric_value(spec, answer)
        except (FrameError, ValueRejected) as exc:
            reasons.append(reject_reason(exc))
    assert reasons == ([example.reject] if example.reject else [])
    if example.expect is not None:
        assert got == pytest.approx(example.expect)


@pytest.mark.parametrize(
    "name",
    [n for n, p in sorted(PROFILES.items()) if isinstance(p.transport, SerialTransport)],
)
def test_every_metric_of_a_serial_profile_has_an_example_reading(name: str) -> None:
    profile = PROFILES[name]
    shown = {key for e in profile.examples if not e.reject for key in e.expect or {}}
    assert shown == {m.key for m in profile.metrics}


def test_demo_site_loads_with_all_contract_ids() -> None:
    site = load_site(DEFAULT_PROFILES_DIR.parent / "sites" / "demo" / "site.yaml", PROFILES)
    ids = {d.id for d in site.devices}
    expected = (
        {f"canteen-fridge-0{i}" for i in range(1, 5)}
        | {"canteen-freezer-01", "canteen-freezer-02", "canteen-sample-01"}
        | {f"dorm-{b}-door-0{i}" for b in "ab" for i in range(1, 5)}
        | {"meter-elec-01", "meter-elec-02", "meter-water-01"}
        | {"canteen-bin-01", "garden-soil-01", "classroom-101-air", "dorm-a-leak-01"}
        | {f"dorm-a-cp-0{i}" for i in range(1, 4)}
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


@pytest.mark.parametrize(
    ("profile", "find", "replace", "field", "says"),
    [
        (
            "eastron-sdm120",
            "      current: [0x40A8, 0x0000]      # 5.25 A",
            "      currant: [0x40A8, 0x0000]",
            "examples.0.registers.currant",
            "'currant' is not a metric of this profile",
        ),
        (
            "dlt645-single-phase",
            '  - data: {current: "00 01 02 02 00 15 80"}',
            "  - registers: {current: [0x0001]}",
            "examples.1.registers",
            "a dlt645 profile's example gives 'data'",
        ),
        (
            "dlt645-single-phase",
            "    reject: bad_frame",
            "    reject: bad_frames",
            "examples.2.reject",
            "Input should be",
        ),
        (
            "dlt645-single-phase",
            '  - data: {current: "00 01 02 02 00 15 80"}',
            '  - data: {current: "00 01 02 02 00 15 8"}',
            "examples.1.data.current",
            "String should match pattern",
        ),
    ],
)
def test_a_wrong_example_is_named_by_file_line_and_field(
    tmp_path: Path, profile: str, find: str, replace: str, field: str, says: str
) -> None:
    text = (DEFAULT_PROFILES_DIR / f"{profile}.yaml").read_text()
    assert find in text
    bad = text.replace(find, replace, 1)
    (tmp_path / f"{profile}.yaml").write_text(bad)
    with pytest.raises(ConfigErrors) as info:
        load_profiles(tmp_path)
    line = next(i for i, s in enumerate(bad.splitlines(), 1) if replace.strip() in s)
    assert f"{profile}.yaml:{line}: {field}: " in str(info.value)
    assert says in str(info.value)


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
