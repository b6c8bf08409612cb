"""Night flow: a cumulative meter showing flow in every hour of a night window is a suspected
leak. Judged once the window is over (at `judge_at` local time, on event time); cleared after
`clean_nights` nights with a zero-flow hour. An hour without readings is unknown, never clean.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from core.rules_spec import NightFlowRule
from server.rules.kind import KindDef, MetricSample, RuleContext, RuleEvent, RuleState, Step


@dataclass(frozen=True, slots=True, kw_only=True)
class NightState(RuleState):
    night: str | None = None  # local date of the night being collected
    judged: bool = False
    base: float | None = None  # the meter before the window opened
    hours: dict[str, float] = dataclasses.field(default_factory=dict)  # local hour -> meter
    last_value: float | None = None
    clean: int = 0  # nights in a row with a zero-flow hour


def _judge(rule: NightFlowRule, s: NightState, at: datetime, ctx: RuleContext) -> Step[NightState]:
    s = dataclasses.replace(s, judged=True)
    prev = s.base
    flows: list[float | None] = []
    for h in range(rule.start_hour, rule.end_hour):
        current = s.hours.get(str(h))
        flows.append(None if current is None or prev is None else current - prev)
        if current is not None:
            prev = current
    if any(f is not None and f <= rule.min_flow for f in flows):
        s = dataclasses.replace(s, clean=s.clean + 1)
        if s.active and s.clean >= rule.clean_nights:
            message = f"{s.clean} nights with a zero-flow hour"
            return dataclasses.replace(s, active=False), [
                RuleEvent("clear", rule, ctx.device_id, at, None, message)
            ]
        return s, []
    known = [f for f in flows if f is not None]
    if flows and len(known) == len(flows):
        s = dataclasses.replace(s, clean=0)
        lowest = min(known)
        if not s.active:
            message = (
                f"flow in every hour {rule.start_hour:02d}:00–{rule.end_hour:02d}:00 "
                f"(lowest {lowest:g} per hour): suspected leak"
            )
            return dataclasses.replace(s, active=True), [
                RuleEvent("raise", rule, ctx.device_id, at, lowest, message)
            ]
    return s, []  # hours without readings: unknown, judged neither way


def on_reading(
    rule: NightFlowRule, s: NightState, x: MetricSample, ctx: RuleContext
) -> Step[NightState]:
    value = x.number
    if value is None:
        return s, []
    local = x.at.astimezone(ctx.tz)
    day = local.date().isoformat()
    events: list[RuleEvent] = []
    if s.night != day:
        if s.night is not None and not s.judged:
            s, judged = _judge(rule, s, x.at, ctx)
            events += judged
        s = dataclasses.replace(s, night=day, judged=False, base=s.last_value, hours={})
    if rule.start_hour <= local.hour < rule.end_hour:
        s = dataclasses.replace(s, hours={**s.hours, str(local.hour): value})
    s = dataclasses.replace(s, last_value=value)
    if local.hour >= rule.judge_at_hour and not s.judged:
        s, judged = _judge(rule, s, x.at, ctx)
        events += judged
    return s, events


KIND = KindDef(
    spec_type=NightFlowRule,
    state_type=NightState,
    ordered="readings",
    on_reading=on_reading,
    metric_of=lambda r: r.metric,
)
