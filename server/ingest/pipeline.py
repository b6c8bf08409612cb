"""The server's way for a reading: uplink batch -> live state -> rule runner -> alerts and
work orders, in one transaction per batch; the domain events go out after the commit.

    handle_batch(batch)         items in event-time order
      LiveState.reading/event   latest values, last seen, online, completeness
      RuleRunner.reading/event  each rule of the device, typed state persisted
      from_rules.apply          raise/clear alerts, open work orders, suppression
    bus.publish_all(events)     stream, notifications, late returns, ... (after commit)

The clock drives what no input does (`tick`): devices going offline, and rule delays that
run out while a sensor stays quiet.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.profiles import Profile
from core.readings import DeviceEvent, Reading
from core.ruleset import device_class_of
from core.site import SiteConfig
from core.wire import GatewayStatus, UplinkBatch
from server.alerts import from_rules
from server.alerts.model import Alert
from server.db.bulk import among
from server.events.bus import EventBus
from server.events.types import DeviceEventReceived, DomainEvent, ReadingsAccepted
from server.ingest import completeness, gateways
from server.ingest.live_state import DeviceRow, LiveState, sync_devices
from server.ingest.model import Device, Gateway
from server.rules.kind import EventSample, MetricSample, RuleEvent
from server.rules.runner import RuleRunner
from server.rules.store import RuleStates

log = logging.getLogger(__name__)
TICK_CHUNK = 500  # devices per clock transaction: ingest never waits long behind the clock


class IngestPipeline:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        site: SiteConfig,
        profiles: dict[str, Profile],
        rules: RuleRunner,
        bus: EventBus,
    ) -> None:
        self.sessions = sessions
        self.site = site
        self.rules = rules
        self.bus = bus
        self.device_class = {
            d.id: device_class_of(d, profiles[d.profile]).value for d in site.devices
        }
        self.poll_ms = completeness.poll_intervals(site, profiles)

    def sync_devices(self) -> None:
        """The site file's devices and gateways in the tables. Workers that start together
        race to insert the same rows: the loser sees the winner's rows on its next try."""
        for attempt in range(1, 4):
            try:
                with self.sessions.begin() as s:
                    sync_devices(s, self.site, self.device_class)
                    # Every gateway's row up front: its data and its status may be handled
                    # by two workers at once (different partitions); neither inserts it then.
                    known = set(s.scalars(select(Gateway.id)))
                    for gw in sorted({d.gateway for d in self.site.devices} - known):
                        s.add(Gateway(id=gw, last_batch=0))
                return
            except IntegrityError:
                if attempt == 3:
                    raise
                log.info("device rows inserted by another worker meanwhile; syncing again")

    # -- batches -------------------------------------------------------------------------
    def handle_batch(self, batch: UplinkBatch) -> None:
        events: list[DomainEvent] = []
        items: list[Reading | DeviceEvent] = [*batch.readings, *batch.events]
        # Event time order, so a replayed burst evaluates as it happened.
        items.sort(key=lambda i: (i.measured_at, 0 if isinstance(i, Reading) else 1))
        with self.sessions.begin() as s:
            gw = s.get(Gateway, batch.gateway_id) or Gateway(id=batch.gateway_id, last_batch=0)
            s.add(gw)
            gw.last_batch = max(gw.last_batch, batch.last)
            # One query each for the batch's devices (locked) and their rule states.
            live = LiveState(s, self.poll_ms)
            live.load({i.device_id for i in items})
            states = RuleStates(s)
            states.load_devices([d for d in live.loaded if d in self.rules.index.devices])
            accepted: dict[str, list[Reading]] = {}
            for item in items:
                device = live.device(item.device_id)
                if device is None:
                    log.warning(
                        "uplink from %s names unknown device %s", batch.gateway_id, item.device_id
                    )
                    continue
                if isinstance(item, Reading):
                    previous = live.reading(device, item)
                    x = MetricSample(item.metric, item.value, item.unit, item.measured_at, previous)
                    fired = self.rules.reading(states, device.id, x, device.last_seen)
                    accepted.setdefault(device.id, []).append(item)
                else:
                    live.event(device, item)
                    e = EventSample(item.kind, item.event_id, item.measured_at)
                    fired = self.rules.event(states, device.id, e, device.last_seen)
                    events.append(self._received(batch.gateway_id, device, item))
                if fired:
                    self._apply(s, states, device, fired, events)
            live.write()
            states.write()
            known_again(s, accepted)
            now = max((i.received_at for i in items), default=None)
            if now is not None:
                events += live.changes(now)
            events += [
                self._accepted(batch.gateway_id, live.device(d), rs) for d, rs in accepted.items()
            ]
        self.bus.publish_all(events)

    def _apply(
        self,
        s: Session,
        states: RuleStates,
        device: DeviceRow,
        fired: list[RuleEvent],
        events: list[DomainEvent],
    ) -> None:
        for ev in fired:
            if not from_rules.apply(s, self.site, device, ev, events):
                self.rules.forget(states, device.id, ev.rule.rule)

    @staticmethod
    def _accepted(
        gateway_id: str, device: DeviceRow | None, readings: list[Reading]
    ) -> DomainEvent:
        assert device is not None
        return ReadingsAccepted(
            at=readings[-1].measured_at,
            gateway_id=gateway_id,
            device_id=device.id,
            building=device.building,
            device_class=device.device_class,
            readings=tuple(readings),
        )

    @staticmethod
    def _received(gateway_id: str, device: DeviceRow, e: DeviceEvent) -> DomainEvent:
        return DeviceEventReceived(
            at=e.measured_at,
            gateway_id=gateway_id,
            building=device.building,
            device_class=device.device_class,
            event=e,
        )

    # -- the clock -----------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        """Devices silent past their offline limit, and rule delays that ran out; in chunks
        of devices, each its own short transaction. A device whose row another transaction
        holds (a batch of its data being processed, here or on another worker) is skipped
        this time: it is not silent, and the next tick sees it."""
        ids = sorted(self.rules.index.devices)
        for start in range(0, len(ids), TICK_CHUNK):
            due = self._due(ids[start : start + TICK_CHUNK], now)
            if due:
                self._tick_chunk(due, now)

    def _due(self, ids: list[str], now: datetime) -> list[str]:
        """The devices of a chunk the clock has something to do for (one going offline, a
        rule that time moves), found without locking or writing anything: on most ticks
        most devices have nothing, and their rows stay free for the uplink's batches. Only
        these are then taken again under lock (`_tick_chunk`), from fresh rows."""
        due: list[str] = []
        with self.sessions() as s:  # read only: closed without a commit
            offline_gateways = set(s.scalars(select(Gateway.id).where(Gateway.state == "offline")))
            q = select(Device.id, Device.last_seen, Device.online, Device.gateway_id)
            seen = s.execute(q.where(among(s, Device.id, ids), Device.last_seen.is_not(None))).all()
            states = RuleStates(s)
            states.load_devices([row.id for row in seen])
            for device_id, last_seen, online, gateway_id in seen:
                rules = self.rules.index.devices[device_id]
                assert last_seen is not None
                if online and rules.silence and now - last_seen >= rules.silence:
                    due.append(device_id)
                elif gateway_id not in offline_gateways:
                    pending = states.pending()
                    fired = self.rules.time(states, device_id, now, last_seen)
                    if fired or states.pending() != pending:
                        due.append(device_id)
        return due

    def _tick_chunk(self, ids: list[str], now: datetime) -> None:
        events: list[DomainEvent] = []
        with self.sessions.begin() as s:
            offline_gateways = set(s.scalars(select(Gateway.id).where(Gateway.state == "offline")))
            live = LiveState(s, self.poll_ms)
            devices = live.load_seen(ids)
            states = RuleStates(s)
            states.load_devices([d.id for d in devices])
            for device in devices:
                rules = self.rules.index.devices[device.id]
                assert device.last_seen is not None
                if device.online and rules.silence and now - device.last_seen >= rules.silence:
                    events += live.went_offline(device, now)
                if device.gateway_id in offline_gateways:
                    # One alert for the gateway, not one per device behind it; and its data
                    # arrives later from the gateway's buffer, so no delay runs out meanwhile.
                    continue
                fired = self.rules.time(states, device.id, now, device.last_seen)
                self._apply(s, states, device, fired, events)
            live.write()
            states.write()
        self.bus.publish_all(events)

    def gateway_status(self, status: GatewayStatus, now: datetime) -> None:
        events: list[DomainEvent] = []
        with self.sessions.begin() as s:
            gateways.apply_status(s, status, now, events)
        self.bus.publish_all(events)


def known_again(s: Session, readings_by_device: dict[str, list[Reading]]) -> None:
    """Fresh data makes the open alerts of these devices known again (from_rules'
    mark_condition_unknown(unknown=False) for all of a batch's devices in one query)."""
    ids = list(readings_by_device)
    for start in range(0, len(ids), 1000):
        for a in s.scalars(
            select(Alert).where(
                among(s, Alert.device_id, ids[start : start + 1000]),
                Alert.condition_unknown.is_(True),
            )
        ):
            a.condition_unknown = False
