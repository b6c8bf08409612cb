"""Event: a device event of a kind raises at once (door forced, tamper); its clear event (the
door closed) ends it. One open alert per device and rule: repeats are counted there."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from core.rules_spec import EventRule
from server.rules.kind import EventSample, KindDef, RuleContext, RuleEvent, RuleState, Step


@dataclass(frozen=True, slots=True, kw_only=True)
class EventState(RuleState):
    pass


def on_event(rule: EventRule, s: EventState, x: EventSample, ctx: RuleContext) -> Step[EventState]:
    what = x.kind.replace("_", " ")
    if x.kind == rule.event:
        if s.active:
            return s, []
        return dataclasses.replace(s, active=True), [
            RuleEvent("raise", rule, ctx.device_id, x.at, None, what)
        ]
    if rule.clear_event is not None and x.kind == rule.clear_event and s.active:
        return dataclasses.replace(s, active=False), [
            RuleEvent("clear", rule, ctx.device_id, x.at, None, what)
        ]
    return s, []


KIND = KindDef(spec_type=EventRule, state_type=EventState, ordered="events", on_event=on_event)
