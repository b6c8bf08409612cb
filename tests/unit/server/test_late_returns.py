"""Entry after curfew (晚归): the building's curfew, changed by the site calendar for a
period or some weekdays, decides which night a card entry is late for; before curfew, in
the morning and on closed days nothing is recorded."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.site import SiteConfig
from server.dorms.late_returns import night_of

TZ = ZoneInfo("Asia/Shanghai")


def site(**calendar: Any) -> SiteConfig:
    return SiteConfig.model_validate(
        {
            "site": "t",
            "name": "Test campus",
            "timezone": "Asia/Shanghai",
            "buildings": [
                {"id": "dorm-a", "name": "A", "kind": "dorm"},  # default curfew
                {"id": "dorm-b", "name": "B", "kind": "dorm", "curfew": "22:30"},
                {"id": "staff", "name": "Staff flats", "kind": "dorm", "curfew": None},
                {"id": "late", "name": "Night shift", "kind": "dorm", "curfew": "00:30"},
                {"id": "canteen", "name": "Canteen", "kind": "canteen"},
            ],
            "devices": [],
            "calendar": calendar,
        }
    )


def at(day: int, hh: int, mm: int) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=TZ)  # 24 Nov 2026 is a Tuesday


@pytest.mark.parametrize(
    ("building", "when", "night"),
    [
        ("dorm-a", at(24, 22, 59), None),  # before the default 23:00
        ("dorm-a", at(24, 23, 0), date(2026, 11, 24)),
        ("dorm-a", at(25, 0, 40), date(2026, 11, 24)),  # after midnight: the same night
        ("dorm-a", at(25, 5, 0), None),  # morning
        ("dorm-b", at(24, 22, 45), date(2026, 11, 24)),  # its own, earlier curfew
        ("staff", at(24, 23, 45), None),  # no curfew at all
        ("canteen", at(24, 23, 45), None),
        ("late", at(24, 23, 50), None),  # a curfew after midnight: not yet
        ("late", at(25, 0, 20), None),
        ("late", at(25, 0, 40), date(2026, 11, 24)),  # the night that began the evening before
    ],
)
def test_late_entry_is_after_the_buildings_curfew_only(
    building: str, when: datetime, night: date | None
) -> None:
    assert night_of(site(), building, when) == night


def test_the_calendar_changes_the_curfew_for_weekdays_and_periods() -> None:
    s = site(
        curfews=[
            {"name": "Weekend", "curfew": "23:30", "weekdays": ["fri", "sat"]},
            {
                "name": "Exam week",
                "curfew": "22:00",
                "start": "2026-11-30",
                "end": "2026-12-04",
                "buildings": ["dorm-a"],
            },
        ]
    )
    assert s.building("dorm-a") is not None
    assert s.curfew_for("dorm-a", date(2026, 11, 24)) == time(23, 0)
    assert night_of(s, "dorm-a", at(27, 23, 15)) is None  # Friday: 23:30
    assert night_of(s, "dorm-a", at(27, 23, 35)) == date(2026, 11, 27)
    assert night_of(s, "dorm-a", at(28, 23, 15)) is None  # Saturday too
    assert night_of(s, "dorm-a", at(29, 23, 15)) == date(2026, 11, 29)  # Sunday: 23:00
    # Exam week, dorm A only (a Tuesday): 22:00; dorm B keeps its own 22:30.
    assert night_of(s, "dorm-a", at(30, 22, 10)) == date(2026, 11, 30)
    assert night_of(s, "dorm-b", at(30, 22, 10)) is None
    # A Friday in exam week: the later entry in the list wins.
    assert s.curfew_for("dorm-a", date(2026, 12, 4)) == time(22, 0)


def test_closed_days_keep_no_list() -> None:
    s = site(closures=[{"name": "Winter holidays", "start": "2026-11-24", "end": "2026-11-24"}])
    assert night_of(s, "dorm-a", at(24, 23, 30)) is None
    assert night_of(s, "dorm-a", at(25, 23, 30)) == date(2026, 11, 25)


def test_a_curfew_change_naming_an_unknown_building_is_refused() -> None:
    with pytest.raises(ValueError, match="curfew change 'Exams' names unknown building 'dorm-z'"):
        site(curfews=[{"name": "Exams", "curfew": "22:00", "buildings": ["dorm-z"]}])
