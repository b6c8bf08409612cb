"""Time windows of rules (`when:`), evaluated once for every kind: a windowed rule is its
kind's bound rule wrapped in `Windowed`, so no kind knows about windows.

What happens, on event time (a reading's or event's measured time; the clock for ticks):

- Input outside every window of the rule is ignored: it neither raises nor clears, starts
  no delay and is not remembered (a reading at 07:59 does not start a delay that runs on
  into an 08:00 lesson).
- The first input inside a window starts the rule afresh; inside, the kind runs as usual
  (delays, clear levels, counts).
- When the window ends (at `to`, exclusive), the rule is judged once more at the end's last
  instant: a delay whose deadline fell before the end fires at its deadline (the sensor may
  have been quiet); a deadline at or after the end never fires: the pending delay is
  dropped. Then an alert of the rule still active is cleared at the end ("outside its
  hours"), and the rule's state is reset. This is done by the first input or tick at or
  after the end, so a replayed burst gives what live data gave.
- Input older than the start of the window the rule is in (or the end of the one it last
  closed) is ignored: that window was judged already.

The state keeps the kind's own fields plus `_window` ({"since", "end"} in epoch ms).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

from core.rules_spec import AnyRule
from core.schedules import CURFEW, Period, Schedule, candidate_days, periods_of
from core.site import SiteConfig
from core.yamlfile import ConfigError
from server.rules.kind import (
    BoundRule,
    EventSample,
    JsonState,
    MetricSample,
    RuleContext,
    RuleEvent,
    dt,
    ms,
)

Window = tuple[int, int]  # [start, end) in epoch ms
WindowAt = Callable[[datetime], Window | None]
_KEY = "_window"


class SiteWindows:
    """The window around a time, for a schedule (by name or written in place) and a building,
    from the site calendar."""

    def __init__(self, site: SiteConfig) -> None:
        self.site = site
        self.calendar = site.calendar
        self.tz = site.tz

    def label(self, when: str | Schedule) -> str:
        return when if isinstance(when, str) else "its hours"

    def function(self, when: str | Schedule, building: str) -> WindowAt:
        if when == CURFEW:
            return lambda at: self._curfew(building, at)
        schedule = when if isinstance(when, Schedule) else self.calendar.schedules[when]
        return lambda at: self._scheduled(schedule, building, at)

    def _scheduled(self, schedule: Schedule, building: str, at: datetime) -> Window | None:
        local = at.astimezone(self.tz)
        for day in candidate_days(local):
            periods: tuple[Period, ...] = periods_of(
                schedule, day, self.calendar.facts(building, day)
            )
            for period in periods:
                span = period.on(day, self.tz)
                if span is not None and span[0] <= local < span[1]:
                    return ms(span[0]), ms(span[1])
        return None

    def _curfew(self, building: str, at: datetime) -> Window | None:
        local = at.astimezone(self.tz)
        for night in candidate_days(local):
            span = self.curfew_span(building, night)
            if span is not None and span[0] <= local < span[1]:
                return ms(span[0]), ms(span[1])
        return None

    def curfew_span(self, building: str, night: date) -> tuple[datetime, datetime] | None:
        """The night of `night` (its evening's date): from the building's curfew that night
        to `curfew_ends` the next morning; a curfew after midnight starts the next day."""
        curfew = self.site.curfew_for(building, night)
        if curfew is None:
            return None
        morning = night + timedelta(days=1)
        ends = self.calendar.curfew_ends
        start_day = morning if curfew < ends else night
        return datetime.combine(start_day, curfew, self.tz), datetime.combine(
            morning, ends, self.tz
        )


def check_schedules(site: SiteConfig, device_id: str, rules: list[AnyRule]) -> None:
    """Every `when` a device's rules name is defined; else the site file is wrong."""
    for rule in rules:
        when = rule.when
        if when is not None and not site.calendar.knows(when):
            raise ConfigError(
                site.site,
                [
                    f"0: rule {rule.rule!r} of device {device_id!r} holds when {when!r}, which "
                    f"is neither calendar.schedules.{when} nor the built-in {CURFEW!r}"
                ],
            )


class Windowed:
    """A bound rule that holds only inside its windows (see the module docstring)."""

    __slots__ = ("_inner", "_label", "_window_at")

    def __init__(self, inner: BoundRule, window_at: WindowAt, label: str) -> None:
        self._inner = inner
        self._window_at = window_at
        self._label = label

    @property
    def spec(self) -> AnyRule:
        return self._inner.spec

    @property
    def metric(self) -> str | None:
        return self._inner.metric

    @property
    def takes_readings(self) -> bool:
        return self._inner.takes_readings

    @property
    def takes_events(self) -> bool:
        return self._inner.takes_events

    @property
    def takes_time(self) -> bool:
        return True  # the clock closes windows

    def reading(
        self, stored: JsonState, x: MetricSample, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]:
        return self._step(stored, x.at, ctx, lambda s: self._inner.reading(s, x, ctx))

    def event(
        self, stored: JsonState, x: EventSample, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]:
        return self._step(stored, x.at, ctx, lambda s: self._inner.event(s, x, ctx))

    def time(
        self, stored: JsonState, now: datetime, ctx: RuleContext
    ) -> tuple[JsonState | None, list[RuleEvent]]:
        return self._step(stored, now, ctx, lambda s: self._inner.time(s, now, ctx))

    def forget(self, stored: JsonState) -> JsonState | None:
        state, mark = _split(stored)
        after = self._inner.forget(state)
        return None if after is None else _join(after, mark)

    def _step(
        self,
        stored: JsonState,
        at: datetime,
        ctx: RuleContext,
        run: Callable[[JsonState], tuple[JsonState | None, list[RuleEvent]]],
    ) -> tuple[JsonState | None, list[RuleEvent]]:
        state, mark = _split(stored)
        t = ms(at)
        events: list[RuleEvent] = []
        changed = False
        end = mark.get("end")
        if isinstance(end, int) and t >= end:
            state, events = self._close(state, end, ctx)
            mark, changed = {"since": end}, True
        since = mark.get("since")
        if isinstance(since, int) and t < since:
            return (_join(state, mark) if changed else None), events  # a judged window
        window = self._window_at(at)
        if window is None:
            return (_join(state, mark) if changed else None), events
        if mark.get("end") != window[1]:
            state, mark, changed = {}, {"since": window[0], "end": window[1]}, True
        after, fired = run(state)
        events += fired
        if after is None and not changed:
            return None, events
        return _join(after if after is not None else state, mark), events

    def _close(
        self, state: JsonState, end: int, ctx: RuleContext
    ) -> tuple[JsonState, list[RuleEvent]]:
        """The window ended at `end`: what fell due inside it fires, an active alert clears,
        and the rule starts from nothing."""
        after, events = self._inner.time(state, dt(end - 1), ctx)
        final = after if after is not None else state
        if final.get("active") is True:
            local = dt(end).astimezone(ctx.tz).strftime("%H:%M")
            message = f"outside its hours ({self._label}) from {local}"
            events.append(RuleEvent("clear", self.spec, ctx.device_id, dt(end), None, message))
        return {}, events


def _split(stored: JsonState) -> tuple[JsonState, dict[str, object]]:
    mark = stored.get(_KEY)
    state = {k: v for k, v in stored.items() if k != _KEY}
    return state, dict(mark) if isinstance(mark, dict) else {}


def _join(state: JsonState, mark: dict[str, object]) -> JsonState:
    return {**state, _KEY: mark}
