"""Alert lifecycle: raise (once per device and rule), acknowledge, resolve, with history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.alerts.model import Alert, AlertEvent, AlertState


class AlertStateError(ValueError):
    pass


def open_alert(session: Session, device_id: str, rule: str) -> Alert | None:
    return session.scalars(select(Alert).where(Alert.open_key == f"{device_id}|{rule}")).first()


def raise_alert(
    session: Session,
    *,
    device_id: str,
    rule: str,
    severity: str,
    at: datetime,
    message: str,
    value: float | None,
    building: str | None,
    device_class: str | None,
) -> tuple[Alert, bool]:
    """Returns (alert, created); an already open alert for the device and rule is reused."""
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
    return alert, True


def acknowledge(
    alert: Alert, *, actor: str, at: datetime, comment: str = "", assignee: str | None = None
) -> None:
    """Someone has it: stops escalation and reminders. The acknowledger takes the alert
    unless an assignee is named or it already has one."""
    if alert.state != AlertState.ACTIVE:
        raise AlertStateError(f"alert {alert.id} is {alert.state}, only active alerts are acked")
    alert.state = AlertState.ACKNOWLEDGED
    alert.acknowledged_at, alert.acknowledged_by = at, actor
    alert.history.append(AlertEvent(at=at, actor=actor, action="acknowledged", comment=comment))
    if assignee is not None or alert.assignee is None:
        assign(alert, actor=actor, at=at, assignee=assignee or actor)


def assign(alert: Alert, *, actor: str, at: datetime, assignee: str, comment: str = "") -> None:
    if alert.state == AlertState.RESOLVED:
        raise AlertStateError(f"alert {alert.id} is resolved; nothing to assign")
    alert.assignee = assignee
    note = f"assigned to {assignee}" + (f": {comment}" if comment else "")
    alert.history.append(AlertEvent(at=at, actor=actor, action="assigned", comment=note))


def resolve(
    alert: Alert, *, actor: str, at: datetime, comment: str = "", peak: float | None = None
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
