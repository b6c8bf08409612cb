"""Every mapped model, imported once so Base.metadata is complete (Alembic, create_all)."""

from server.alerts.model import Alert, AlertEvent
from server.auth.model import User
from server.db.base import Base
from server.dorms.late_returns import LateReturn
from server.ingest.model import Device, Gateway
from server.maintenance.model import MaintenanceWindow
from server.notifications.model import NotificationLog
from server.rules.store import RuleStateRow
from server.work_orders.model import WorkOrder, WorkOrderEvent

__all__ = [
    "Alert",
    "AlertEvent",
    "Base",
    "Device",
    "Gateway",
    "LateReturn",
    "MaintenanceWindow",
    "NotificationLog",
    "RuleStateRow",
    "User",
    "WorkOrder",
    "WorkOrderEvent",
]
