"""Effective rules of a device: its class's rules, its profile's, then site overrides."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from core.profiles import DEFAULT_PROFILES_DIR, DeviceClass, Profile
from core.rules_spec import RuleSpec
from core.site import ComplianceLimits, DeviceConfig, SiteConfig
from core.yamlfile import ConfigError, ConfigErrors, load_model

_RULE = TypeAdapter(RuleSpec)


class ClassRules(BaseModel):
    """device_profiles/classes/<class>.yaml: the default rules every device of a class gets."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    device_class: DeviceClass
    source: str = ""  # where the numbers come from (regulation, our own judgement)
    rules: tuple[RuleSpec, ...] = ()
    # Cold storage: the limits the cold-chain record is judged against (not the alarms').
    compliance: ComplianceLimits | None = None


def load_class_rules(directory: Path = DEFAULT_PROFILES_DIR / "classes") -> dict[str, ClassRules]:
    out: dict[str, ClassRules] = {}
    errors: list[ConfigError] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            rules = load_model(ClassRules, path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if rules.device_class.value != path.stem:
            errors.append(ConfigError(str(path), ["1: device_class must equal the file name"]))
        out[path.stem] = rules
    if errors:
        raise ConfigErrors(errors)
    return out


def device_class_of(device: DeviceConfig, profile: Profile) -> DeviceClass:
    return device.device_class or profile.device_class


def effective_rules(
    device: DeviceConfig,
    profile: Profile,
    site: SiteConfig,
    class_rules: dict[str, ClassRules],
) -> list[RuleSpec]:
    cls = device_class_of(device, profile)
    base = class_rules.get(cls.value)
    rules: dict[str, RuleSpec] = {r.rule: r for r in (base.rules if base else ())}
    rules.update({r.rule: r for r in profile.default_rules})
    for ov in site.rule_overrides:
        if ov.rule not in rules:
            continue
        if ov.device_class is not None and ov.device_class != cls.value:
            continue
        if ov.building is not None and ov.building != device.building:
            continue
        if ov.device is not None and ov.device != device.id:
            continue
        merged = rules[ov.rule].model_dump(by_alias=True) | ov.set
        try:
            rules[ov.rule] = _RULE.validate_python(merged)
        except ValidationError as exc:
            raise ConfigError(
                site.site, [f"0: rule_overrides: {ov.rule}: {exc.errors()[0]['msg']}"]
            ) from exc
    return [r for r in rules.values() if r.enabled]
