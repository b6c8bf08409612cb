"""Rate: a metric rising (or falling) faster than a limit per hour over a window raises; a
slower rate clears. Judged only over at least half a window of samples."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from core.rules_spec import RateRule
from server.rules.kind import KindDef, MetricSample, RuleContext, RuleEvent, RuleState, Step, ms


@dataclass(frozen=True, slots=True, kw_only=True)
class RateState(RuleState):
    samples: tuple[tuple[int, float], ...] = ()


def on_reading(rule: RateRule, s: RateState, x: MetricSample, ctx: RuleContext) -> Step[RateState]:
    value = x.number
    if value is None:
        return s, []
    ts = ms(x.at)
    window = rule.window.total_seconds() * 1000
    # Keep one sample older than the window so the span covers the whole window.
    recent = [p for p in s.samples if ts - p[0] <= window]
    older = [p for p in s.samples if ts - p[0] > window]
    samples = (*older[-1:], *recent, (ts, value))
    s = dataclasses.replace(s, samples=samples)
    t0, v0 = samples[0]
    span_ms = ts - t0
    if span_ms < window / 2:
        return s, []  # too short a span to judge a rate
    rate = (value - v0) / (span_ms / 3_600_000)
    limit = rule.rising_per_hour if rule.rising_per_hour is not None else rule.falling_per_hour
    assert limit is not None
    fast = rate > limit if rule.rising_per_hour is not None else rate < -limit
    u = f" {x.unit}" if x.unit else ""
    if fast and not s.active:
        message = f"{rule.metric} changing {rate:+.2f}{u}/h (limit {limit:g}{u}/h)"
        return dataclasses.replace(s, active=True), [
            RuleEvent("raise", rule, ctx.device_id, x.at, value, message)
        ]
    if not fast and s.active:
        message = f"{rule.metric} changing {rate:+.2f}{u}/h"
        return dataclasses.replace(s, active=False), [
            RuleEvent("clear", rule, ctx.device_id, x.at, value, message)
        ]
    return s, []


KIND = KindDef(
    spec_type=RateRule,
    state_type=RateState,
    ordered="readings",
    on_reading=on_reading,
    metric_of=lambda r: r.metric,
)
