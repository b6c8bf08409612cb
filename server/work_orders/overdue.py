"""Orders past their repair deadline: each open one is told once (a WorkOrderOverdue event
the notifier routes to its assignee's own channel and the lead's roles) and marked, so a
restart or the next tick never tells it again. Runs on its own ticker for the app's
lifetime; `tick(now)` is the whole job, so tests drive it on a manual clock."""

from __future__ import annotations

from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from server.events.bus import EventBus
from server.events.types import DomainEvent, WorkOrderOverdue
from server.lifespan import tick_with_app
from server.work_orders.model import Status, WorkOrder, WorkOrderEvent
from server.work_orders.service import snapshot

CLOSED = (Status.RESOLVED, Status.VERIFIED)


def mark_overdue(s: Session, now: datetime, events: list[DomainEvent]) -> int:
    """Open orders whose repair deadline has passed and that were not told yet: marked, a
    line in their history, and one event each. Returns how many."""
    found = s.scalars(
        select(WorkOrder).where(
            WorkOrder.due_at <= now,
            WorkOrder.status.notin_(CLOSED),
            WorkOrder.overdue_notified_at.is_(None),
        )
    ).all()
    for wo in found:
        wo.overdue_notified_at = now
        wo.history.append(
            WorkOrderEvent(
                at=now,
                actor="system",
                from_status=wo.status,
                to_status=wo.status,
                comment=f"past its repair deadline ({wo.due_at.isoformat()}); assignee and "
                "lead told",
            )
        )
        events.append(WorkOrderOverdue(at=now, order=snapshot(wo)))
    return len(found)


class OverdueWatch:
    def __init__(self, sessions: sessionmaker[Session], bus: EventBus, clock: Clock) -> None:
        self.sessions = sessions
        self.bus = bus
        self.clock = clock

    def tick(self, now: datetime | None = None) -> None:
        events: list[DomainEvent] = []
        with self.sessions.begin() as s:
            mark_overdue(s, now or self.clock.now(), events)
        self.bus.publish_all(events)


def install(app: FastAPI, watch: OverdueWatch, every_s: float | None) -> None:
    """Run the watch's ticker for the app's lifetime (one call from server/app.py); `every_s`
    None: no ticker (tests call `tick(now)`). The watch is `app.state.overdue`."""
    app.state.overdue = watch
    tick_with_app(app, watch.tick, every_s)
