"""Which devices keep a cold-chain record, and the compliance limits each is judged against:
its class's `compliance:` (device_profiles/classes/), then the site file's
`cold_chain.compliance` overrides for its class, then for the device itself."""

from __future__ import annotations

from dataclasses import dataclass

from core.profiles import Profile
from core.ruleset import ClassRules, device_class_of
from core.site import ComplianceLimits, SiteConfig
from server.coldchain.analysis import Limits


@dataclass(frozen=True, slots=True)
class ColdDevice:
    id: str
    name: str
    building: str
    device_class: str
    limits: ComplianceLimits

    @property
    def judged(self) -> Limits:
        return Limits(self.limits.min, self.limits.max, self.limits.max_gap)


def cold_devices(
    site: SiteConfig, profiles: dict[str, Profile], class_rules: dict[str, ClassRules]
) -> dict[str, ColdDevice]:
    out: dict[str, ColdDevice] = {}
    for d in site.devices:
        cls = device_class_of(d, profiles[d.profile]).value
        base = class_rules.get(cls)
        if base is None or base.compliance is None:
            continue
        limits = base.compliance
        # A device's own override after its class's, whatever their order in the file.
        for ov in sorted(site.cold_chain.compliance, key=lambda o: o.device is not None):
            if ov.device_class is not None and ov.device_class != cls:
                continue
            if ov.device is not None and ov.device != d.id:
                continue
            changes = {
                k: v
                for k, v in {"min": ov.min, "max": ov.max, "max_gap": ov.max_gap}.items()
                if v is not None
            }
            limits = ComplianceLimits.model_validate(limits.model_dump() | changes)
        out[d.id] = ColdDevice(d.id, d.name or d.id, d.building, cls, limits)
    return out
