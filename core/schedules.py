"""Times of day and days of the week a rule holds in (lessons, meal service, after curfew),
with the school calendar choosing which apply on a day. Pure: the windows of a day from a
schedule and what the calendar says about that day; the server's rule runner asks for the
window around an input's time (server/rules/windows.py).

A period belongs to the day it starts on: `{from: "22:00", to: "06:00", days: [fri]}` is
Friday night into Saturday morning, and the calendar is asked about Friday. Windows are
half-open, [from, to): a reading at 12:00 is outside a lesson ending at 12:00.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The built-in schedule: from each dorm's curfew that night (site.curfew_for, the calendar's
# curfew changes included) until the calendar's `curfew_ends` the next morning.
CURFEW = "curfew"
ScheduleName = str


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    start: time = Field(alias="from")
    end: time = Field(alias="to")  # at or before `from`: the period runs past midnight
    days: tuple[Weekday, ...] = ()  # the days it starts on; empty = every day

    def on(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
        if self.days and WEEKDAYS[day.weekday()] not in self.days:
            return None
        start = datetime.combine(day, self.start, tz)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return start, datetime.combine(end_day, self.end, tz)


class Schedule(BaseModel):
    """Named in the site calendar's `schedules` (or written inline in a rule's `when`).

    - `periods`: when it holds on a day it applies;
    - `term_only`: only on days inside one of the calendar's `terms`;
    - `closed_days`: on days the calendar closes the building (holidays) it does not hold
      (`skip`, the default) or holds as usual (`hold`);
    - `exam_weeks`: other periods for days inside the calendar's `exam_weeks` (exam sessions
      instead of lessons); absent: the same periods as any day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    periods: tuple[Period, ...] = Field(min_length=1)
    term_only: bool = False
    closed_days: Literal["skip", "hold"] = "skip"
    exam_weeks: tuple[Period, ...] | None = None


@dataclass(frozen=True, slots=True)
class DayFacts:
    """What the school calendar says about one day for one building."""

    in_term: bool
    closed: bool
    exam_week: bool


def periods_of(schedule: Schedule, day: date, facts: DayFacts) -> tuple[Period, ...]:
    """The periods that start on `day`, as the calendar selects them."""
    if schedule.term_only and not facts.in_term:
        return ()
    if facts.closed and schedule.closed_days == "skip":
        return ()
    if facts.exam_week and schedule.exam_weeks is not None:
        return schedule.exam_weeks
    return schedule.periods


def candidate_days(local: datetime) -> Iterator[date]:
    """The days a window holding `local` can have started on: the day before (a period
    past midnight), then the day itself."""
    yield local.date() - timedelta(days=1)
    yield local.date()
