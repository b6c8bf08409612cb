"""Pure rule evaluation on event time: (rule, state, input) -> (state, events). No I/O.

State is a JSON-able dict persisted per device and rule, so a half-elapsed delay survives a
restart, and a burst replayed after an outage yields the alerts live data would have.
Inputs at or before the last one seen are ignored, which makes redelivery harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from core.readings import Value
from core.rules_spec import (
    CountRule,
    EventRule,
    NightFlowRule,
    OfflineRule,
    RateRule,
    RuleSpec,
    StateRule,
    ThresholdRule,
)

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RuleEvent:
    kind: Literal["raise", "clear"]
    rule: RuleSpec
    device_id: str
    at: datetime
    value: float | None
    message: str
    peak: float | None = None


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule may know beyond its own state: the site's zone, recent device events."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    last_events: dict[str, int] = field(default_factory=dict)  # event kind -> epoch ms


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def evaluate_threshold(
    rule: ThresholdRule,
    state: State,
    device_id: str,
    value: float,
    at: datetime,
    unit: str | None = None,
    ctx: RuleContext | None = None,
) -> tuple[State, list[RuleEvent]]:
    ts = _ms(at)
    if state.get("last_ts") is not None and ts <= state["last_ts"]:
        return state, []
    s = dict(state, last_ts=ts)
    events: list[RuleEvent] = []
    limit = rule.above if rule.above is not None else rule.below
    word = "above" if rule.above is not None else "below"
    u = f" {unit}" if unit else ""
    if not s.get("active"):
        if rule.breached(value):
            since = s.get("pending_since") or ts
            s["pending_since"] = since
            s["peak"] = value if s.get("peak") is None else _worse(rule, s["peak"], value)
            if ts - since >= _delay_ms(rule, since, ctx):
                s.update(active=True, clear_since=None, raised_ts=ts)
                minutes = (ts - since) / 60000
                events.append(
                    RuleEvent(
                        "raise",
                        rule,
                        device_id,
                        at,
                        value,
                        f"{rule.metric} {value:g}{u} {word} {limit:g}{u} for {minutes:.1f} min",
                        peak=s["peak"],
                    )
                )
        else:
            s.update(pending_since=None, peak=None)
        return s, events
    s["peak"] = value if s.get("peak") is None else _worse(rule, s["peak"], value)
    if rule.cleared(value):
        since = s.get("clear_since") or ts
        s["clear_since"] = since
        if ts - since >= rule.clear_for.total_seconds() * 1000:
            events.append(
                RuleEvent(
                    "clear",
                    rule,
                    device_id,
                    at,
                    value,
                    f"{rule.metric} back to {value:g}{u} for {(ts - since) / 60000:.1f} min",
                    peak=s["peak"],
                )
            )
            s.update(active=False, pending_since=None, clear_since=None, peak=None)
    else:
        s["clear_since"] = None
    return s, events


def _delay_ms(rule: ThresholdRule, since: int, ctx: RuleContext | None) -> float:
    delay = rule.for_
    if rule.after_event and rule.after_event_for is not None and ctx is not None:
        mark = ctx.last_events.get(rule.after_event)
        window = rule.after_event_window.total_seconds() * 1000
        if mark is not None and 0 <= since - mark <= window:
            delay = max(delay, rule.after_event_for)
    return delay.total_seconds() * 1000


def _worse(rule: ThresholdRule, a: float, b: float) -> float:
    return max(a, b) if rule.above is not None else min(a, b)


def evaluate_event(
    rule: EventRule, state: State, device_id: str, kind: str, event_id: str, at: datetime
) -> tuple[State, list[RuleEvent]]:
    key = [_ms(at), event_id]
    last = state.get("last")
    if last is not None and key <= last:
        return state, []
    s = dict(state, last=key)
    if kind == rule.event:
        if s.get("active"):
            return s, []  # one open alert per device and rule; repeats are counted there
        s["active"] = True
        return s, [RuleEvent("raise", rule, device_id, at, None, f"{kind.replace('_', ' ')}")]
    if rule.clear_event is not None and kind == rule.clear_event and s.get("active"):
        s["active"] = False
        return s, [RuleEvent("clear", rule, device_id, at, None, kind.replace("_", " "))]
    return s, []


def evaluate_offline(
    rule: OfflineRule, state: State, device_id: str, last_seen: datetime | None, now: datetime
) -> tuple[State, list[RuleEvent]]:
    """Time-driven: called on a tick with the wall clock and the device's last receive time."""
    if last_seen is None:
        return state, []  # never seen: shown as "no data yet", not an alarm at start-up
    silent = now - last_seen
    if not state.get("active") and silent >= rule.after:
        at = last_seen + rule.after
        minutes = silent.total_seconds() / 60
        return dict(state, active=True), [
            RuleEvent("raise", rule, device_id, at, None, f"no data for {minutes:.1f} min")
        ]
    return state, []


def offline_back(
    rule: OfflineRule, state: State, device_id: str, at: datetime
) -> tuple[State, list[RuleEvent]]:
    """Fresh data arrived: only that ends an offline alert."""
    if state.get("active"):
        return dict(state, active=False), [
            RuleEvent("clear", rule, device_id, at, None, "data received again")
        ]
    return state, []


def evaluate_state(
    rule: StateRule, state: State, device_id: str, value: Value, at: datetime
) -> tuple[State, list[RuleEvent]]:
    ts = _ms(at)
    if state.get("last_ts") is not None and ts <= state["last_ts"]:
        return state, []
    s = dict(state, last_ts=ts)
    held = value == rule.equals
    if not s.get("active"):
        if not held:
            s["pending_since"] = None
            return s, []
        since = s.get("pending_since") or ts
        s["pending_since"] = since
        if ts - since >= rule.for_.total_seconds() * 1000:
            s["active"] = True
            minutes = (ts - since) / 60000
            return s, [
                RuleEvent(
                    "raise",
                    rule,
                    device_id,
                    at,
                    None,
                    f"{rule.metric} = {value} for {minutes:.1f} min",
                )
            ]
        return s, []
    if not held:
        s.update(active=False, pending_since=None)
        return s, [RuleEvent("clear", rule, device_id, at, None, f"{rule.metric} = {value}")]
    return s, []


def evaluate_count(
    rule: CountRule, state: State, device_id: str, kind: str, event_id: str, at: datetime
) -> tuple[State, list[RuleEvent]]:
    """Called with every event of the device: matching ones count, any one may clear."""
    ts = _ms(at)
    key = [ts, event_id]
    if state.get("last") is not None and key <= state["last"]:
        return state, []
    s = dict(state, last=key)
    window = rule.window.total_seconds() * 1000
    hits = [h for h in s.get("hits", []) if ts - h < window]
    if kind == rule.event:
        hits.append(ts)
    s["hits"] = hits
    if not s.get("active") and len(hits) >= rule.count:
        s["active"] = True
        minutes = (ts - hits[0]) / 60000
        return s, [
            RuleEvent(
                "raise",
                rule,
                device_id,
                at,
                float(len(hits)),
                f"{len(hits)} × {kind.replace('_', ' ')} in {minutes:.1f} min",
            )
        ]
    if s.get("active") and not hits:
        s["active"] = False
        return s, [
            RuleEvent(
                "clear",
                rule,
                device_id,
                at,
                None,
                f"no {rule.event.replace('_', ' ')} for a whole window",
            )
        ]
    return s, []


def evaluate_rate(
    rule: RateRule,
    state: State,
    device_id: str,
    value: float,
    at: datetime,
    unit: str | None = None,
) -> tuple[State, list[RuleEvent]]:
    ts = _ms(at)
    if state.get("last_ts") is not None and ts <= state["last_ts"]:
        return state, []
    window = rule.window.total_seconds() * 1000
    # Keep one sample older than the window so the span covers the whole window.
    samples = [p for p in state.get("samples", []) if ts - p[0] <= window] or []
    older = [p for p in state.get("samples", []) if ts - p[0] > window]
    if older:
        samples.insert(0, older[-1])
    samples.append([ts, value])
    s = dict(state, last_ts=ts, samples=samples)
    t0, v0 = samples[0]
    span_h = (ts - t0) / 3_600_000
    if span_h * 3_600_000 < window / 2:
        return s, []  # too short a span to judge a rate
    rate = (value - v0) / span_h
    limit = rule.rising_per_hour if rule.rising_per_hour is not None else rule.falling_per_hour
    assert limit is not None
    fast = rate > limit if rule.rising_per_hour is not None else rate < -limit
    u = f" {unit}" if unit else ""
    if fast and not s.get("active"):
        s["active"] = True
        return s, [
            RuleEvent(
                "raise",
                rule,
                device_id,
                at,
                value,
                f"{rule.metric} changing {rate:+.2f}{u}/h (limit {limit:g}{u}/h)",
            )
        ]
    if not fast and s.get("active"):
        s["active"] = False
        return s, [
            RuleEvent(
                "clear", rule, device_id, at, value, f"{rule.metric} changing {rate:+.2f}{u}/h"
            )
        ]
    return s, []


def evaluate_night_flow(
    rule: NightFlowRule,
    state: State,
    device_id: str,
    value: float,
    at: datetime,
    ctx: RuleContext,
) -> tuple[State, list[RuleEvent]]:
    """Cumulative meter readings in event-time order; see NightFlowRule for the judgement."""
    ts = _ms(at)
    if state.get("last_ts") is not None and ts <= state["last_ts"]:
        return state, []
    local = at.astimezone(ctx.tz)
    day = local.date().isoformat()
    s = dict(state, last_ts=ts)
    events: list[RuleEvent] = []
    if s.get("night") != day:
        if s.get("night") is not None and not s.get("judged"):
            events += _judge_night(rule, s, device_id, at)
        s.update(night=day, judged=False, base=s.get("last_value"), hours={})
    if rule.start_hour <= local.hour < rule.end_hour:
        s["hours"] = dict(s["hours"], **{str(local.hour): value})
    s["last_value"] = value
    if local.hour >= rule.judge_at_hour and not s.get("judged"):
        events += _judge_night(rule, s, device_id, at)
    return s, events


def _judge_night(rule: NightFlowRule, s: State, device_id: str, at: datetime) -> list[RuleEvent]:
    s["judged"] = True
    hours: dict[str, float] = s.get("hours", {})
    prev = s.get("base")
    flows: list[float | None] = []
    for h in range(rule.start_hour, rule.end_hour):
        current = hours.get(str(h))
        flows.append(None if current is None or prev is None else current - prev)
        if current is not None:
            prev = current
    if any(f is not None and f <= rule.min_flow for f in flows):
        s["clean"] = s.get("clean", 0) + 1
        if s.get("active") and s["clean"] >= rule.clean_nights:
            s["active"] = False
            return [
                RuleEvent(
                    "clear", rule, device_id, at, None, f"{s['clean']} nights with a zero-flow hour"
                )
            ]
        return []
    if flows and all(f is not None for f in flows):
        s["clean"] = 0
        lowest = min(f for f in flows if f is not None)
        if not s.get("active"):
            s["active"] = True
            return [
                RuleEvent(
                    "raise",
                    rule,
                    device_id,
                    at,
                    lowest,
                    f"flow in every hour {rule.start_hour:02d}:00–"
                    f"{rule.end_hour:02d}:00 (lowest {lowest:g} per hour): "
                    "suspected leak",
                )
            ]
    return []  # hours without readings: unknown, judged neither way


def evaluate_reading(
    rule: RuleSpec,
    state: State,
    device_id: str,
    value: Value,
    unit: str | None,
    at: datetime,
    ctx: RuleContext,
) -> tuple[State, list[RuleEvent]]:
    """One reading through any metric rule (threshold, state, rate, night flow)."""
    number = (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    )
    if isinstance(rule, StateRule):
        return evaluate_state(rule, state, device_id, value, at)
    if number is None:
        return state, []
    if isinstance(rule, ThresholdRule):
        return evaluate_threshold(rule, state, device_id, number, at, unit, ctx)
    if isinstance(rule, RateRule):
        return evaluate_rate(rule, state, device_id, number, at, unit)
    if isinstance(rule, NightFlowRule):
        return evaluate_night_flow(rule, state, device_id, number, at, ctx)
    return state, []


def evaluate_device_event(
    rule: RuleSpec, state: State, device_id: str, kind: str, event_id: str, at: datetime
) -> tuple[State, list[RuleEvent]]:
    if isinstance(rule, EventRule):
        return evaluate_event(rule, state, device_id, kind, event_id, at)
    if isinstance(rule, CountRule):
        return evaluate_count(rule, state, device_id, kind, event_id, at)
    return state, []


METRIC_RULES = (ThresholdRule, StateRule, RateRule, NightFlowRule)
EVENT_RULES = (EventRule, CountRule)


def offline_gap(
    rule: OfflineRule, state: State, device_id: str, previous: datetime, at: datetime
) -> tuple[State, list[RuleEvent]]:
    """Event-time view of silence: a gap in the data longer than `after` was an outage, even
    when it is only seen later in a replayed burst (live, the tick has raised it already)."""
    if state.get("active") or at - previous < rule.after:
        return state, []
    minutes = (at - previous).total_seconds() / 60
    return dict(state, active=True), [
        RuleEvent(
            "raise", rule, device_id, previous + rule.after, None, f"no data for {minutes:.1f} min"
        )
    ]
