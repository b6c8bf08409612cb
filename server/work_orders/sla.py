"""Published service commitments: respond and repair deadlines by priority, and the campus
services' own (cleaning, greening) by category and priority.

Repairs, from published college logistics rules (shared/DOMAIN.md, "Repair service"):
P1 accept ≤ 10 min, on site ≤ 30 min, repair ≤ 24 h; P2 respond ≤ 2 h, repair ≤ 24 h;
P3 respond ≤ 24 h, repair ≤ 3 working days. Working days skip weekends and the days the
site calendar closes the order's building (holidays).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.rules_spec import Priority
from core.site import SiteConfig

ClosedDay = Callable[[date], bool]
"""Whether the site calendar closes the order's building on a (local) day."""


@dataclass(frozen=True, slots=True)
class Commitment:
    priority: Priority
    name: str
    examples: str
    respond: timedelta
    on_site: timedelta | None
    repair: timedelta | None  # calendar time
    repair_working_days: int | None = None


COMMITMENTS: dict[Priority, Commitment] = {
    Priority.P1: Commitment(
        Priority.P1,
        "Emergency (抢修)",
        "cold storage critical, forced door, burst pipe, power loss",
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(hours=24),
    ),
    Priority.P2: Commitment(
        Priority.P2,
        "Urgent (急修)",
        "cold storage warnings, door closer, controller offline",
        timedelta(hours=2),
        None,
        timedelta(hours=24),
    ),
    Priority.P3: Commitment(
        Priority.P3,
        "Routine (一般)",
        "leaks found overnight, meter offline, reported faults",
        timedelta(hours=24),
        None,
        None,
        repair_working_days=3,
    ),
}


# Cleaning (保洁) and greening (绿化) tasks opened by bin-fill and soil sensors have their own
# limits (own judgement, for a site to publish or change): a full bin is collected within
# 4 h and an overflowing one, or one not emptied the same day (日产日清), within 2 h; dry or
# waterlogged soil is seen to within a working day.
CATEGORY_COMMITMENTS: dict[str, dict[Priority, Commitment]] = {
    "cleaning": {
        Priority.P2: Commitment(
            Priority.P2,
            "Cleaning, urgent (保洁急)",
            "overflowing bin, bin not emptied the same day",
            timedelta(minutes=30),
            None,
            timedelta(hours=2),
        ),
        Priority.P3: Commitment(
            Priority.P3, "Cleaning (保洁)", "full bin", timedelta(hours=1), None, timedelta(hours=4)
        ),
    },
    "greening": {
        Priority.P2: Commitment(
            Priority.P2,
            "Greening, urgent (绿化急)",
            "irrigation failure flooding a bed",
            timedelta(hours=2),
            None,
            timedelta(hours=8),
        ),
        Priority.P3: Commitment(
            Priority.P3,
            "Greening (绿化)",
            "dry or waterlogged soil",
            timedelta(hours=4),
            None,
            None,
            repair_working_days=1,
        ),
    },
}


def commitment(priority: Priority, category: str | None = None) -> Commitment:
    """The limits an order of this priority and category is held to."""
    own = CATEGORY_COMMITMENTS.get(category or "", {})
    return own.get(priority, COMMITMENTS[priority])


def never_closed(_day: date) -> bool:
    return False


def closed_days(site: SiteConfig, building: str | None) -> ClosedDay:
    """The days the site calendar closes `building` (campus-wide closures included)."""
    return lambda day: site.calendar.facts(building, day).closed


def add_working_days(
    start: datetime, days: int, tz: ZoneInfo, closed: ClosedDay = never_closed
) -> datetime:
    """`days` working days after `start`, at the same time of day: weekends and the days
    `closed` says the building is closed do not count."""
    local = start.astimezone(tz)
    added = 0
    while added < days:
        local += timedelta(days=1)
        if local.weekday() < 5 and not closed(local.date()):
            added += 1
    return local.astimezone(start.tzinfo)


def deadlines(
    priority: Priority,
    opened: datetime,
    tz: ZoneInfo,
    *,
    category: str | None = None,
    closed: ClosedDay = never_closed,
) -> tuple[datetime, datetime]:
    """(respond by, repaired by) for an order opened at `opened`."""
    c = commitment(priority, category)
    respond = opened + c.respond
    if c.repair is not None:
        return respond, opened + c.repair
    assert c.repair_working_days is not None
    return respond, add_working_days(opened, c.repair_working_days, tz, closed)
