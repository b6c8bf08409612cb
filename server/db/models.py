"""Every mapped model, imported once so Base.metadata is complete (Alembic, create_all)."""

from server.alerts.model import Alert, AlertEvent
from server.audit.model import AuditDayHead, AuditEntry
from server.auth.model import AuthSession, StreamTicket, User
from server.coldchain.model import AlertLink, ColdReading, CorrectiveAction, DailyRecord, Excursion
from server.coldchain.records_model import (
    Calibration,
    Correction,
    Finding,
    Menu,
    Sample,
    SignOff,
)
from server.db.base import Base
from server.dorms.late_returns import LateReturn
from server.ingest.dead_letters import DeadLetter
from server.ingest.model import Device, Gateway
from server.maintenance.model import MaintenanceWindow
from server.notifications.model import NotificationLog
from server.patrols.model import PatrolRound, PatrolRouteState, PatrolScan
from server.rules.store import RuleStateRow
from server.work_orders.model import WorkOrder, WorkOrderEvent

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertLink",
    "AuditDayHead",
    "AuditEntry",
    "AuthSession",
    "Base",
    "Calibration",
    "ColdReading",
    "Correction",
    "CorrectiveAction",
    "DailyRecord",
    "DeadLetter",
    "Device",
    "Excursion",
    "Finding",
    "Gateway",
    "LateReturn",
    "MaintenanceWindow",
    "Menu",
    "NotificationLog",
    "PatrolRound",
    "PatrolRouteState",
    "PatrolScan",
    "RuleStateRow",
    "Sample",
    "SignOff",
    "StreamTicket",
    "User",
    "WorkOrder",
    "WorkOrderEvent",
]
