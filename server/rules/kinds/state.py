"""State: a (boolean or text) metric holding a value for a delay raises (a door open for more
than 10 minutes); any other value clears at once. The delay runs out on the clock, as for
thresholds: a door contact that reports only on change still raises when the time is up."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from core.readings import Value
from core.rules_spec import StateRule
from server.rules.kind import (
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
class HoldState(RuleState):
    pending_since: int | None = None
    last_value: Value | None = None


def _raise(rule: StateRule, s: HoldState, at: int, ctx: RuleContext) -> Step[HoldState]:
    assert s.pending_since is not None
    minutes = (at - s.pending_since) / 60000
    message = f"{rule.metric} = {s.last_value} for {minutes:.1f} min"
    return dataclasses.replace(s, active=True), [
        RuleEvent("raise", rule, ctx.device_id, dt(at), None, message)
    ]


def _due(rule: StateRule, s: HoldState, until: int, ctx: RuleContext) -> Step[HoldState]:
    if s.active or s.pending_since is None:
        return s, []
    deadline = s.pending_since + int(rule.for_.total_seconds() * 1000)
    if deadline > until:
        return s, []
    if silent_at(s, deadline, ctx):
        return s, []  # silent before the time was up: the offline rule's to tell
    return _raise(rule, s, deadline, ctx)


def on_reading(rule: StateRule, s: HoldState, x: MetricSample, ctx: RuleContext) -> Step[HoldState]:
    ts = ms(x.at)
    s, events = _due(rule, s, ts - 1, ctx)
    held = x.value == rule.equals
    s = dataclasses.replace(s, last_value=x.value)
    if s.active:
        if held:
            return s, events
        message = f"{rule.metric} = {x.value}"
        return dataclasses.replace(s, active=False, pending_since=None), [
            *events,
            RuleEvent("clear", rule, ctx.device_id, x.at, None, message),
        ]
    if not held:
        return dataclasses.replace(s, pending_since=None), events
    since = s.pending_since if s.pending_since is not None else ts
    s = dataclasses.replace(s, pending_since=since)
    if ts - since >= rule.for_.total_seconds() * 1000:
        s, raised = _raise(rule, s, ts, ctx)
        events += raised
    return s, events


def on_time(rule: StateRule, s: HoldState, now: datetime, ctx: RuleContext) -> Step[HoldState]:
    return _due(rule, s, ms(now), ctx)


KIND = KindDef(
    spec_type=StateRule,
    state_type=HoldState,
    ordered="readings",
    on_reading=on_reading,
    on_time=on_time,
    forget=lambda s: dataclasses.replace(s, active=False, pending_since=None),
    metric_of=lambda r: r.metric,
)
