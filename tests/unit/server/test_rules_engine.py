"""Threshold delay and hysteresis, events, offline, all on event time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.rules_spec import EventRule, OfflineRule, Severity, ThresholdRule
from server.rules.engine import (
    evaluate_event,
    evaluate_offline,
    evaluate_threshold,
    offline_back,
)

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
WARM = ThresholdRule(
    rule="temp_high",
    severity=Severity.WARNING,
    metric="temperature",
    above=5.0,
    **{"for": timedelta(minutes=30)},
    clear_below=4.0,
    clear_for=timedelta(minutes=10),
)


def run(rule: ThresholdRule, series: list[tuple[int, float]], state=None):  # type: ignore[no-untyped-def]
    state = state or {}
    out = []
    for minute, value in series:
        state, events = evaluate_threshold(rule, state, "f1", value, T0 + timedelta(minutes=minute))
        out += [(e.kind, minute) for e in events]
    return state, out


def test_breach_shorter_than_the_delay_raises_nothing() -> None:
    _, events = run(WARM, [(0, 6.0), (10, 7.0), (29, 6.5), (31, 4.5)])
    assert events == []


def test_breach_for_the_whole_delay_raises_once() -> None:
    _, events = run(WARM, [(0, 6.0), (15, 7.0), (30, 6.5), (45, 8.0)])
    assert events == [("raise", 30)]


def test_clear_needs_the_clear_level_for_the_clear_time() -> None:
    series = [(0, 6.0), (30, 6.0), (31, 4.5), (40, 3.9), (45, 4.2), (50, 3.8), (60, 3.5)]
    _, events = run(WARM, series)
    # 4.5 is under the limit but above the clear level; 4.2 breaks the clear streak.
    assert events == [("raise", 30), ("clear", 60)]


def test_replayed_and_duplicate_readings_change_nothing() -> None:
    series = [(0, 6.0), (30, 6.0)]
    state, events = run(WARM, series)
    again, more = run(WARM, series, state)
    assert events == [("raise", 30)] and more == [] and again == state


def test_state_is_plain_json_so_a_restart_resumes_a_half_elapsed_delay() -> None:
    import json

    state, _ = run(WARM, [(0, 6.0), (15, 6.0)])
    restored = json.loads(json.dumps(state))
    _, events = run(WARM, [(30, 6.0)], restored)
    assert events == [("raise", 30)]


def test_below_rule_with_hysteresis() -> None:
    cold = ThresholdRule(
        rule="too_cold",
        severity=Severity.CRITICAL,
        metric="temperature",
        below=0.0,
        clear_above=1.0,
    )
    _, events = run(cold, [(0, 0.5), (1, -0.2), (2, 0.5), (3, 1.2)])
    assert events == [("raise", 1), ("clear", 3)]


def test_event_rule_raises_at_once_and_clears_on_its_clear_event() -> None:
    rule = EventRule(
        rule="held", severity=Severity.WARNING, event="door_held_open", clear_event="door_closed"
    )
    s: dict = {}
    kinds = []
    for i, kind in enumerate(
        ["door_opened", "door_held_open", "door_held_open", "door_closed", "door_closed"]
    ):
        s, ev = evaluate_event(rule, s, "d1", kind, f"e{i}", T0 + timedelta(seconds=i))
        kinds += [e.kind for e in ev]
    assert kinds == ["raise", "clear"]
    s2, ev = evaluate_event(rule, s, "d1", "door_held_open", "e1", T0 + timedelta(seconds=1))
    assert ev == [] and s2 == s  # redelivered old event


def test_offline_raises_after_silence_and_only_data_clears_it() -> None:
    rule = OfflineRule(rule="offline", severity=Severity.WARNING, after=timedelta(minutes=30))
    s, ev = evaluate_offline(rule, {}, "f1", T0, T0 + timedelta(minutes=29))
    assert ev == []
    s, ev = evaluate_offline(rule, s, "f1", T0, T0 + timedelta(minutes=31))
    assert [e.kind for e in ev] == ["raise"] and ev[0].at == T0 + timedelta(minutes=30)
    s, ev = evaluate_offline(rule, s, "f1", T0, T0 + timedelta(minutes=90))
    assert ev == []
    s, ev = offline_back(rule, s, "f1", T0 + timedelta(minutes=91))
    assert [e.kind for e in ev] == ["clear"]
