"""Gateway health from its retained status: offline (the broker's last will) and an outbox
filling up are system alerts for maintenance, raised once and resolved when they end."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from core.wire import OUTBOX_ALERT_FILL, OUTBOX_CLEAR_FILL, GatewayStatus
from server.alerts import service as alerts
from server.events.types import DomainEvent, GatewayStatusReported
from server.ingest.model import Gateway

log = logging.getLogger(__name__)


def alert_key(gateway_id: str) -> str:
    """The device id a gateway's alerts are filed under."""
    return f"gateway:{gateway_id}"


def apply_status(
    s: Session, status: GatewayStatus, now: datetime, events: list[DomainEvent]
) -> None:
    gw = s.get(Gateway, status.gateway_id) or Gateway(id=status.gateway_id, last_batch=0)
    s.add(gw)
    key = alert_key(status.gateway_id)
    _outbox_fill(s, status, key, now, events)
    changed = gw.state != status.state
    if changed:
        gw.state, gw.changed_at = status.state, now
    if changed and status.state == "offline":
        alerts.raise_alert(
            s,
            events,
            device_id=key,
            rule="gateway_offline",
            severity="major",
            at=now,
            message=f"gateway {status.gateway_id} went offline (last will)",
            value=None,
            building=None,
            device_class="gateway",
        )
    elif changed:
        open_alert = alerts.open_alert(s, key, "gateway_offline")
        if open_alert is not None:
            alerts.resolve(
                open_alert, events, actor="system", at=now, comment="gateway back online"
            )
    events.append(
        GatewayStatusReported(
            at=now,
            gateway_id=gw.id,
            state=status.state,
            changed=changed,
            outbox_fill=status.outbox_fill,
        )
    )


def _outbox_fill(
    s: Session, status: GatewayStatus, key: str, now: datetime, events: list[DomainEvent]
) -> None:
    """At 80 % of its cap a gateway's outbox is one outage away from refusing data."""
    open_alert = alerts.open_alert(s, key, "gateway_outbox_high")
    if status.outbox_fill >= OUTBOX_ALERT_FILL and open_alert is None:
        _, created = alerts.raise_alert(
            s,
            events,
            device_id=key,
            rule="gateway_outbox_high",
            severity="major",
            at=now,
            message=(
                f"gateway {status.gateway_id} outbox {status.outbox_fill:.0%} full: a "
                "time-series store or the uplink is not keeping up; at 100 % it refuses data"
            ),
            value=status.outbox_fill,
            building=None,
            device_class="gateway",
        )
        if created:
            log.warning("alert raised: %s gateway_outbox_high", key)
    elif status.outbox_fill < OUTBOX_CLEAR_FILL and open_alert is not None:
        alerts.resolve(
            open_alert,
            events,
            actor="system",
            at=now,
            comment=f"outbox back to {status.outbox_fill:.0%}",
        )
