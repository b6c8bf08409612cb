"""The rule runner: moves each of a device's rules with one input (a reading, a device
event, the clock) and persists their state; the rule events it returns go to alerts.

Typed dispatch: the index hands it `BoundRule`s that know their own kind; the runner only
loads and stores the JSON state around them.
"""

from __future__ import annotations

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


class RuleRunner:
    def __init__(self, index: RuleIndex, tz: ZoneInfo) -> None:
        self.index = index
        self.tz = tz

    def _ctx(self, device_id: str, rules: DeviceRules, last_seen: datetime | None) -> RuleContext:
        return RuleContext(device_id, self.tz, rules.silence, last_seen)

    def reading(
        self, states: RuleStates, device_id: str, x: MetricSample, last_seen: datetime | None
    ) -> list[RuleEvent]:
        rules = self.index.devices.get(device_id)
        if rules is None:
            return []
        ctx = self._ctx(device_id, rules, last_seen)
        out: list[RuleEvent] = []
        for rule in (*rules.every_reading, *rules.by_metric.get(x.metric, ())):
            out += self._step(
                states, device_id, rule, rule.reading(self._get(states, device_id, rule), x, ctx)
            )
        return out

    def event(
        self, states: RuleStates, device_id: str, x: EventSample, last_seen: datetime | None
    ) -> list[RuleEvent]:
        rules = self.index.devices.get(device_id)
        if rules is None:
            return []
        ctx = self._ctx(device_id, rules, last_seen)
        out: list[RuleEvent] = []
        for rule in rules.events:
            out += self._step(
                states, device_id, rule, rule.event(self._get(states, device_id, rule), x, ctx)
            )
        return out

    def time(
        self, states: RuleStates, device_id: str, now: datetime, last_seen: datetime | None
    ) -> list[RuleEvent]:
        rules = self.index.devices.get(device_id)
        if rules is None:
            return []
        ctx = self._ctx(device_id, rules, last_seen)
        out: list[RuleEvent] = []
        for rule in rules.timed:
            out += self._step(
                states, device_id, rule, rule.time(self._get(states, device_id, rule), now, ctx)
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
        step: tuple[JsonState | None, list[RuleEvent]],
    ) -> list[RuleEvent]:
        after, events = step
        if after is not None:
            states.put(device_id, rule.spec.rule, after)
        return events
