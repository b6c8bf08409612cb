"""Time windows of rules (`when:`) on a manual clock: lesson-time CO2, the built-in curfew,
the calendar choosing the windows (holidays, terms, exam weeks), and what happens at a
window's edges (server/rules/windows.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.rules_spec import EventRule, OfflineRule, Severity, ThresholdRule
from core.site import SiteConfig
from server.rules.kind import RuleEvent
from server.rules.windows import SiteWindows, Windowed
from tests.unit.server.rule_driver import Driver

TZ = ZoneInfo("Asia/Shanghai")
MON = datetime(2026, 11, 23, tzinfo=TZ)  # a Monday in term


def at(day: datetime, hhmm: str) -> datetime:
    h, m = (int(p) for p in hhmm.split(":"))
    return day.replace(hour=h, minute=m)


def site(**calendar: Any) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": "t",
            "name": "t",
            "timezone": "Asia/Shanghai",
            "buildings": [
                {"id": "teach", "name": "教学楼", "kind": "teaching"},
                {"id": "dorm-a", "name": "A", "kind": "dorm", "curfew": "23:00"},
            ],
            "devices": [],
            "calendar": {
                "terms": [{"name": "autumn", "start": "2026-09-01", "end": "2027-01-15"}],
                "closures": [{"name": "holiday", "start": "2026-11-25", "end": "2026-11-25"}],
                "exam_weeks": [{"name": "exams", "start": "2026-11-30", "end": "2026-12-04"}],
                "schedules": {
                    "lessons": {
                        "periods": [
                            {"from": "08:00", "to": "12:00", "days": ["mon", "tue", "wed"]},
                            {"from": "14:00", "to": "17:00", "days": ["mon", "tue", "wed"]},
                        ],
                        "term_only": True,
                        "exam_weeks": [{"from": "09:00", "to": "11:00"}],
                    }
                },
                **calendar,
            },
        }
    )


CO2 = ThresholdRule.model_validate(
    {
        "rule": "co2_high",
        "kind": "threshold",
        "metric": "co2",
        "above": 1000,
        "for": "30m",
        "clear_below": 900,
        "severity": "warning",
        "when": "lessons",
    }
)
AFTER_CURFEW = EventRule(
    rule="door_after_curfew", severity=Severity.WARNING, event="door_opened", when="curfew"
)


def driver(rule: Any, building: str = "teach", s: SiteConfig | None = None) -> Driver:
    d = Driver(rule, tz=TZ)
    windows = SiteWindows(s or site())
    d.rule = Windowed(d.rule, windows.function(rule.when, building), windows.label(rule.when))
    return d


def told(events: list[RuleEvent]) -> list[tuple[str, str]]:
    return [(e.kind, e.at.astimezone(TZ).strftime("%m-%d %H:%M")) for e in events]


def feed(d: Driver, day: datetime, values: Sequence[tuple[str, float]]) -> list[RuleEvent]:
    out: list[RuleEvent] = []
    for hhmm, value in values:
        out += d.reading(value, at(day, hhmm))
    return out


def test_co2_rise_during_a_lesson_alerts_and_the_same_at_night_does_not() -> None:
    lesson = feed(driver(CO2), MON, [(f"09:{m:02d}", 1400) for m in range(0, 40, 5)])
    assert told(lesson) == [("raise", "11-23 09:30")]
    night = feed(driver(CO2), MON, [(f"21:{m:02d}", 1400) for m in range(0, 40, 5)])
    assert told(night) == []


def test_on_a_holiday_the_lesson_rule_stays_silent() -> None:
    wed = MON + timedelta(days=2)  # 2026-11-25, a closure in the calendar
    assert told(feed(driver(CO2), wed, [(f"09:{m:02d}", 1400) for m in range(0, 60, 5)])) == []
    tue = MON + timedelta(days=1)
    assert told(feed(driver(CO2), tue, [(f"09:{m:02d}", 1400) for m in range(0, 60, 5)])) == [
        ("raise", "11-24 09:30")
    ]


def test_outside_term_the_lesson_rule_stays_silent() -> None:
    summer = datetime(2026, 7, 6, tzinfo=TZ)  # a Monday, before the autumn term
    assert told(feed(driver(CO2), summer, [(f"09:{m:02d}", 1400) for m in range(0, 60, 5)])) == []


def test_exam_weeks_take_the_exam_periods_instead() -> None:
    exam_monday = MON + timedelta(days=7)
    d = driver(CO2)
    # 08:00-09:00 is a lesson on an ordinary Monday, not in an exam week.
    assert told(feed(d, exam_monday, [(f"08:{m:02d}", 1400) for m in range(0, 60, 5)])) == []
    assert told(feed(d, exam_monday, [(f"09:{m:02d}", 1400) for m in range(0, 35, 5)])) == [
        ("raise", "11-30 09:30")
    ]


def test_a_delay_running_at_the_windows_end_is_dropped() -> None:
    """Breach from 11:45 with a 30 min delay: the lesson ends at 12:00, before the deadline.
    Readings after 12:00 are ignored; the 14:00 lesson starts the delay afresh."""
    d = driver(CO2)
    before = feed(d, MON, [("11:45", 1400), ("11:55", 1400), ("12:05", 1400), ("13:50", 1400)])
    assert told(before) == []
    assert told(d.time(at(MON, "12:20"))) == []
    after = feed(d, MON, [("14:05", 1400), ("14:20", 1400), ("14:35", 1400)])
    assert told(after) == [("raise", "11-23 14:35")]


def test_a_deadline_exactly_at_the_end_does_not_fire() -> None:
    d = driver(CO2)
    assert told(feed(d, MON, [("11:30", 1400)])) == []
    assert told(d.time(at(MON, "12:00"))) == []
    assert d.state["_window"] == {"since": int(at(MON, "12:00").timestamp() * 1000)}


def test_a_deadline_inside_the_window_fires_at_its_time_then_clears_at_the_end() -> None:
    """One reading at 11:00 (a sensor reporting only on change), nothing more: the delay ran
    out at 11:30 inside the lesson; the alert ends with the lesson."""
    d = driver(CO2)
    assert told(feed(d, MON, [("11:00", 1400)])) == []
    events = d.time(at(MON, "12:01"))
    assert told(events) == [("raise", "11-23 11:30"), ("clear", "11-23 12:00")]
    assert events[1].message == "outside its hours (lessons) from 12:00"


def test_an_active_alert_clears_when_the_next_input_comes_after_the_end() -> None:
    """The same as live ticks would give, without ticks: as in a burst after an outage."""
    d = driver(CO2)
    values = [("10:50", 1400), ("11:20", 1400), ("12:10", 600), ("14:10", 1400)]
    assert told(feed(d, MON, values)) == [("raise", "11-23 11:20"), ("clear", "11-23 12:00")]


def test_late_input_for_a_judged_window_is_ignored() -> None:
    d = driver(CO2)
    feed(d, MON, [("11:40", 1400)])
    d.time(at(MON, "12:30"))  # the lesson is judged: nothing was due
    assert told(feed(d, MON, [("11:59", 1400)])) == []  # arrives late from a buffer
    assert told(d.time(at(MON, "13:00"))) == []


def test_door_opened_after_curfew_alerts_and_before_does_not() -> None:
    d = driver(AFTER_CURFEW, "dorm-a")
    assert told(d.event("door_opened", at(MON, "22:40"))) == []
    assert told(d.event("door_opened", at(MON, "23:20"))) == [("raise", "11-23 23:20")]
    # The curfew is over at 06:00: the alert ends, and day-time openings are nobody's concern.
    assert told(d.event("door_opened", at(MON + timedelta(days=1), "07:10"))) == [
        ("clear", "11-24 06:00")
    ]


def test_curfew_follows_the_calendars_curfew_changes() -> None:
    s = site(
        curfews=[{"name": "exams", "curfew": "22:00", "start": "2026-11-23", "end": "2026-11-23"}]
    )
    d = driver(AFTER_CURFEW, "dorm-a", s)
    assert told(d.event("door_opened", at(MON, "22:10"))) == [("raise", "11-23 22:10")]


def test_curfew_after_midnight_starts_the_next_day() -> None:
    s = site(curfews=[{"name": "late", "curfew": "00:30"}])
    d = driver(AFTER_CURFEW, "dorm-a", s)
    assert told(d.event("door_opened", at(MON, "23:50"))) == []
    tue = MON + timedelta(days=1)
    assert told(d.event("door_opened", at(tue, "00:40"))) == [("raise", "11-24 00:40")]


def test_schedule_names_and_kinds_are_checked() -> None:
    with pytest.raises(ValueError, match="silence has no hours"):
        OfflineRule.model_validate(
            {"rule": "o", "kind": "offline", "after": "5m", "severity": "warning", "when": "x"}
        )
    with pytest.raises(ValueError, match="'curfew' is built in"):
        site(schedules={"curfew": {"periods": [{"from": "22:00", "to": "06:00"}]}})
    calendar = site().calendar
    assert calendar.knows("lessons") and calendar.knows("curfew") and not calendar.knows("meals")
