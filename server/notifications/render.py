"""The words of each notification: title and body of an alert's messages (raised,
acknowledged, resolved, escalated-N, reminder-N), of a new work order and of a digest, and
the escalation note kept in the alert's history. Pure: from snapshots and plain values; who
is told is routing.py's business, when is policy.py's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from server.events.types import AlertSnapshot, PatrolRoundMissed, WorkOrderSnapshot


@dataclass(frozen=True, slots=True)
class Text:
    title: str
    body: str


def alert_text(site_name: str, alert: AlertSnapshot, event: str) -> Text:
    what = f"{alert.device_id} {alert.rule.replace('_', ' ')}"
    kind, _, n = event.partition("-")
    if kind == "raised":
        verb = "ALERT"
    elif kind == "escalated":
        verb = f"ESCALATED (step {n}, not acknowledged)"
    elif kind == "reminder":
        verb = f"REMINDER {n} (not acknowledged)"
    elif kind == "acknowledged":
        verb = f"acknowledged by {alert.acknowledged_by or 'someone'}"
    else:
        verb = kind
    lines = [
        f"{site_name}, {alert.building or 'campus'}: {alert.message}",
        f"raised {alert.raised_at.isoformat()}; state {alert.state}; alert #{alert.id}",
    ]
    if alert.assignee:
        lines.append(f"assigned to {alert.assignee}")
    return Text(f"[{alert.severity}] {verb}: {what}", "\n".join(lines))


def work_order_text(site_name: str, order: WorkOrderSnapshot) -> Text:
    return Text(
        f"[{order.priority}] work order #{order.id}: {order.title or order.category}",
        f"{site_name}: {order.location}\ncategory {order.category}, "
        f"due {order.due_at.isoformat()}; source {order.source}",
    )


def overdue_text(site_name: str, order: WorkOrderSnapshot) -> Text:
    who = f"assigned to {order.assignee}" if order.assignee else "not assigned"
    return Text(
        f"[{order.priority}] OVERDUE work order #{order.id}: {order.title or order.category}",
        f"{site_name}: {order.location}\ncategory {order.category}, was due "
        f"{order.due_at.isoformat()}; status {order.status}, {who}",
    )


def patrol_text(site_name: str, event: PatrolRoundMissed) -> Text:
    what = "not done" if event.status == "missed" else "incomplete"
    missing = ", ".join(event.missing)
    return Text(
        f"[patrol] round {event.number} of {event.route_name} {what}",
        f"{site_name}, {event.building}: round {event.number} of the night of "
        f"{event.night.isoformat()} ({event.starts_at.isoformat()} until "
        f"{event.due_at.isoformat()}) {what}; checkpoints not scanned: {missing}",
    )


def digest_text(titles: Sequence[str], max_per_hour: int) -> Text:
    """One message for what a channel had held back, by the held messages' titles."""
    return Text(
        f"{len(titles)} notifications held back (repeats or over {max_per_hour}/h)",
        "\n".join(f"- {t}" for t in titles),
    )


def escalation_note(step: int, waited: timedelta, role: str, *, told: bool) -> str:
    """The alert history's comment for an escalation step."""
    minutes = int(waited.total_seconds() // 60)
    who = f"told {role}" if told else f"no channel for {role}"
    return f"step {step}: not acknowledged after {minutes} min; {who}"
