"""Uplink batches -> live device state -> rules -> alerts and work orders, one transaction
per batch; live events go out only after the commit."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.profiles import Profile
from core.readings import DeviceEvent, Reading
from core.rules_spec import OfflineRule, RuleSpec, ThresholdRule
from core.ruleset import ClassRules, device_class_of, effective_rules
from core.site import SiteConfig
from core.wire import GatewayStatus, UplinkBatch
from server.alerts import service as alerts
from server.alerts.model import Alert
from server.alerts.schemas import AlertOut
from server.dorms import late_returns
from server.ingest import completeness
from server.ingest.model import Device, Gateway
from server.notifications.stream import Broadcaster, LiveEvent
from server.rules import engine
from server.rules.store import RuleStateRow, forget_active
from server.work_orders import service as work_orders
from server.work_orders.model import WorkOrder
from server.work_orders.schemas import WorkOrderOut

log = logging.getLogger(__name__)
OUTBOX_ALERT_FILL = 0.8
OUTBOX_CLEAR_FILL = 0.7  # hysteresis: a fill hovering at 80 % is one alert, not many


# Per-device rule context (recent event times, declared maintenance) lives in the rule
# state table under this reserved name, so it survives restarts like any rule state.
CONTEXT_ROW = "_context"


@dataclass(frozen=True, slots=True)
class DeviceRules:
    by_metric: dict[str, list[RuleSpec]]  # threshold, state, rate, night flow
    event: list[RuleSpec]  # event, count
    offline: list[OfflineRule]
    after_events: frozenset[str]  # event kinds some rule's delay depends on (defrost)


class Processor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        site: SiteConfig,
        profiles: dict[str, Profile],
        class_rules: dict[str, ClassRules],
        broadcaster: Broadcaster,
    ) -> None:
        self.sessions = sessions
        self.site = site
        self.broadcaster = broadcaster
        self.rules: dict[str, DeviceRules] = {}
        self.rule_index: dict[tuple[str, str], RuleSpec] = {}
        for device in site.devices:
            specs = effective_rules(device, profiles[device.profile], site, class_rules)
            by_metric: dict[str, list[RuleSpec]] = defaultdict(list)
            for spec in specs:
                self.rule_index[(device.id, spec.rule)] = spec
                if isinstance(spec, engine.METRIC_RULES):
                    by_metric[spec.metric].append(spec)
            self.rules[device.id] = DeviceRules(
                dict(by_metric),
                [r for r in specs if isinstance(r, engine.EVENT_RULES)],
                [r for r in specs if isinstance(r, OfflineRule)],
                frozenset(
                    r.after_event for r in specs if isinstance(r, ThresholdRule) and r.after_event
                ),
            )
        self.device_class = {
            d.id: device_class_of(d, profiles[d.profile]).value for d in site.devices
        }
        self.poll_ms = completeness.poll_intervals(site, profiles)

    # -- startup -------------------------------------------------------------------------
    def sync_devices(self) -> None:
        """Make the device table match the site file (ids fixed by the site, not by data)."""
        with self.sessions.begin() as s:
            known = {d.id: d for d in s.scalars(select(Device))}
            for cfg in self.site.devices:
                row = known.get(cfg.id)
                if row is None:
                    row = Device(id=cfg.id, values={}, received=0, seq_gaps=0, online=False)
                    s.add(row)
                row.device_class = self.device_class[cfg.id]
                row.profile, row.building, row.location = cfg.profile, cfg.building, cfg.location
                row.room, row.gateway_id = cfg.room, cfg.gateway

    # -- batches -------------------------------------------------------------------------
    def handle_batch(self, batch: UplinkBatch) -> None:
        out: list[LiveEvent] = []
        with self.sessions.begin() as s:
            gw = s.get(Gateway, batch.gateway_id) or Gateway(id=batch.gateway_id, last_batch=0)
            s.add(gw)
            gw.last_batch = max(gw.last_batch, batch.last)
            devices: dict[str, Device | None] = {}
            items: list[Reading | DeviceEvent] = [*batch.readings, *batch.events]
            # Event time order, so a replayed burst evaluates as it happened.
            items.sort(key=lambda i: (i.measured_at, 0 if isinstance(i, Reading) else 1))
            touched: set[str] = set()
            for item in items:
                if item.device_id not in devices:
                    devices[item.device_id] = s.get(Device, item.device_id)
                device = devices[item.device_id]
                if device is None:
                    log.warning(
                        "uplink from %s names unknown device %s", batch.gateway_id, item.device_id
                    )
                    continue
                touched.add(device.id)
                if isinstance(item, Reading):
                    self._reading(s, device, item, out)
                else:
                    self._event(s, device, item, out)
            for device_id in touched:
                d = devices[device_id]
                assert d is not None
                out.append(
                    LiveEvent(
                        "reading",
                        {
                            "device_id": d.id,
                            "values": d.values,
                            "online": d.online,
                            "last_seen": _iso(d.last_seen),
                        },
                        d.building,
                        d.device_class,
                    )
                )
        for ev in out:
            self.broadcaster.publish(ev)

    def _reading(self, s: Session, device: Device, r: Reading, out: list[LiveEvent]) -> None:
        ts = int(r.measured_at.timestamp() * 1000)
        previous = max((v["t"] for v in device.values.values()), default=None)
        current = device.values.get(r.metric)
        if current is None or ts >= current["t"]:
            device.values = {**device.values, r.metric: {"v": r.value, "t": ts, "u": r.unit}}
        if device.last_seen is None or r.received_at > device.last_seen:
            device.last_seen = r.received_at
        completeness.count_message(device, r.seq, ts, self.poll_ms.get(device.id))
        if not device.online:
            device.online = True
        rules = self.rules.get(device.id)
        if rules is None:
            return
        for offline in rules.offline:
            if previous is not None and ts > previous:
                prev_at = datetime.fromtimestamp(previous / 1000, tz=UTC)
                self._apply(s, device, offline, engine.offline_gap, out, prev_at, r.measured_at)
            self._apply(s, device, offline, engine.offline_back, out, r.measured_at)
        metric_rules = rules.by_metric.get(r.metric, ())
        if metric_rules:
            ctx = self._context(s, device.id)
            for rule in metric_rules:
                self._apply(
                    s,
                    device,
                    rule,
                    engine.evaluate_reading,
                    out,
                    r.value,
                    r.unit,
                    r.measured_at,
                    ctx,
                )
        self._mark_known(s, device)

    def _event(self, s: Session, device: Device, e: DeviceEvent, out: list[LiveEvent]) -> None:
        if device.last_seen is None or e.received_at > device.last_seen:
            device.last_seen = e.received_at
        device.online = True
        late_returns.record(s, self.site, device.building, e)
        rules = self.rules.get(device.id)
        if rules is None:
            return
        for offline in rules.offline:
            self._apply(s, device, offline, engine.offline_back, out, e.measured_at)
        if e.kind in rules.after_events:
            self._remember_event(s, device.id, e.kind, e.measured_at)
        for event_rule in rules.event:
            self._apply(
                s,
                device,
                event_rule,
                engine.evaluate_device_event,
                out,
                e.kind,
                e.event_id,
                e.measured_at,
            )

    # -- per-device rule context ---------------------------------------------------------
    def _context_row(self, s: Session, device_id: str) -> RuleStateRow:
        row = s.get(RuleStateRow, (device_id, CONTEXT_ROW))
        if row is None:
            row = RuleStateRow(device_id=device_id, rule=CONTEXT_ROW, state={})
            s.add(row)
        return row

    def _context(self, s: Session, device_id: str) -> engine.RuleContext:
        row = s.get(RuleStateRow, (device_id, CONTEXT_ROW))
        events = dict(row.state.get("events", {})) if row is not None else {}
        return engine.RuleContext(tz=self.site.tz, last_events=events)

    def _remember_event(self, s: Session, device_id: str, kind: str, at: datetime) -> None:
        row = self._context_row(s, device_id)
        events = dict(row.state.get("events", {}))
        ts = int(at.timestamp() * 1000)
        if ts > events.get(kind, 0):
            events[kind] = ts
            row.state = {**row.state, "events": events}

    def maintenance_until(self, s: Session, device_id: str) -> datetime | None:
        row = s.get(RuleStateRow, (device_id, CONTEXT_ROW))
        until = row.state.get("maintenance_until") if row is not None else None
        return datetime.fromisoformat(until) if until else None

    def declare_maintenance(
        self, s: Session, device_id: str, until: datetime | None, by: str, comment: str
    ) -> None:
        """Declared maintenance on a device: its rules raise nothing until `until`."""
        row = self._context_row(s, device_id)
        row.state = {
            **row.state,
            "maintenance_until": until.isoformat() if until else None,
            "maintenance_by": by,
            "maintenance_comment": comment,
        }

    def _suppressed(self, s: Session, device: Device, rule: RuleSpec, at: datetime) -> str | None:
        until = self.maintenance_until(s, device.id)
        if until is not None and at < until:
            return f"declared maintenance until {until.isoformat()}"
        if rule.when_closed == "suppress" and self.site.is_closed(device.building, at):
            return "building closed by the site calendar"
        return None

    def _apply(
        self, s: Session, device: Device, rule: RuleSpec, fn: Any, out: list[LiveEvent], *args: Any
    ) -> None:
        row = s.get(RuleStateRow, (device.id, rule.rule))
        if row is None:
            row = RuleStateRow(device_id=device.id, rule=rule.rule, state={})
            s.add(row)
        new_state, events = fn(rule, row.state, device.id, *args)
        if new_state is not row.state:
            row.state = new_state
        for ev in events:
            self._rule_event(s, device, ev, out)

    def _rule_event(
        self, s: Session, device: Device, ev: engine.RuleEvent, out: list[LiveEvent]
    ) -> None:
        rule = ev.rule
        if ev.kind == "raise":
            why = self._suppressed(s, device, rule, ev.at)
            if why is not None:
                # Not raised: forget the rule's active state so the condition, if it lasts
                # past the window, raises afresh instead of being silently swallowed.
                forget_active(s, device.id, rule.rule)
                log.info("alert suppressed: %s %s (%s)", device.id, rule.rule, why)
                return
            alert, created = alerts.raise_alert(
                s,
                device_id=device.id,
                rule=rule.rule,
                severity=rule.severity.value,
                at=ev.at,
                message=ev.message,
                value=ev.value,
                building=device.building,
                device_class=device.device_class,
            )
            if not created:
                return
            log.info("alert raised: %s %s %s", device.id, rule.rule, ev.message)
            if isinstance(rule, OfflineRule):
                self._mark_unknown(s, device)
            if rule.work_order is not None:
                wo, _created = work_orders.open_from_alert(
                    s,
                    alert=alert,
                    spec=rule.work_order,
                    location=device.location,
                    at=ev.at,
                    tz=self.site.tz,
                )
                alert.work_order_id = wo.id
                out.append(self._wo_event(wo, device.device_class))
            if rule.repeat is not None:
                self._nuisance(s, device, rule, alert, out)
            out.append(self._alert_event(alert))
            return
        cleared = alerts.open_alert(s, device.id, rule.rule)
        if cleared is None:
            return
        alerts.resolve(cleared, actor="system", at=ev.at, comment=ev.message, peak=ev.peak)
        log.info("alert cleared: %s %s %s", device.id, rule.rule, ev.message)
        if cleared.work_order_id is not None:
            order = s.get(WorkOrder, cleared.work_order_id)
            if order is not None and not self._other_open_alerts(s, order.id):
                work_orders.mark_condition_cleared(order, ev.at, ev.message)
                out.append(self._wo_event(order, device.device_class))
        out.append(self._alert_event(cleared))

    def _nuisance(
        self, s: Session, device: Device, rule: RuleSpec, alert: Alert, out: list[LiveEvent]
    ) -> None:
        """Repeated alarms on one device within a window: one order for its latch or sensor."""
        assert rule.repeat is not None
        since = alert.raised_at - rule.repeat.window
        count = len(
            s.scalars(
                select(Alert.id).where(
                    Alert.device_id == device.id,
                    Alert.rule == rule.rule,
                    Alert.raised_at >= since,
                )
            ).all()
        )
        if count < rule.repeat.count:
            return
        wo, created = work_orders.open_from_alert(
            s,
            alert=alert,
            spec=rule.repeat.work_order,
            location=device.location,
            at=alert.raised_at,
            tz=self.site.tz,
            title=f"{device.id}: repeated {rule.rule.replace('_', ' ')} alarms "
            f"({count} in {rule.repeat.window.days or rule.repeat.window} days) — check latch, "
            "closer and sensor",
        )
        if created:
            out.append(self._wo_event(wo, device.device_class))

    def _other_open_alerts(self, s: Session, wo_id: int) -> bool:
        return (
            s.scalars(
                select(Alert.id).where(Alert.work_order_id == wo_id, Alert.open_key.is_not(None))
            ).first()
            is not None
        )

    def _mark_unknown(self, s: Session, device: Device) -> None:
        """A silent device's condition is unknown: its alerts stay open, flagged as such."""
        for a in s.scalars(
            select(Alert).where(Alert.device_id == device.id, Alert.open_key.is_not(None))
        ):
            a.condition_unknown = True

    def _mark_known(self, s: Session, device: Device) -> None:
        for a in s.scalars(
            select(Alert).where(Alert.device_id == device.id, Alert.condition_unknown.is_(True))
        ):
            a.condition_unknown = False

    # -- time-driven rules ---------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        out: list[LiveEvent] = []
        with self.sessions.begin() as s:
            offline_gateways = {
                g.id for g in s.scalars(select(Gateway).where(Gateway.state == "offline"))
            }
            for device in s.scalars(select(Device)):
                rules = self.rules.get(device.id)
                if rules is None or device.last_seen is None:
                    continue
                silent = now - device.last_seen
                if (
                    device.online
                    and rules.offline
                    and silent >= min(r.after for r in rules.offline)
                ):
                    device.online = False
                    out.append(
                        LiveEvent(
                            "reading",
                            {
                                "device_id": device.id,
                                "online": False,
                                "values": device.values,
                                "last_seen": _iso(device.last_seen),
                            },
                            device.building,
                            device.device_class,
                        )
                    )
                if device.gateway_id in offline_gateways:
                    continue  # one alert for the gateway, not one per device behind it
                for rule in rules.offline:
                    self._apply(
                        s, device, rule, engine.evaluate_offline, out, device.last_seen, now
                    )
        for ev in out:
            self.broadcaster.publish(ev)

    def gateway_status(self, status: GatewayStatus, now: datetime) -> None:
        out: list[LiveEvent] = []
        with self.sessions.begin() as s:
            gw = s.get(Gateway, status.gateway_id) or Gateway(id=status.gateway_id, last_batch=0)
            s.add(gw)
            key = f"gateway:{status.gateway_id}"
            self._outbox_fill(s, status, key, now, out)
            changed = gw.state != status.state
            if changed:
                gw.state, gw.changed_at = status.state, now
            if changed and status.state == "offline":
                alert, created = alerts.raise_alert(
                    s,
                    device_id=key,
                    rule="gateway_offline",
                    severity="major",
                    at=now,
                    message=f"gateway {status.gateway_id} went offline (last will)",
                    value=None,
                    building=None,
                    device_class="gateway",
                )
                if created:
                    out.append(self._alert_event(alert))
            elif changed:
                alert_or_none = alerts.open_alert(s, key, "gateway_offline")
                if alert_or_none is not None:
                    alerts.resolve(
                        alert_or_none, actor="system", at=now, comment="gateway back online"
                    )
                    out.append(self._alert_event(alert_or_none))
            out.append(LiveEvent("gateway", {"gateway_id": gw.id, "state": gw.state}))
        for ev in out:
            self.broadcaster.publish(ev)

    def _outbox_fill(
        self, s: Session, status: GatewayStatus, key: str, now: datetime, out: list[LiveEvent]
    ) -> None:
        """At 80 % of its cap a gateway's outbox is one outage away from refusing data."""
        open_alert = alerts.open_alert(s, key, "gateway_outbox_high")
        if status.outbox_fill >= OUTBOX_ALERT_FILL and open_alert is None:
            alert, created = alerts.raise_alert(
                s,
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
                out.append(self._alert_event(alert))
        elif status.outbox_fill < OUTBOX_CLEAR_FILL and open_alert is not None:
            alerts.resolve(
                open_alert,
                actor="system",
                at=now,
                comment=f"outbox back to {status.outbox_fill:.0%}",
            )
            out.append(self._alert_event(open_alert))

    @staticmethod
    def _alert_event(alert: Alert) -> LiveEvent:
        data = AlertOut.model_validate(alert).model_dump(mode="json")
        return LiveEvent("alert", data, alert.building, alert.device_class)

    @staticmethod
    def _wo_event(wo: WorkOrder, device_class: str | None) -> LiveEvent:
        data = WorkOrderOut.model_validate(wo).model_dump(mode="json")
        return LiveEvent("work_order", data, wo.building, device_class, wo.category)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None
