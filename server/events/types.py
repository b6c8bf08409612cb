"""Domain events: what happened on the server, as frozen values.

Producers (ingest, rules, alerts, work orders, the API) emit these after their transaction
commits; consumers (the browser stream, notifications, and later the cold-chain log, KPIs
and patrols) subscribe by type. A consumer reads an event's fields, never another
consumer's payload (the stream's JSON is the stream's business).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from core.readings import DeviceEvent, Reading

# -- snapshots: an entity as it was when the event happened ----------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSnapshot:
    id: int
    device_id: str
    building: str | None
    device_class: str | None
    rule: str
    severity: str
    state: str
    message: str
    raised_at: datetime
    value: float | None
    peak: float | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    assignee: str | None
    work_order_id: int | None
    condition_unknown: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkOrderSnapshot:
    id: int
    source: str
    device_id: str | None
    device_class: str | None
    alert_id: int | None
    building: str | None
    location: str
    category: str
    priority: str
    status: str
    title: str
    description: str
    assignee: str | None
    created_at: datetime
    respond_due_at: datetime
    due_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    verified_at: datetime | None
    reopen_count: int
    satisfaction: int | None
    condition_cleared: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSnapshot:
    id: str
    building: str
    device_class: str
    online: bool
    last_seen: datetime | None
    # {metric: {"v": value, "t": epoch ms, "u": unit}}, as the live state keeps it
    values: dict[str, Any] = field(default_factory=dict)


# -- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    """Base of every event: `at` is when it happened (event time where there is one)."""

    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingsAccepted(DomainEvent):
    """One device's readings of one uplink batch, in event-time order, after the commit."""

    gateway_id: str
    device_id: str
    building: str
    device_class: str
    readings: tuple[Reading, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEventReceived(DomainEvent):
    """A discrete device report (door forced, card scanned at a patrol checkpoint)."""

    gateway_id: str
    building: str
    device_class: str
    event: DeviceEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStateChanged(DomainEvent):
    """The live state of a device (latest values, online) changed."""

    device: DeviceSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceWentOffline(DomainEvent):
    device: DeviceSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCameOnline(DomainEvent):
    device: DeviceSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRaised(DomainEvent):
    alert: AlertSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertAcknowledged(DomainEvent):
    alert: AlertSnapshot
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertAssigned(DomainEvent):
    alert: AlertSnapshot
    actor: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertResolved(DomainEvent):
    alert: AlertSnapshot
    actor: str  # "system" when the condition cleared by itself


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkOrderOpened(DomainEvent):
    order: WorkOrderSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkOrderChanged(DomainEvent):
    """Status, priority, assignee or condition of an order changed."""

    order: WorkOrderSnapshot
    actor: str
    from_status: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayStatusReported(DomainEvent):
    """A gateway's retained status arrived (it is republished as its outbox fills)."""

    gateway_id: str
    state: str  # online | offline
    changed: bool  # the state differs from the one before
    outbox_fill: float


AlertEvent = AlertRaised | AlertAcknowledged | AlertAssigned | AlertResolved
WorkOrderEvent = WorkOrderOpened | WorkOrderChanged


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSessionsRevoked(DomainEvent):
    """Sessions ended (logout, password change, account disabled): their open event streams
    close. `session_ids` are the sessions' ids (digests), never their tokens."""

    username: str
    session_ids: tuple[str, ...]
    reason: str  # logout | password_changed | disabled


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceWindowChanged(DomainEvent):
    """A maintenance window was declared or ended early (for the audit trail and the UI)."""

    device_id: str
    building: str
    device_class: str
    action: str  # declared | ended
    window_id: int
    starts_at: datetime
    ends_at: datetime
    actor: str
    comment: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkOrderOverdue(DomainEvent):
    """An open order passed its repair deadline (told once: its assignee and the lead)."""

    order: WorkOrderSnapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class PatrolScanned(DomainEvent):
    """A guard's scan at a patrol checkpoint was recorded (card reader or QR code)."""

    scan_id: int
    building: str
    checkpoint: str
    by: str  # a username (QR) or "card:<pseudonym>" (reader)
    source: str  # qr | reader


@dataclass(frozen=True, slots=True, kw_only=True)
class PatrolRoundMissed(DomainEvent):
    """A patrol round was judged at its end as not done (`missed`) or done in part
    (`incomplete`): told once to the route's roles for the building."""

    round_id: int
    route: str
    route_name: str
    building: str
    night: date
    number: int  # the round's number within the night
    starts_at: datetime
    due_at: datetime
    status: str  # missed | incomplete
    missing: tuple[str, ...]  # checkpoints not scanned in the round
    notify: tuple[str, ...]  # roles told
