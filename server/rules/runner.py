"""The rule runner: moves each of a device's rules with one input (a reading, a device
event, the clock) and persists their state; the rule events it returns go to alerts.

Typed dispatch: the index hands it `BoundRule`s that know their own kind; the runner only
loads and stores the JSON state around them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from server.rules.index import DeviceRules, RuleIndex
from server.rules.kind import (
    BoundRule,
    EventSample,
    JsonState,
    MetricSample,
    RuleContext,
    RuleEvent,
)
from server.rules.store import RuleStates

Step = tuple[JsonState | None, list[RuleEvent]]  # a rule's new state (None: unchanged), events


class RuleRunner:
    def __init__(self, index: RuleIndex, tz: ZoneInfo) -> None:
        self.index = index
        self.tz = tz

    def _ctx(self, device_id: str, rules: DeviceRules, last_seen: datetime | None) -> RuleContext:
        return RuleContext(device_id, self.tz, rules.silence, last_seen)

    def reading(
        self, states: RuleStates, device_id: str, x: MetricSample, last_seen: datetime | None
    ) -> list[RuleEvent]:
        return self._run(
            states,
            device_id,
            last_seen,
            lambda rules: (*rules.every_reading, *rules.by_metric.get(x.metric, ())),
            lambda rule, stored, ctx: rule.reading(stored, x, ctx),
        )

    def event(
        self, states: RuleStates, device_id: str, x: EventSample, last_seen: datetime | None
    ) -> list[RuleEvent]:
        return self._run(
            states,
            device_id,
            last_seen,
            lambda rules: rules.events,
            lambda rule, stored, ctx: rule.event(stored, x, ctx),
        )

    def time(
        self, states: RuleStates, device_id: str, now: datetime, last_seen: datetime | None
    ) -> list[RuleEvent]:
        return self._run(
            states,
            device_id,
            last_seen,
            lambda rules: rules.timed,
            lambda rule, stored, ctx: rule.time(stored, now, ctx),
        )

    def _run(
        self,
        states: RuleStates,
        device_id: str,
        last_seen: datetime | None,
        which: Callable[[DeviceRules], Iterable[BoundRule]],
        move: Callable[[BoundRule, JsonState, RuleContext], Step],
    ) -> list[RuleEvent]:
        """Move each of the device's rules that take this input; keep what changed."""
        rules = self.index.devices.get(device_id)
        if rules is None:
            return []
        ctx = self._ctx(device_id, rules, last_seen)
        out: list[RuleEvent] = []
        for rule in which(rules):
            out += self._step(
                states, device_id, rule, move(rule, self._get(states, device_id, rule), ctx)
            )
        return out

    def forget(self, states: RuleStates, device_id: str, rule_name: str) -> None:
        """A raise that was suppressed, or an alert a person resolved: the rule is no longer
        active, so a condition that lasts (or comes back) raises afresh."""
        rules = self.index.devices.get(device_id)
        if rules is None:
            return
        for rule in {
            *rules.timed,
            *rules.events,
            *rules.every_reading,
            *(r for rs in rules.by_metric.values() for r in rs),
        }:
            if rule.spec.rule == rule_name:
                after = rule.forget(self._get(states, device_id, rule))
                if after is not None:
                    states.put(device_id, rule_name, after)

    @staticmethod
    def _get(states: RuleStates, device_id: str, rule: BoundRule) -> JsonState:
        return states.get(device_id, rule.spec.rule)

    @staticmethod
    def _step(
        states: RuleStates,
        device_id: str,
        rule: BoundRule,
        step: Step,
    ) -> list[RuleEvent]:
        after, events = step
        if after is not None:
            states.put(device_id, rule.spec.rule, after)
        return events
