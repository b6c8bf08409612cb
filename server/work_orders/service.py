"""Work-order lifecycle: open (from an alert or by hand), transitions, condition cleared."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.rules_spec import Priority, WorkOrderSpec
from server.alerts.model import Alert
from server.work_orders.model import Status, WorkOrder, WorkOrderEvent
from server.work_orders.sla import deadlines

# Allowed moves; verification (pass) and reopen (fail) are a person's decision.
TRANSITIONS: dict[Status, set[Status]] = {
    Status.OPEN: {Status.ASSIGNED, Status.IN_PROGRESS, Status.RESOLVED},
    Status.ASSIGNED: {Status.IN_PROGRESS, Status.ASSIGNED, Status.RESOLVED},
    Status.IN_PROGRESS: {Status.RESOLVED, Status.ASSIGNED},
    Status.RESOLVED: {Status.VERIFIED, Status.REOPENED},
    Status.REOPENED: {Status.ASSIGNED, Status.IN_PROGRESS, Status.RESOLVED},
    Status.VERIFIED: set(),
}
_PRIORITY_ORDER = {Priority.P1: 1, Priority.P2: 2, Priority.P3: 3}


class TransitionError(ValueError):
    pass


def _log(
    wo: WorkOrder, at: datetime, actor: str, to: str, comment: str, frm: str | None = None
) -> None:
    wo.history.append(
        WorkOrderEvent(at=at, actor=actor, from_status=frm, to_status=to, comment=comment)
    )


def open_from_alert(
    session: Session,
    *,
    alert: Alert,
    spec: WorkOrderSpec,
    location: str,
    at: datetime,
    tz: ZoneInfo,
    title: str | None = None,
) -> tuple[WorkOrder, bool]:
    """One open order per device and category: a second alert escalates it, not duplicates.

    Returns (order, created).
    """
    existing = session.scalars(
        select(WorkOrder).where(
            WorkOrder.device_id == alert.device_id,
            WorkOrder.category == spec.category,
            WorkOrder.source == "auto",
            WorkOrder.status.notin_([Status.RESOLVED, Status.VERIFIED]),
        )
    ).first()
    if existing is not None:
        if _PRIORITY_ORDER[spec.priority] < _PRIORITY_ORDER[Priority(existing.priority)]:
            old = existing.priority
            existing.priority = spec.priority.value
            existing.title = f"{alert.device_id}: {alert.rule.replace('_', ' ')}"
            existing.respond_due_at, existing.due_at = deadlines(
                spec.priority, existing.created_at, tz
            )
            _log(
                existing,
                at,
                "system",
                existing.status,
                f"escalated {old} -> {spec.priority.value} by alert #{alert.id} ({alert.rule})",
                existing.status,
            )
        existing.condition_cleared = False
        return existing, False
    respond, due = deadlines(spec.priority, at, tz)
    wo = WorkOrder(
        source="auto",
        device_id=alert.device_id,
        alert_id=alert.id,
        building=alert.building,
        location=location,
        category=spec.category,
        priority=spec.priority.value,
        status=Status.OPEN,
        title=title or f"{alert.device_id}: {alert.rule.replace('_', ' ')}",
        description=alert.message,
        created_at=at,
        respond_due_at=respond,
        due_at=due,
        reopen_count=0,
        condition_cleared=False,
    )
    _log(wo, at, "system", Status.OPEN, f"opened from alert ({alert.rule}): {alert.message}")
    session.add(wo)
    session.flush()
    return wo, True


def open_manual(
    session: Session,
    *,
    category: str,
    priority: Priority,
    title: str,
    description: str,
    location: str,
    building: str | None,
    requester: str,
    contact: str | None,
    device_id: str | None,
    at: datetime,
    tz: ZoneInfo,
) -> WorkOrder:
    respond, due = deadlines(priority, at, tz)
    wo = WorkOrder(
        source="manual",
        device_id=device_id,
        alert_id=None,
        building=building,
        location=location,
        category=category,
        priority=priority.value,
        status=Status.OPEN,
        title=title,
        description=description,
        requester=requester,
        contact=contact,
        created_at=at,
        respond_due_at=respond,
        due_at=due,
        reopen_count=0,
        condition_cleared=False,
    )
    _log(wo, at, requester, Status.OPEN, "reported")
    session.add(wo)
    session.flush()
    return wo


def mark_condition_cleared(wo: WorkOrder, at: datetime, why: str) -> None:
    if wo.status in (Status.VERIFIED,) or wo.condition_cleared:
        return
    wo.condition_cleared = True
    _log(wo, at, "system", wo.status, f"condition cleared: {why}", wo.status)


def transition(
    wo: WorkOrder,
    *,
    to: Status,
    actor: str,
    at: datetime,
    comment: str = "",
    assignee: str | None = None,
    satisfaction: int | None = None,
) -> None:
    current = Status(wo.status)
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise TransitionError(f"cannot go from {current} to {to}; allowed: {allowed}")
    if to is Status.ASSIGNED:
        if not assignee:
            raise TransitionError("assigning needs an 'assignee'")
        wo.assignee = assignee
    if to in (Status.ASSIGNED, Status.IN_PROGRESS) and wo.accepted_at is None:
        wo.accepted_at = at
    if to is Status.RESOLVED:
        if wo.accepted_at is None:
            wo.accepted_at = at
        wo.resolved_at = at
    if to is Status.VERIFIED:
        wo.verified_at = at
        if satisfaction is not None:
            wo.satisfaction = satisfaction
    if to is Status.REOPENED:
        wo.reopen_count += 1
        wo.resolved_at = None
    _log(wo, at, actor, to, comment, current)
    wo.status = to
