"""Rule events -> alerts: a raise opens the alert and its work order (and, for a rule that
keeps repeating, one nuisance order), unless declared maintenance or the site calendar
suppresses it; a clear resolves the alert and tells its order the condition has cleared."""

from __future__ import annotations

import logging
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.rules_spec import OfflineRule
from core.site import SiteConfig
from server.alerts import service as alerts
from server.alerts.model import Alert
from server.events.types import DomainEvent
from server.maintenance import service as maintenance
from server.rules.kind import RuleEvent
from server.work_orders import service as work_orders
from server.work_orders.model import WorkOrder
from server.work_orders.sla import closed_days

log = logging.getLogger(__name__)


class DeviceInfo(Protocol):
    """What an alert needs to know of its device (the live-state row has it)."""

    @property
    def id(self) -> str: ...

    @property
    def building(self) -> str: ...

    @property
    def device_class(self) -> str: ...

    @property
    def location(self) -> str: ...


def suppressed_because(
    s: Session, site: SiteConfig, device: DeviceInfo, ev: RuleEvent
) -> str | None:
    window = maintenance.covering(s, device.id, ev.at)
    if window is not None:
        return f"declared maintenance until {window.ends_at.isoformat()}"
    if ev.rule.when_closed == "suppress" and site.is_closed(device.building, ev.at):
        return "building closed by the site calendar"
    return None


def apply(
    s: Session, site: SiteConfig, device: DeviceInfo, ev: RuleEvent, events: list[DomainEvent]
) -> bool:
    """Carry out one rule event. False if a raise was suppressed: the caller then forgets the
    rule's active state, so a condition lasting past the window raises afresh."""
    if ev.kind == "raise":
        why = suppressed_because(s, site, device, ev)
        if why is not None:
            log.info("alert suppressed: %s %s (%s)", device.id, ev.rule.rule, why)
            return False
        _raise(s, site, device, ev, events)
    else:
        _clear(s, device, ev, events)
    return True


def _raise(
    s: Session, site: SiteConfig, device: DeviceInfo, ev: RuleEvent, events: list[DomainEvent]
) -> None:
    rule = ev.rule

    def open_order(alert: Alert) -> None:
        if rule.work_order is not None:
            wo, _ = work_orders.open_from_alert(
                s,
                events,
                alert=alert,
                spec=rule.work_order,
                location=device.location,
                at=ev.at,
                tz=site.tz,
                closed=closed_days(site, device.building),
            )
            alert.work_order_id = wo.id

    alert, created = alerts.raise_alert(
        s,
        events,
        device_id=device.id,
        rule=rule.rule,
        severity=rule.severity.value,
        at=ev.at,
        message=ev.message,
        value=ev.value,
        building=device.building,
        device_class=device.device_class,
        follow_up=open_order,
    )
    if not created:
        return
    log.info("alert raised: %s %s %s", device.id, rule.rule, ev.message)
    if isinstance(rule, OfflineRule):
        mark_condition_unknown(s, device.id, unknown=True)
    if rule.repeat is not None:
        _nuisance(s, site, device, ev, alert, events)


def _clear(s: Session, device: DeviceInfo, ev: RuleEvent, events: list[DomainEvent]) -> None:
    cleared = alerts.open_alert(s, device.id, ev.rule.rule)
    if cleared is None:
        return
    alerts.resolve(cleared, events, actor="system", at=ev.at, comment=ev.message, peak=ev.peak)
    log.info("alert cleared: %s %s %s", device.id, ev.rule.rule, ev.message)
    if cleared.work_order_id is None:
        return
    order = s.get(WorkOrder, cleared.work_order_id)
    still_open = s.scalars(
        select(Alert.id).where(
            Alert.work_order_id == cleared.work_order_id, Alert.open_key.is_not(None)
        )
    ).first()
    if order is not None and still_open is None:
        work_orders.mark_condition_cleared(order, events, ev.at, ev.message)


def _nuisance(
    s: Session,
    site: SiteConfig,
    device: DeviceInfo,
    ev: RuleEvent,
    alert: Alert,
    events: list[DomainEvent],
) -> None:
    """Repeated alarms on one device within a window: one order for its latch or sensor."""
    repeat = ev.rule.repeat
    assert repeat is not None
    since = alert.raised_at - repeat.window
    count = len(
        s.scalars(
            select(Alert.id).where(
                Alert.device_id == device.id,
                Alert.rule == ev.rule.rule,
                Alert.raised_at >= since,
            )
        ).all()
    )
    if count < repeat.count:
        return
    work_orders.open_from_alert(
        s,
        events,
        alert=alert,
        spec=repeat.work_order,
        location=device.location,
        at=alert.raised_at,
        tz=site.tz,
        closed=closed_days(site, device.building),
        title=f"{device.id}: repeated {ev.rule.rule.replace('_', ' ')} alarms "
        f"({count} in {repeat.window.days or repeat.window} days) — check latch, "
        "closer and sensor",
    )


def mark_condition_unknown(s: Session, device_id: str, *, unknown: bool) -> None:
    """A silent device's condition is unknown: its open alerts stay open, flagged as such;
    fresh data makes it known again."""
    for a in s.scalars(
        select(Alert).where(
            Alert.device_id == device_id,
            Alert.open_key.is_not(None) if unknown else Alert.condition_unknown.is_(True),
        )
    ):
        a.condition_unknown = unknown
