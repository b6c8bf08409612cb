"""Who is told: the channels of the roles an alert's rule notifies, limited to the channel's
buildings and minimum severity, and the escalation chain of those roles. Pure: no database,
no sending, no text (render.py writes the messages)."""

from __future__ import annotations

from collections.abc import Callable

from core.roles import RoleBook
from core.rules_spec import Severity
from core.site import NotificationChannel, Notifications
from server.events.types import AlertSnapshot, WorkOrderSnapshot

SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}
# Alerts no device rule raised (gateway health and other system alerts), and work orders.
MAINTENANCE: tuple[str, ...] = ("maintenance",)

NotifyRoles = Callable[[str, str], tuple[str, ...] | None]
"""(device_id, rule) -> the roles the rule's `notify` names; None: no such device rule."""


class Routing:
    def __init__(
        self, config: Notifications, notify_roles: NotifyRoles, roles: RoleBook | None = None
    ) -> None:
        self.config = config
        self.notify_roles = notify_roles
        self.role_book = roles or RoleBook()
        self.by_id = {ch.id: ch for ch in config.channels}

    def roles(self, alert: AlertSnapshot) -> tuple[str, ...]:
        roles = self.notify_roles(alert.device_id, alert.rule)
        return MAINTENANCE if roles is None else roles

    def channels(
        self, roles: tuple[str, ...], building: str | None, severity: str
    ) -> list[NotificationChannel]:
        rank = SEVERITY_RANK.get(severity, 0)
        return [
            ch
            for ch in self.config.channels
            if ch.role in roles
            and (not ch.buildings or building in ch.buildings)
            and rank >= SEVERITY_RANK[ch.min_severity.value]
        ]

    def alert_channels(
        self, alert: AlertSnapshot, roles: tuple[str, ...] | None = None
    ) -> list[NotificationChannel]:
        """The alert's audience, or `roles` instead of its rule's (an escalation step)."""
        return self.channels(roles or self.roles(alert), alert.building, alert.severity)

    def work_order_channels(self, order: WorkOrderSnapshot) -> list[NotificationChannel]:
        # Every new order reaches maintenance whatever a channel's minimum severity, and the
        # site's own roles that see its device class or category (cleaning, grounds).
        told = self.role_book.told_of(order.device_class, order.category)
        return self.channels((*MAINTENANCE, *told), order.building, Severity.CRITICAL.value)

    def overdue_channels(self, order: WorkOrderSnapshot) -> list[NotificationChannel]:
        """An order past its deadline: its assignee's own channel, and the lead's roles."""
        lead = self.channels(self.config.overdue_notify, order.building, Severity.CRITICAL.value)
        own = [ch for ch in self.config.channels if order.assignee and ch.user == order.assignee]
        return list({ch.id: ch for ch in [*own, *lead]}.values())

    def chain(self, alert: AlertSnapshot) -> tuple[str, ...]:
        """Roles told at escalation steps 1, 2, ... of an unacknowledged alert."""
        return self.config.escalation.chain_for(self.roles(alert))
