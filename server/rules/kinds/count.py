"""Count: an event repeating `count` times within `window` raises (5 invalid cards in 5
minutes); a whole window without it clears, on the clock or at the next event."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from core.rules_spec import CountRule
from server.rules.kind import (
    EventSample,
    KindDef,
    RuleContext,
    RuleEvent,
    RuleState,
    Step,
    dt,
    ms,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CountState(RuleState):
    hits: tuple[int, ...] = ()  # epoch ms of matching events within the window


def _window(rule: CountRule) -> int:
    return int(rule.window.total_seconds() * 1000)


def _quiet(rule: CountRule, s: CountState, until: int, ctx: RuleContext) -> Step[CountState]:
    """The window after the last hit ran out before `until`: clear at its end."""
    if not s.active or not s.hits or s.hits[-1] + _window(rule) > until:
        return s, []
    at = s.hits[-1] + _window(rule)
    message = f"no {rule.event.replace('_', ' ')} for a whole window"
    return dataclasses.replace(s, active=False, hits=()), [
        RuleEvent("clear", rule, ctx.device_id, dt(at), None, message)
    ]


def on_event(rule: CountRule, s: CountState, x: EventSample, ctx: RuleContext) -> Step[CountState]:
    ts = ms(x.at)
    s, events = _quiet(rule, s, ts, ctx)
    hits = tuple(h for h in s.hits if ts - h < _window(rule))
    if x.kind == rule.event:
        hits += (ts,)
    s = dataclasses.replace(s, hits=hits)
    if not s.active and len(hits) >= rule.count:
        minutes = (ts - hits[0]) / 60000
        message = f"{len(hits)} × {x.kind.replace('_', ' ')} in {minutes:.1f} min"
        return dataclasses.replace(s, active=True), [
            *events,
            RuleEvent("raise", rule, ctx.device_id, x.at, float(len(hits)), message),
        ]
    return s, events


def on_time(rule: CountRule, s: CountState, now: datetime, ctx: RuleContext) -> Step[CountState]:
    return _quiet(rule, s, ms(now), ctx)


KIND = KindDef(
    spec_type=CountRule,
    state_type=CountState,
    ordered="events",
    on_event=on_event,
    on_time=on_time,
)
