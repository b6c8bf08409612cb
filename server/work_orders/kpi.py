"""Repair-service KPIs, as the logistics plan defines them (shared/DOMAIN.md):

- on-time rate (及时率) = orders resolved before their repair deadline / orders resolved
- pass rate (合格率) = orders verified with no rework / orders verified
- MTTA = mean(accepted - opened); MTTR = mean(resolved - opened)
- backlog = orders not yet resolved, by age
- satisfaction = mean 1-5 rating, and the share rating 4 or 5

Orders count in a period by when they were opened. Pure: takes rows, returns figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

BACKLOG_BUCKETS = (
    ("<1d", timedelta(days=1)),
    ("1-3d", timedelta(days=3)),
    ("3-7d", timedelta(days=7)),
    (">7d", timedelta.max),
)


class OrderLike(Protocol):
    status: str
    created_at: datetime
    due_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    verified_at: datetime | None
    reopen_count: int
    satisfaction: int | None


@dataclass(frozen=True, slots=True)
class Kpis:
    orders: int
    resolved: int
    resolved_on_time: int
    verified: int
    verified_first_time: int
    mtta_minutes: float | None
    mttr_hours: float | None
    backlog: dict[str, int]
    ratings: int
    satisfaction_mean: float | None
    satisfied: int

    def as_dict(self) -> dict[str, Any]:
        def rate(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        return {
            "orders": self.orders,
            "on_time_rate": rate(self.resolved_on_time, self.resolved),
            "resolved": self.resolved,
            "resolved_on_time": self.resolved_on_time,
            "pass_rate": rate(self.verified_first_time, self.verified),
            "verified": self.verified,
            "verified_first_time": self.verified_first_time,
            "mtta_minutes": self.mtta_minutes,
            "mttr_hours": self.mttr_hours,
            "backlog": self.backlog,
            "backlog_total": sum(self.backlog.values()),
            "satisfaction": {
                "ratings": self.ratings,
                "mean": self.satisfaction_mean,
                "share_4_or_5": rate(self.satisfied, self.ratings),
            },
            "targets": {"on_time_rate": 0.95, "pass_rate": 0.80, "share_4_or_5": 0.90},
        }


def compute(orders: Iterable[OrderLike], now: datetime) -> Kpis:
    rows = list(orders)
    resolved = [o for o in rows if o.resolved_at is not None]
    on_time = [o for o in resolved if o.resolved_at is not None and o.resolved_at <= o.due_at]
    verified = [o for o in rows if o.status == "verified"]
    first_time = [o for o in verified if o.reopen_count == 0]
    accepted = [o.accepted_at - o.created_at for o in rows if o.accepted_at is not None]
    repaired = [o.resolved_at - o.created_at for o in resolved if o.resolved_at is not None]
    backlog = {name: 0 for name, _ in BACKLOG_BUCKETS}
    for o in rows:
        if o.status in ("resolved", "verified"):
            continue
        age = now - o.created_at
        name = next(n for n, limit in BACKLOG_BUCKETS if age < limit)
        backlog[name] += 1
    ratings = [o.satisfaction for o in rows if o.satisfaction is not None]
    return Kpis(
        orders=len(rows),
        resolved=len(resolved),
        resolved_on_time=len(on_time),
        verified=len(verified),
        verified_first_time=len(first_time),
        mtta_minutes=round(sum(d.total_seconds() for d in accepted) / len(accepted) / 60, 2)
        if accepted
        else None,
        mttr_hours=round(sum(d.total_seconds() for d in repaired) / len(repaired) / 3600, 3)
        if repaired
        else None,
        backlog=backlog,
        ratings=len(ratings),
        satisfaction_mean=round(sum(ratings) / len(ratings), 2) if ratings else None,
        satisfied=sum(1 for r in ratings if r >= 4),
    )
