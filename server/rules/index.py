"""Which rules each device has, bound to their kinds and indexed by the input they take."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from core.profiles import Profile
from core.rules_spec import AnyRule, OfflineRule
from core.ruleset import ClassRules, device_class_of, effective_rules
from core.site import SiteConfig
from server.rules.kind import BoundRule
from server.rules.kinds import bind
from server.rules.windows import SiteWindows, Windowed, check_schedules


@dataclass(frozen=True, slots=True)
class DeviceRules:
    by_metric: dict[str, tuple[BoundRule, ...]]  # rules on one metric
    every_reading: tuple[BoundRule, ...]  # rules any reading moves (offline)
    events: tuple[BoundRule, ...]
    timed: tuple[BoundRule, ...]  # rules the clock moves (delays, offline)
    # The device's offline limit: delays never run out across a silence this long.
    silence: timedelta | None


class RuleIndex:
    def __init__(
        self, site: SiteConfig, profiles: dict[str, Profile], class_rules: dict[str, ClassRules]
    ) -> None:
        self.devices: dict[str, DeviceRules] = {}
        self._specs: dict[tuple[str, str], AnyRule] = {}
        self._told: dict[tuple[str, str], tuple[str, ...]] = {}
        roles = site.role_book
        windows = SiteWindows(site)

        def bound_rule(spec: AnyRule, building: str) -> BoundRule:
            if spec.when is None:
                return bind(spec)
            at = windows.function(spec.when, building)
            return Windowed(bind(spec), at, windows.label(spec.when))

        for device in site.devices:
            specs = effective_rules(device, profiles[device.profile], site, class_rules)
            check_schedules(site, device.id, specs)
            # Offline rules first: fresh data ends an outage before anything else is judged.
            bound = sorted(
                (bound_rule(r, device.building) for r in specs),
                key=lambda b: b.spec.kind != "offline",
            )
            by_metric: dict[str, list[BoundRule]] = defaultdict(list)
            cls = device_class_of(device, profiles[device.profile])
            for b in bound:
                self._specs[(device.id, b.spec.rule)] = b.spec
                order = b.spec.work_order
                told = roles.told_of(cls, order.category if order else None)
                self._told[(device.id, b.spec.rule)] = tuple(dict.fromkeys((*b.spec.notify, *told)))
                if b.metric is not None:
                    by_metric[b.metric].append(b)
            offline = [r.after for r in specs if isinstance(r, OfflineRule)]
            self.devices[device.id] = DeviceRules(
                by_metric={m: tuple(rs) for m, rs in by_metric.items()},
                every_reading=tuple(b for b in bound if b.metric is None and b.takes_readings),
                events=tuple(b for b in bound if b.takes_events),
                timed=tuple(b for b in bound if b.takes_time),
                silence=min(offline) if offline else None,
            )

    def rule(self, device_id: str, rule: str) -> AnyRule | None:
        return self._specs.get((device_id, rule))

    def notify_roles(self, device_id: str, rule: str) -> tuple[str, ...] | None:
        """Who a device's alert of this rule goes to: the rule's `notify`, and the site's own
        roles that see the device's class or its order's category; None for an alert that
        no device rule raised (gateway health)."""
        return self._told.get((device_id, rule))
