"""What the notifier reads of alerts and work orders between events: the active alerts
that time may escalate or remind about (tick), the current state of a subject whose
message is retried, and the escalation steps in an alert's history. Everything leaves here
as a snapshot; nothing else of the alert or work-order tables is touched."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.alerts.model import Alert, AlertEvent, AlertState
from server.alerts.service import snapshot as alert_snapshot
from server.events.types import AlertSnapshot, WorkOrderSnapshot
from server.work_orders.model import WorkOrder
from server.work_orders.service import snapshot as work_order_snapshot

ESCALATED = "escalated"  # the alert-history action of an escalation step


def alert_subject(alert_id: int) -> str:
    return f"alert:{alert_id}"


def work_order_subject(order_id: int) -> str:
    return f"wo:{order_id}"


def patrol_subject(round_id: int) -> str:
    return f"patrol:{round_id}"


def flap_key(alert: AlertSnapshot) -> str:
    """What a flapping alert repeats: its device and rule."""
    return f"{alert.device_id}|{alert.rule}"


def active_alerts(s: Session) -> list[tuple[AlertSnapshot, int]]:
    """Unacknowledged open alerts, each with the number of escalation steps taken."""
    alerts = s.scalars(select(Alert).where(Alert.state == AlertState.ACTIVE)).all()
    return [(alert_snapshot(a), sum(1 for e in a.history if e.action == ESCALATED)) for a in alerts]


def record_escalation(s: Session, alert_id: int, *, at: datetime, comment: str) -> None:
    s.add(AlertEvent(alert_id=alert_id, at=at, actor="system", action=ESCALATED, comment=comment))


def load(s: Session, subject: str) -> AlertSnapshot | WorkOrderSnapshot | None:
    """The subject ("alert:12", "wo:5") as it is now; None if unknown or gone."""
    kind, _, ident = subject.partition(":")
    if not ident.isdigit():
        return None
    if kind == "alert":
        alert = s.get(Alert, int(ident))
        return alert_snapshot(alert) if alert else None
    if kind == "wo":
        order = s.get(WorkOrder, int(ident))
        return work_order_snapshot(order) if order else None
    return None
