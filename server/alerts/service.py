"""Alert lifecycle: raise (once per device and rule), acknowledge, assign, resolve, with
history. Each change appends its domain event to `events`, which the caller publishes after
its commit: a change and its event are written here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.alerts.model import Alert, AlertEvent, AlertState
from server.events.types import (
    AlertAcknowledged,
    AlertAssigned,
    AlertRaised,
    AlertResolved,
    AlertSnapshot,
    DomainEvent,
)


def snapshot(a: Alert) -> AlertSnapshot:
    return AlertSnapshot(
        id=a.id,
        device_id=a.device_id,
        building=a.building,
        device_class=a.device_class,
        rule=a.rule,
        severity=a.severity,
        state=a.state,
        message=a.message,
        raised_at=a.raised_at,
        value=a.value,
        peak=a.peak,
        acknowledged_at=a.acknowledged_at,
        acknowledged_by=a.acknowledged_by,
        resolved_at=a.resolved_at,
        resolved_by=a.resolved_by,
        assignee=a.assignee,
        work_order_id=a.work_order_id,
        condition_unknown=a.condition_unknown,
    )


class AlertStateError(ValueError):
    pass


def open_alert(session: Session, device_id: str, rule: str) -> Alert | None:
    return session.scalars(select(Alert).where(Alert.open_key == f"{device_id}|{rule}")).first()


def raise_alert(
    session: Session,
    events: list[DomainEvent],
    *,
    device_id: str,
    rule: str,
    severity: str,
    at: datetime,
    message: str,
    value: float | None,
    building: str | None,
    device_class: str | None,
    follow_up: Callable[[Alert], None] | None = None,
) -> tuple[Alert, bool]:
    """Returns (alert, created); an already open alert for the device and rule is reused.
    `follow_up` runs on a new alert before its AlertRaised event is taken (it opens the work
    order), so listeners see the alert whole."""
    existing = open_alert(session, device_id, rule)
    if existing is not None:
        return existing, False
    alert = Alert(
        device_id=device_id,
        rule=rule,
        severity=severity,
        state=AlertState.ACTIVE,
        message=message,
        raised_at=at,
        value=value,
        peak=value,
        building=building,
        device_class=device_class,
        open_key=f"{device_id}|{rule}",
        condition_unknown=False,
    )
    alert.history.append(AlertEvent(at=at, actor="system", action="raised", comment=message))
    session.add(alert)
    session.flush()
    if follow_up is not None:
        follow_up(alert)
    events.append(AlertRaised(at=at, alert=snapshot(alert)))
    return alert, True


def acknowledge(
    alert: Alert,
    events: list[DomainEvent],
    *,
    actor: str,
    at: datetime,
    comment: str = "",
    assignee: str | None = None,
) -> None:
    """Someone has it: stops escalation and reminders. The acknowledger takes the alert
    unless an assignee is named or it already has one."""
    if alert.state != AlertState.ACTIVE:
        raise AlertStateError(f"alert {alert.id} is {alert.state}, only active alerts are acked")
    alert.state = AlertState.ACKNOWLEDGED
    alert.acknowledged_at, alert.acknowledged_by = at, actor
    alert.history.append(AlertEvent(at=at, actor=actor, action="acknowledged", comment=comment))
    if assignee is not None or alert.assignee is None:
        _assign(alert, actor=actor, at=at, assignee=assignee or actor)
    events.append(AlertAcknowledged(at=at, alert=snapshot(alert), actor=actor))


def assign(
    alert: Alert,
    events: list[DomainEvent],
    *,
    actor: str,
    at: datetime,
    assignee: str,
    comment: str = "",
) -> None:
    _assign(alert, actor=actor, at=at, assignee=assignee, comment=comment)
    events.append(AlertAssigned(at=at, alert=snapshot(alert), actor=actor))


def _assign(alert: Alert, *, actor: str, at: datetime, assignee: str, comment: str = "") -> None:
    if alert.state == AlertState.RESOLVED:
        raise AlertStateError(f"alert {alert.id} is resolved; nothing to assign")
    alert.assignee = assignee
    note = f"assigned to {assignee}" + (f": {comment}" if comment else "")
    alert.history.append(AlertEvent(at=at, actor=actor, action="assigned", comment=note))


def resolve(
    alert: Alert,
    events: list[DomainEvent],
    *,
    actor: str,
    at: datetime,
    comment: str = "",
    peak: float | None = None,
) -> None:
    if alert.state == AlertState.RESOLVED:
        raise AlertStateError(f"alert {alert.id} is already resolved")
    alert.state = AlertState.RESOLVED
    alert.resolved_at, alert.resolved_by = at, actor
    alert.open_key = None
    alert.condition_unknown = False
    if peak is not None:
        alert.peak = peak
    alert.history.append(AlertEvent(at=at, actor=actor, action="resolved", comment=comment))
    events.append(AlertResolved(at=at, alert=snapshot(alert), actor=actor))
