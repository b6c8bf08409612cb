"""When a patrol route's rounds are due (巡查): pure, from the site file's `patrols` section
and calendar. The server judges rounds against scans (server/patrols/); the simulator's
guard walks them (firmware_sim/).

A night is named by the date of its evening. Round times before the route's first `from`
belong to the next morning, so "22:30, then every 2 h from 23:00 to 06:00" is one night of
rounds at 22:30, 23:00, 01:00, 03:00 and 05:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from core.site import PatrolRoute, SiteConfig


@dataclass(frozen=True, slots=True)
class PlannedRound:
    route: str
    building: str
    night: date
    number: int  # 1-based within the night
    starts_at: datetime
    due_at: datetime  # start + within + grace: scans up to here count for the round


def rounds_of_night(site: SiteConfig, route: PatrolRoute, night: date) -> list[PlannedRound]:
    """The route's rounds of the night, in time order; none on a day the calendar closes the
    building (unless the route holds on closed days)."""
    if route.closed_days == "skip" and site.calendar.facts(route.building, night).closed:
        return []
    tz = site.tz
    anchor = route.rounds[0].start
    starts: set[datetime] = set()
    for times in route.rounds:
        day = night if times.start >= anchor else night + timedelta(days=1)
        t = datetime.combine(day, times.start, tz)
        end_day = day if times.end > times.start else day + timedelta(days=1)
        end = datetime.combine(end_day, times.end, tz)
        while t < end:
            starts.add(t)
            t += times.every
    span = route.within + route.grace
    return [
        PlannedRound(route.id, route.building, night, n, start, start + span)
        for n, start in enumerate(sorted(starts), 1)
    ]


def nights_touching(site: SiteConfig, at: datetime) -> tuple[date, date]:
    """The nights whose rounds may be under way at `at`: the one that began the evening
    before and the one beginning on its day."""
    day = at.astimezone(site.tz).date()
    return day - timedelta(days=1), day


def route_of(site: SiteConfig, route_id: str) -> PatrolRoute | None:
    return next((r for r in site.patrols.routes if r.id == route_id), None)
