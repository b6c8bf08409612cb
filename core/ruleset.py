"""Effective rules of a device: its class's rules, its profile's, then site overrides."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from core.device_classes import Catalogue, DeviceClassDef, load_catalogue
from core.profiles import ClassName, Profile
from core.rules_spec import RuleSpec
from core.site import DeviceConfig, SiteConfig
from core.yamlfile import ConfigError

_RULE = TypeAdapter(RuleSpec)

# The class files (device_profiles/classes/) were first only their default rules; the names
# stay for the code that reads them so.
ClassRules = DeviceClassDef
load_class_rules = load_catalogue


def device_class_of(device: DeviceConfig, profile: Profile) -> ClassName:
    """The site's class for the device if it names one (a probe in a freezer), else the
    profile's."""
    return device.device_class or profile.device_class


def effective_rules(
    device: DeviceConfig,
    profile: Profile,
    site: SiteConfig,
    class_rules: Catalogue,
) -> list[RuleSpec]:
    cls = device_class_of(device, profile)
    base = class_rules.get(cls)
    rules: dict[str, RuleSpec] = {r.rule: r for r in (base.rules if base else ())}
    rules.update({r.rule: r for r in profile.default_rules})
    for ov in site.rule_overrides:
        if ov.rule not in rules:
            continue
        if ov.device_class is not None and ov.device_class != cls:
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


def rule_problems(
    site: SiteConfig, profiles: dict[str, Profile], catalogue: Catalogue
) -> list[str]:
    """What is wrong with the rules the site's devices end up with: a rule watching a metric
    the device's profile does not report (unless the class says only some models do), a
    `when` naming no schedule, a `notify` naming no role. `file:line` style
    lines, as ConfigError takes them (the site file has no line for a computed rule)."""
    problems: list[str] = []
    roles = site.role_book
    for device in site.devices:
        profile = profiles[device.profile]
        keys = {m.key for m in profile.metrics}
        cls = catalogue.get(device_class_of(device, profile))
        optional = set(cls.optional_metrics) if cls is not None else set()
        for rule in effective_rules(device, profile, site, catalogue):
            metric = getattr(rule, "metric", None)
            if metric is not None and metric not in keys and metric not in optional:
                problems.append(
                    f"0: devices: {device.id}: rule {rule.rule!r} watches {metric!r}, which "
                    f"profile {profile.profile} does not report"
                )
            for role in rule.notify:
                if role not in roles:
                    problems.append(
                        f"0: devices: {device.id}: rule {rule.rule!r} notifies {role!r}, a role "
                        f"neither built in nor declared in the site's roles: "
                        f"({', '.join(sorted(roles.names()))})"
                    )
            if rule.when is not None and not site.calendar.knows(rule.when):
                problems.append(
                    f"0: devices: {device.id}: rule {rule.rule!r} holds when {rule.when!r}: "
                    f"add calendar.schedules.{rule.when} (or use the built-in 'curfew')"
                )
    return problems
