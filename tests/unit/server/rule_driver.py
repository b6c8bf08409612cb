"""Drives one rule through its kind as the runner does, without a database or an app."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.readings import Value
from core.rules_spec import AnyRule
from server.rules.kind import EventSample, JsonState, MetricSample, RuleContext, RuleEvent
from server.rules.kinds import bind


class Driver:
    def __init__(
        self,
        spec: AnyRule,
        *,
        tz: ZoneInfo | None = None,
        silence: timedelta | None = None,
        state: JsonState | None = None,
    ) -> None:
        self.rule = bind(spec)
        self.state: JsonState = dict(state or {})
        self.tz = tz or ZoneInfo("UTC")
        self.silence = silence
        self.last_seen: datetime | None = None
        self._n = 0

    def _ctx(self) -> RuleContext:
        return RuleContext("dev-1", self.tz, self.silence, self.last_seen)

    def _take(self, step: tuple[JsonState | None, list[RuleEvent]]) -> list[RuleEvent]:
        after, events = step
        if after is not None:
            self.state = after
        return events

    def reading(
        self,
        value: Value,
        at: datetime,
        unit: str | None = None,
        metric: str | None = None,
        previous_at: datetime | None = None,
    ) -> list[RuleEvent]:
        x = MetricSample(metric or self.rule.metric or "m", value, unit, at, previous_at)
        self.last_seen = at
        return self._take(self.rule.reading(self.state, x, self._ctx()))

    def event(self, kind: str, at: datetime, event_id: str | None = None) -> list[RuleEvent]:
        self._n += 1
        self.last_seen = at
        x = EventSample(kind, event_id or f"e{self._n}", at)
        return self._take(self.rule.event(self.state, x, self._ctx()))

    def time(self, now: datetime) -> list[RuleEvent]:
        return self._take(self.rule.time(self.state, now, self._ctx()))
