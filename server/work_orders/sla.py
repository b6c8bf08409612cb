"""Published service commitments: respond and repair deadlines by priority.

Defaults from published college logistics rules (shared/DOMAIN.md, "Repair service"):
P1 accept ≤ 10 min, on site ≤ 30 min, repair ≤ 24 h; P2 respond ≤ 2 h, repair ≤ 24 h;
P3 respond ≤ 24 h, repair ≤ 3 working days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from core.rules_spec import Priority


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


def add_working_days(start: datetime, days: int, tz: ZoneInfo) -> datetime:
    """Weekends are skipped; a site calendar with holidays comes with the school calendar."""
    local = start.astimezone(tz)
    added = 0
    while added < days:
        local += timedelta(days=1)
        if local.weekday() < 5:
            added += 1
    return local.astimezone(start.tzinfo)


def deadlines(priority: Priority, opened: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    c = COMMITMENTS[priority]
    respond = opened + c.respond
    if c.repair is not None:
        return respond, opened + c.repair
    assert c.repair_working_days is not None
    return respond, add_working_days(opened, c.repair_working_days, tz)
