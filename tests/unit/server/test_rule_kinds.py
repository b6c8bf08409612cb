"""State, count, rate and night-flow rules, and the defrost-aware delay, on event time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.rules_spec import (
    CountRule,
    NightFlowRule,
    RateRule,
    Severity,
    StateRule,
    ThresholdRule,
)
from tests.unit.server.rule_driver import Driver

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 24, 20, 0, tzinfo=TZ)


def test_state_rule_door_open_too_long() -> None:
    rule = StateRule(
        rule="held_long",
        severity=Severity.WARNING,
        metric="door_open",
        equals=True,
        **{"for": timedelta(minutes=10)},
    )
    d = Driver(rule)
    kinds = []
    for minute, value in [
        (0, True),
        (5, True),
        (9, False),
        (10, True),
        (20, True),
        (21, True),
        (25, False),
    ]:
        ev = d.reading(value, T0 + timedelta(minutes=minute))
        kinds += [(e.kind, round((e.at - T0).total_seconds() / 60)) for e in ev]
    assert kinds == [("raise", 20), ("clear", 25)]


def test_count_rule_invalid_cards_within_window() -> None:
    rule = CountRule(
        rule="cards",
        severity=Severity.WARNING,
        event="card_denied",
        count=5,
        window=timedelta(minutes=5),
    )
    d = Driver(rule)
    kinds = []
    # four denials spread over 8 minutes: never five within five minutes
    for i, minute in enumerate([0, 2, 4, 6, 8]):
        ev = d.event("card_denied", T0 + timedelta(minutes=minute), f"a{i}")
        kinds += [e.kind for e in ev]
    assert kinds == []
    for i in range(5):  # a burst
        ev = d.event("card_denied", T0 + timedelta(minutes=20, seconds=10 * i), f"b{i}")
        kinds += [e.kind for e in ev]
    assert kinds == ["raise"]
    ev = d.event("card_granted", T0 + timedelta(minutes=26), "c")
    # The window after the last denial ran out at 25:40: the clear is dated then.
    assert [(e.kind, e.at) for e in ev] == [("clear", T0 + timedelta(minutes=25, seconds=40))]


def test_count_rule_clears_on_the_clock_when_no_event_follows() -> None:
    rule = CountRule(
        rule="cards",
        severity=Severity.WARNING,
        event="card_denied",
        count=2,
        window=timedelta(minutes=5),
    )
    d = Driver(rule)
    d.event("card_denied", T0)
    assert [e.kind for e in d.event("card_denied", T0 + timedelta(minutes=1))] == ["raise"]
    assert d.time(T0 + timedelta(minutes=5, seconds=59)) == []
    ev = d.time(T0 + timedelta(minutes=6))
    assert [(e.kind, e.at) for e in ev] == [("clear", T0 + timedelta(minutes=6))]


def test_rate_rule_freezer_warming_fast() -> None:
    rule = RateRule(
        rule="warming",
        severity=Severity.WARNING,
        metric="temperature",
        rising_per_hour=4.0,
        window=timedelta(minutes=30),
    )
    d = Driver(rule)
    kinds = []
    temps = [-20.0, -19.9, -19.8, -19.9, -18.0, -16.5, -15.0] + [-15.0] * 8
    for i, t in enumerate(temps):  # every 5 minutes
        ev = d.reading(t, T0 + timedelta(minutes=5 * i))
        kinds += [(e.kind, i) for e in ev]
    assert kinds[0] == ("raise", 4)  # +2 °C in 20 min = 6 °C/h
    assert kinds[-1][0] == "clear"


def test_defrost_extends_the_delay_of_a_breach_that_starts_after_it() -> None:
    rule = ThresholdRule(
        rule="warm",
        severity=Severity.WARNING,
        metric="temperature",
        above=5.0,
        **{"for": timedelta(minutes=30)},
        after_event="defrost_started",
        after_event_for=timedelta(minutes=60),
    )
    d = Driver(rule, tz=TZ)
    d.event("defrost_started", T0 - timedelta(minutes=5))
    raised = []
    for minute in range(0, 70, 5):
        ev = d.reading(6.5, T0 + timedelta(minutes=minute), "°C")
        raised += [minute for e in ev if e.kind == "raise"]
    assert raised == [60]
    plain = Driver(rule, tz=TZ)
    plain.reading(6.5, T0, "°C")
    ev = plain.reading(6.5, T0 + timedelta(minutes=30), "°C")
    assert [e.kind for e in ev] == ["raise"]  # no defrost: the normal 30 min


LEAK = NightFlowRule(rule="night_leak", severity=Severity.WARNING, metric="volume")


def night(
    day: datetime,
    start: float,
    per_quarter: float,
    dry_hour: int | None = None,
    missing_hour: int | None = None,
) -> list[tuple[datetime, float]]:
    """A recorded night: cumulative volume every 15 min from 22:00 to 08:00 local."""
    out = []
    volume = start
    t = day.replace(hour=22, minute=0)
    while t <= day.replace(hour=8) + timedelta(days=1):
        local_hour = t.hour
        if local_hour != dry_hour:
            volume += per_quarter
        if local_hour != missing_hour:
            out.append((t, round(volume, 4)))
        t += timedelta(minutes=15)
    return out


def run_nights(
    series: list[tuple[datetime, float]], d: Driver | None = None
) -> tuple[Driver, list[tuple[str, str]]]:
    d = d or Driver(LEAK, tz=TZ)
    events: list[tuple[str, str]] = []
    for at, v in series:
        ev = d.reading(v, at)
        events += [(e.kind, at.astimezone(TZ).strftime("%m-%d %H:%M")) for e in ev]
    return d, events


def test_flow_in_every_night_hour_is_judged_a_leak_at_seven() -> None:
    _, events = run_nights(night(T0, 100.0, 0.01))
    assert events == [("raise", "11-25 07:00")]


def test_a_night_with_a_zero_flow_hour_raises_nothing() -> None:
    _, events = run_nights(night(T0, 100.0, 0.01, dry_hour=3))
    assert events == []


def test_a_night_with_an_hour_without_readings_is_unknown_not_clean() -> None:
    s, events = run_nights(night(T0, 100.0, 0.01))
    assert events[0][0] == "raise"
    day2 = T0 + timedelta(days=1)
    s, events = run_nights(night(day2, 200.0, 0.01, missing_hour=2), s)
    assert events == [] and s.state["active"] and s.state.get("clean", 0) == 0


def test_leak_clears_after_two_clean_nights() -> None:
    s, events = run_nights(night(T0, 100.0, 0.01))
    for i in (1, 2):
        s, more = run_nights(night(T0 + timedelta(days=i), 100.0 + i, 0.01, dry_hour=2), s)
        events += more
    assert [k for k, _ in events] == ["raise", "clear"]
    assert events[1][1] == "11-27 07:00"


def test_night_replayed_in_one_burst_gives_the_same_judgement() -> None:
    series = night(T0, 100.0, 0.01)
    s, events = run_nights(series)
    before = dict(s.state)
    again, more = run_nights(series, s)
    assert more == [] and events == [("raise", "11-25 07:00")] and again.state == before
