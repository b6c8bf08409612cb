"""Threshold delay and hysteresis, events, offline, all on event time; delays that run out
on the clock; the kind registry."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime, timedelta

from core.rules_spec import AnyRule, EventRule, OfflineRule, Severity, StateRule, ThresholdRule
from server.rules.kind import JsonState
from server.rules.kinds import KINDS, bind
from tests.unit.server.rule_driver import Driver

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


def minute_of(at: datetime) -> float:
    return (at - T0).total_seconds() / 60


def run(
    rule: ThresholdRule, series: list[tuple[int, float]], state: JsonState | None = None
) -> tuple[JsonState, list[tuple[str, float]]]:
    d = Driver(rule, state=state)
    out: list[tuple[str, float]] = []
    for minute, value in series:
        events = d.reading(value, T0 + timedelta(minutes=minute))
        out += [(e.kind, minute_of(e.at)) for e in events]
    return d.state, out


def test_breach_shorter_than_the_delay_raises_nothing() -> None:
    _, events = run(WARM, [(0, 6.0), (10, 7.0), (25, 6.5), (29, 4.5)])
    assert events == []
    # Back in range only after the deadline: at 30 the last word was still 6.5, so the delay
    # ran out then (on the clock, as live), even though the next reading is fine.
    _, events = run(WARM, [(0, 6.0), (10, 7.0), (29, 6.5), (31, 4.5)])
    assert events == [("raise", 30)]


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
    d = Driver(rule)
    kinds = []
    for i, kind in enumerate(
        ["door_opened", "door_held_open", "door_held_open", "door_closed", "door_closed"]
    ):
        ev = d.event(kind, T0 + timedelta(seconds=i), f"e{i}")
        kinds += [e.kind for e in ev]
    assert kinds == ["raise", "clear"]
    before = dict(d.state)
    ev = d.event("door_held_open", T0 + timedelta(seconds=1), "e1")
    assert ev == [] and d.state == before  # redelivered old event


def test_offline_raises_after_silence_and_only_data_clears_it() -> None:
    rule = OfflineRule(rule="offline", severity=Severity.WARNING, after=timedelta(minutes=30))
    d = Driver(rule)
    assert d.time(T0) == []  # never seen: no data yet, not an alarm
    d.reading(1.0, T0)
    assert d.time(T0 + timedelta(minutes=29)) == []
    ev = d.time(T0 + timedelta(minutes=31))
    assert [e.kind for e in ev] == ["raise"] and ev[0].at == T0 + timedelta(minutes=30)
    assert d.time(T0 + timedelta(minutes=90)) == []
    ev = d.reading(1.0, T0 + timedelta(minutes=91), previous_at=T0)
    assert [e.kind for e in ev] == ["clear"]


def test_offline_gap_seen_in_a_replayed_burst_is_an_outage_dated_at_its_start() -> None:
    rule = OfflineRule(rule="offline", severity=Severity.WARNING, after=timedelta(minutes=30))
    d = Driver(rule)
    d.reading(1.0, T0)
    ev = d.reading(1.0, T0 + timedelta(minutes=50), previous_at=T0)
    assert [(e.kind, minute_of(e.at)) for e in ev] == [("raise", 30), ("clear", 50)]


# -- delays on the clock (issue 10) --------------------------------------------------------

HOURLY_SILENCE = timedelta(hours=3)  # a sensor that reports hourly is offline after 3 h


def test_a_delay_runs_out_on_the_clock_when_the_sensor_reports_only_hourly() -> None:
    d = Driver(WARM, silence=HOURLY_SILENCE)
    assert d.reading(9.0, T0, "°C") == []
    assert d.time(T0 + timedelta(minutes=29)) == []
    ev = d.time(T0 + timedelta(minutes=31))
    assert [(e.kind, minute_of(e.at), e.value) for e in ev] == [("raise", 30, 9.0)]
    assert ev[0].message == "temperature 9 °C above 5 °C for 30.0 min"
    assert d.time(T0 + timedelta(minutes=40)) == []  # raised once
    # The next hourly reading still breaches: nothing new.
    assert d.reading(9.5, T0 + timedelta(minutes=60), "°C") == []


def test_a_clear_delay_runs_out_on_the_clock_too() -> None:
    d = Driver(WARM, silence=HOURLY_SILENCE)
    d.reading(9.0, T0)
    d.time(T0 + timedelta(minutes=30))
    assert d.reading(3.0, T0 + timedelta(minutes=60)) == []  # under the clear level, 10 min due
    ev = d.time(T0 + timedelta(minutes=75))
    assert [(e.kind, minute_of(e.at)) for e in ev] == [("clear", 70)]


def test_a_burst_gives_the_raise_the_clock_gave_live() -> None:
    live = Driver(WARM, silence=HOURLY_SILENCE)
    live.reading(9.0, T0)
    raised_live = live.time(T0 + timedelta(minutes=45))
    burst = Driver(WARM, silence=HOURLY_SILENCE)
    burst.reading(9.0, T0)
    raised_burst = burst.reading(9.0, T0 + timedelta(minutes=60))
    assert [(e.kind, e.at) for e in raised_burst] == [(e.kind, e.at) for e in raised_live]
    assert minute_of(raised_live[0].at) == 30


def test_no_raise_on_the_clock_once_the_device_went_silent_before_the_deadline() -> None:
    d = Driver(WARM, silence=timedelta(minutes=20))
    d.reading(9.0, T0)
    assert d.time(T0 + timedelta(hours=2)) == []  # unknown since 20 min: offline's to tell
    # It comes back, still warm: the breach has lasted since T0, so it raises now.
    ev = d.reading(9.0, T0 + timedelta(hours=2))
    assert [(e.kind, minute_of(e.at)) for e in ev] == [("raise", 120)]


def test_a_door_left_open_raises_when_its_time_is_up_without_another_report() -> None:
    rule = StateRule(
        rule="held_long",
        severity=Severity.WARNING,
        metric="door_open",
        equals=True,
        **{"for": timedelta(minutes=10)},
    )
    d = Driver(rule, silence=HOURLY_SILENCE)
    d.reading(True, T0)
    assert d.time(T0 + timedelta(minutes=9)) == []
    ev = d.time(T0 + timedelta(minutes=10))
    assert [(e.kind, minute_of(e.at)) for e in ev] == [("raise", 10)]
    ev = d.reading(False, T0 + timedelta(minutes=12))
    assert [e.kind for e in ev] == ["clear"]


def test_forgetting_a_suppressed_raise_lets_a_lasting_condition_raise_again() -> None:
    d = Driver(WARM)
    d.reading(9.0, T0)
    assert [e.kind for e in d.reading(9.0, T0 + timedelta(minutes=30))] == ["raise"]
    forgotten = d.rule.forget(d.state)
    assert forgotten is not None and forgotten["active"] is False
    d.state = forgotten
    ev = d.reading(9.0, T0 + timedelta(minutes=40))
    assert ev == []  # a fresh delay starts at 40
    assert [e.kind for e in d.reading(9.0, T0 + timedelta(minutes=70))] == ["raise"]


def test_state_written_by_the_previous_release_still_loads() -> None:
    old: JsonState = {
        "last_ts": int((T0 + timedelta(minutes=15)).timestamp() * 1000),
        "active": False,
        "pending_since": int(T0.timestamp() * 1000),
        "peak": 6.0,
    }
    d = Driver(WARM, state=old)
    assert d.reading(6.0, T0 + timedelta(minutes=15)) == []  # the same reading again: ignored
    assert [e.kind for e in d.reading(6.0, T0 + timedelta(minutes=30))] == ["raise"]


def test_every_rule_kind_has_exactly_one_evaluator() -> None:
    specs: list[AnyRule] = [
        ThresholdRule(rule="t", severity=Severity.INFO, metric="m", above=1.0),
        OfflineRule(rule="o", severity=Severity.INFO, after=timedelta(minutes=1)),
        EventRule(rule="e", severity=Severity.INFO, event="x"),
        StateRule(rule="s", severity=Severity.INFO, metric="m", equals=True),
    ]
    members = set(typing.get_args(AnyRule))
    assert len(KINDS) == len(members)
    for spec in specs:
        assert sum(k.bind(spec) is not None for k in KINDS) == 1
        assert bind(spec).spec is spec
