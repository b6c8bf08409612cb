"""Work-order lifecycle: open (from an alert or by hand), transitions, condition cleared.
Each change appends its domain event to `events`, published by the caller after its commit."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.roles import Role
from core.rules_spec import Priority, WorkOrderSpec
from server.alerts.model import Alert
from server.events.types import DomainEvent, WorkOrderChanged, WorkOrderOpened, WorkOrderSnapshot
from server.work_orders.model import Status, WorkOrder, WorkOrderEvent
from server.work_orders.sla import ClosedDay, deadlines, never_closed

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
# Who may make which move: the requester's side verifies or reopens; technicians do the rest.
_VERIFIERS = frozenset(
    {Role.ADMIN, Role.DORM_MANAGER, Role.FOOD_SAFETY, Role.CANTEEN_MANAGER, Role.MAINTENANCE}
)
_WORKERS = frozenset({Role.ADMIN, Role.MAINTENANCE})


def may_move(role: Role, to: Status) -> bool:
    return role in (_VERIFIERS if to in (Status.VERIFIED, Status.REOPENED) else _WORKERS)


def next_moves(status: str, role: Role) -> list[Status]:
    """The moves this role may make from `status` (what the UI offers as buttons)."""
    return sorted(to for to in TRANSITIONS[Status(status)] if may_move(role, to))


class TransitionError(ValueError):
    pass


def snapshot(wo: WorkOrder) -> WorkOrderSnapshot:
    return WorkOrderSnapshot(
        id=wo.id,
        source=wo.source,
        device_id=wo.device_id,
        device_class=wo.device_class,
        alert_id=wo.alert_id,
        building=wo.building,
        location=wo.location,
        category=wo.category,
        priority=wo.priority,
        status=wo.status,
        title=wo.title,
        description=wo.description,
        assignee=wo.assignee,
        created_at=wo.created_at,
        respond_due_at=wo.respond_due_at,
        due_at=wo.due_at,
        accepted_at=wo.accepted_at,
        resolved_at=wo.resolved_at,
        verified_at=wo.verified_at,
        reopen_count=wo.reopen_count,
        satisfaction=wo.satisfaction,
        condition_cleared=wo.condition_cleared,
    )


def _changed(
    events: list[DomainEvent], wo: WorkOrder, at: datetime, actor: str, frm: str | None
) -> None:
    events.append(WorkOrderChanged(at=at, order=snapshot(wo), actor=actor, from_status=frm))


def _log(
    wo: WorkOrder, at: datetime, actor: str, to: str, comment: str, frm: str | None = None
) -> None:
    wo.history.append(
        WorkOrderEvent(at=at, actor=actor, from_status=frm, to_status=to, comment=comment)
    )


def open_from_alert(
    session: Session,
    events: list[DomainEvent],
    *,
    alert: Alert,
    spec: WorkOrderSpec,
    location: str,
    at: datetime,
    tz: ZoneInfo,
    title: str | None = None,
    closed: ClosedDay = never_closed,
) -> tuple[WorkOrder, bool]:
    """One open order per device and category: a second alert escalates it, not duplicates.
    Deadlines follow the category's commitments and skip the days `closed` says the
    building is closed.

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
                spec.priority, existing.created_at, tz, category=spec.category, closed=closed
            )
            _log(
                existing,
                at,
                "system",
                existing.status,
                f"escalated {old} -> {spec.priority.value} by alert #{alert.id} ({alert.rule})",
                existing.status,
            )
        elif not existing.condition_cleared:
            return existing, False
        existing.condition_cleared = False  # the condition is back: the order is needed
        _changed(events, existing, at, "system", existing.status)
        return existing, False
    respond, due = deadlines(spec.priority, at, tz, category=spec.category, closed=closed)
    wo = WorkOrder(
        source="auto",
        device_id=alert.device_id,
        alert_id=alert.id,
        building=alert.building,
        device_class=alert.device_class,
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
    events.append(WorkOrderOpened(at=at, order=snapshot(wo)))
    return wo, True


def open_manual(
    session: Session,
    events: list[DomainEvent],
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
    device_class: str | None,
    at: datetime,
    tz: ZoneInfo,
    closed: ClosedDay = never_closed,
) -> WorkOrder:
    respond, due = deadlines(priority, at, tz, category=category, closed=closed)
    wo = WorkOrder(
        source="manual",
        device_id=device_id,
        alert_id=None,
        building=building,
        device_class=device_class,
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
    events.append(WorkOrderOpened(at=at, order=snapshot(wo)))
    return wo


def mark_condition_cleared(
    wo: WorkOrder, events: list[DomainEvent], at: datetime, why: str
) -> None:
    if wo.status in (Status.VERIFIED,) or wo.condition_cleared:
        return
    wo.condition_cleared = True
    _log(wo, at, "system", wo.status, f"condition cleared: {why}", wo.status)
    _changed(events, wo, at, "system", wo.status)


def transition(
    wo: WorkOrder,
    events: list[DomainEvent],
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
    _changed(events, wo, at, actor, current)
