"""Threshold: a metric beyond a limit for a delay raises; back past the clear level for the
clear delay clears. Both delays run out on the clock, not at the next reading: a sensor that
reports only on change or hourly (Zigbee, LoRaWAN) still raises when the delay is over.

The deadline is on event time (first breaching reading + delay), so a burst replayed after an
outage gives the alert live data would have. A deadline that falls after the device went
silent for its offline limit does not fire: the condition is unknown then, and the offline
rule speaks for the device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from core.rules_spec import ThresholdRule
from server.rules.kind import (
    EventSample,
    KindDef,
    MetricSample,
    RuleContext,
    RuleEvent,
    RuleState,
    Step,
    dt,
    ms,
    silent_at,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdState(RuleState):
    pending_since: int | None = None  # epoch ms of the first breaching reading
    peak: float | None = None
    clear_since: int | None = None
    raised_ts: int | None = None
    last_value: float | None = None  # what a raise or clear on the clock reports
    last_unit: str | None = None
    mark: int | None = None  # newest `after_event` (defrost), epoch ms
    breaching: int = 0  # readings in a row beyond the limit (for `consecutive`)


def _delay_ms(rule: ThresholdRule, s: ThresholdState) -> int:
    delay = rule.for_
    since = s.pending_since
    if rule.after_event_for is not None and s.mark is not None and since is not None:
        window = rule.after_event_window.total_seconds() * 1000
        if 0 <= since - s.mark <= window:
            delay = max(delay, rule.after_event_for)
    return int(delay.total_seconds() * 1000)


def _worse(rule: ThresholdRule, a: float | None, b: float) -> float:
    if a is None:
        return b
    return max(a, b) if rule.above is not None else min(a, b)


def _raise(
    rule: ThresholdRule,
    s: ThresholdState,
    at: int,
    value: float,
    unit: str | None,
    ctx: RuleContext,
) -> Step[ThresholdState]:
    assert s.pending_since is not None
    limit = rule.above if rule.above is not None else rule.below
    assert limit is not None
    word = "above" if rule.above is not None else "below"
    u = f" {unit}" if unit else ""
    minutes = (at - s.pending_since) / 60000
    s = dataclasses.replace(s, active=True, clear_since=None, raised_ts=at)
    message = f"{rule.metric} {value:g}{u} {word} {limit:g}{u} for {minutes:.1f} min"
    return s, [RuleEvent("raise", rule, ctx.device_id, dt(at), value, message, peak=s.peak)]


def _clear(
    rule: ThresholdRule,
    s: ThresholdState,
    at: int,
    value: float,
    unit: str | None,
    ctx: RuleContext,
) -> Step[ThresholdState]:
    assert s.clear_since is not None
    u = f" {unit}" if unit else ""
    minutes = (at - s.clear_since) / 60000
    message = f"{rule.metric} back to {value:g}{u} for {minutes:.1f} min"
    event = RuleEvent("clear", rule, ctx.device_id, dt(at), value, message, peak=s.peak)
    cleared = dataclasses.replace(
        s, active=False, pending_since=None, clear_since=None, peak=None, breaching=0
    )
    return cleared, [event]


def _due(
    rule: ThresholdRule, s: ThresholdState, until: int, ctx: RuleContext
) -> Step[ThresholdState]:
    """Delays that ran out before `until` with no reading since: fire at their deadline."""
    if s.last_value is None:
        return s, []
    if not s.active and s.pending_since is not None and s.breaching >= rule.consecutive:
        deadline = s.pending_since + _delay_ms(rule, s)
        if deadline <= until and not silent_at(s, deadline, ctx):
            return _raise(rule, s, deadline, s.last_value, s.last_unit, ctx)
    if s.active and s.clear_since is not None:
        deadline = s.clear_since + int(rule.clear_for.total_seconds() * 1000)
        if deadline <= until and not silent_at(s, deadline, ctx):
            return _clear(rule, s, deadline, s.last_value, s.last_unit, ctx)
    return s, []


def on_reading(
    rule: ThresholdRule, s: ThresholdState, x: MetricSample, ctx: RuleContext
) -> Step[ThresholdState]:
    value = x.number
    if value is None:
        return s, []
    ts = ms(x.at)
    # A deadline strictly before this reading passed with the previous value still standing.
    s, events = _due(rule, s, ts - 1, ctx)
    s = dataclasses.replace(s, last_value=value, last_unit=x.unit)
    if not s.active:
        if not rule.breached(value):
            return dataclasses.replace(s, pending_since=None, peak=None, breaching=0), events
        since = s.pending_since if s.pending_since is not None else ts
        s = dataclasses.replace(
            s, pending_since=since, peak=_worse(rule, s.peak, value), breaching=s.breaching + 1
        )
        if ts - since >= _delay_ms(rule, s) and s.breaching >= rule.consecutive:
            s, raised = _raise(rule, s, ts, value, x.unit, ctx)
            events += raised
        return s, events
    s = dataclasses.replace(s, peak=_worse(rule, s.peak, value))
    if not rule.cleared(value):
        return dataclasses.replace(s, clear_since=None), events
    since = s.clear_since if s.clear_since is not None else ts
    s = dataclasses.replace(s, clear_since=since)
    if ts - since >= rule.clear_for.total_seconds() * 1000:
        s, cleared = _clear(rule, s, ts, value, x.unit, ctx)
        events += cleared
    return s, events


def on_event(
    rule: ThresholdRule, s: ThresholdState, x: EventSample, _ctx: RuleContext
) -> Step[ThresholdState]:
    """Remember the newest `after_event` (a defrost): breaches starting soon after wait
    longer. Idempotent, so it needs no ordering."""
    if rule.after_event is None or x.kind != rule.after_event:
        return s, []
    at = ms(x.at)
    if s.mark is not None and at <= s.mark:
        return s, []
    return dataclasses.replace(s, mark=at), []


def on_time(
    rule: ThresholdRule, s: ThresholdState, now: datetime, ctx: RuleContext
) -> Step[ThresholdState]:
    return _due(rule, s, ms(now), ctx)


def _forget(s: ThresholdState) -> ThresholdState:
    return dataclasses.replace(
        s, active=False, pending_since=None, clear_since=None, peak=None, breaching=0
    )


KIND = KindDef(
    spec_type=ThresholdRule,
    state_type=ThresholdState,
    ordered="readings",
    on_reading=on_reading,
    on_event=on_event,
    on_time=on_time,
    forget=_forget,
    metric_of=lambda r: r.metric,
    hears_events=lambda r: r.after_event is not None,
)
