"""Offline: a device silent for `after` raises (on the clock, by receive time); only fresh
data clears it. In a burst replayed after an outage, a gap in event time longer than `after`
was an outage too, raised at its start + `after` (live, the clock raised it already)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from core.rules_spec import OfflineRule
from server.rules.kind import (
    EventSample,
    KindDef,
    MetricSample,
    RuleContext,
    RuleEvent,
    RuleState,
    Step,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflineState(RuleState):
    pass


def _back(rule: OfflineRule, s: OfflineState, at: datetime, ctx: RuleContext) -> Step[OfflineState]:
    if not s.active:
        return s, []
    return dataclasses.replace(s, active=False), [
        RuleEvent("clear", rule, ctx.device_id, at, None, "data received again")
    ]


def on_reading(
    rule: OfflineRule, s: OfflineState, x: MetricSample, ctx: RuleContext
) -> Step[OfflineState]:
    events: list[RuleEvent] = []
    prev = x.previous_at
    if prev is not None and x.at > prev and not s.active and x.at - prev >= rule.after:
        minutes = (x.at - prev).total_seconds() / 60
        s = dataclasses.replace(s, active=True)
        message = f"no data for {minutes:.1f} min"
        events.append(RuleEvent("raise", rule, ctx.device_id, prev + rule.after, None, message))
    s, back = _back(rule, s, x.at, ctx)
    return s, events + back


def on_event(
    rule: OfflineRule, s: OfflineState, x: EventSample, ctx: RuleContext
) -> Step[OfflineState]:
    return _back(rule, s, x.at, ctx)


def on_time(
    rule: OfflineRule, s: OfflineState, now: datetime, ctx: RuleContext
) -> Step[OfflineState]:
    if ctx.last_seen is None or s.active:
        return s, []  # never seen: "no data yet", not an alarm at start-up
    silent = now - ctx.last_seen
    if silent < rule.after:
        return s, []
    message = f"no data for {silent.total_seconds() / 60:.1f} min"
    return dataclasses.replace(s, active=True), [
        RuleEvent("raise", rule, ctx.device_id, ctx.last_seen + rule.after, None, message)
    ]


KIND = KindDef(
    spec_type=OfflineRule,
    state_type=OfflineState,
    ordered="none",
    on_reading=on_reading,
    on_event=on_event,
    on_time=on_time,
)
