"""The cold-chain record's listeners on the domain events (after the producer's commit, in
the publisher's thread, each in its own short transaction; idempotent, since a redelivered
uplink batch publishes its events again):

- ReadingsAccepted of a cold-storage device: its compliance readings are kept (once per
  reading id, with the time they first reached the server), a day already recorded is
  marked for recomputation, and its excursions are brought up to date;
- AlertRaised / AlertResolved, WorkOrderOpened / WorkOrderChanged of those devices: kept as
  links, so an excursion shows the alert and work order that followed it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.readings import Reading
from server.coldchain import excursions, store
from server.coldchain.devices import ColdDevice
from server.coldchain.model import AlertLink, ColdReading, DailyRecord
from server.events.bus import EventBus
from server.events.types import (
    AlertRaised,
    AlertResolved,
    AlertSnapshot,
    ReadingsAccepted,
    WorkOrderChanged,
    WorkOrderOpened,
    WorkOrderSnapshot,
)


class Recorder:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        devices: dict[str, ColdDevice],
        tz: ZoneInfo,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.devices = devices
        self.tz = tz
        self.clock = clock

    def subscribe_to(self, bus: EventBus) -> None:
        bus.subscribe_batch(ReadingsAccepted, self.on_readings, name="coldchain.readings")
        bus.subscribe(AlertRaised, self.on_alert, name="coldchain.alert_raised")
        bus.subscribe(AlertResolved, self.on_alert, name="coldchain.alert_resolved")
        bus.subscribe(WorkOrderOpened, self.on_work_order, name="coldchain.wo_opened")
        bus.subscribe(WorkOrderChanged, self.on_work_order, name="coldchain.wo_changed")

    # -- readings --------------------------------------------------------------------------
    def on_readings(self, events: list[ReadingsAccepted]) -> None:
        """Every cold device's readings of one uplink batch, in one transaction (a batch from
        a canteen gateway holds most of its fridges)."""
        work: list[tuple[ColdDevice, list[Reading]]] = []
        for ev in events:
            dev = self.devices.get(ev.device_id)
            if dev is None:
                continue
            mine = [r for r in ev.readings if r.metric == dev.limits.metric and _numeric(r)]
            if mine:
                work.append((dev, mine))
        if not work:
            return
        now = self.clock.now()

        def keep_all(s: Session) -> None:
            for dev, mine in work:
                self.keep(s, dev, mine, now)

        store.write(self.sessions, keep_all)

    def keep(self, s: Session, dev: ColdDevice, readings: list[Reading], now: datetime) -> int:
        """Store the readings not stored yet; bring the record up to date. Returns how many
        were new (0 for a redelivered batch: nothing else happens then)."""
        ids = [r.reading_id for r in readings]
        seen = set(s.scalars(select(ColdReading.reading_id).where(ColdReading.reading_id.in_(ids))))
        new = [r for r in readings if r.reading_id not in seen]
        if not new:
            return 0
        for r in new:
            seen.add(r.reading_id)
            s.add(
                ColdReading(
                    reading_id=r.reading_id,
                    device_id=dev.id,
                    measured_at=r.measured_at,
                    value=float(r.value),
                    received_at=r.received_at,
                    arrived_at=now,
                    seq=r.seq,
                )
            )
        s.flush()
        days = {r.measured_at.astimezone(self.tz).date() for r in new}
        for rec in s.scalars(
            select(DailyRecord).where(DailyRecord.device_id == dev.id, DailyRecord.day.in_(days))
        ):
            rec.stale = True  # recomputed by the next tick, as a correction if signed
        since = min(r.measured_at for r in new)
        excursions.reconcile(s, dev, since.astimezone(UTC), now, self.tz)
        return len(new)

    # -- alerts and work orders ------------------------------------------------------------
    def on_alert(self, ev: AlertRaised | AlertResolved) -> None:
        if ev.alert.device_id in self.devices:
            store.write(self.sessions, lambda s: link_alert(s, ev.alert))

    def on_work_order(self, ev: WorkOrderOpened | WorkOrderChanged) -> None:
        order = ev.order
        if order.alert_id is not None and order.device_id in self.devices:
            store.write(self.sessions, lambda s: link_order(s, order))


def link_alert(s: Session, a: AlertSnapshot) -> None:
    row = s.get(AlertLink, a.id) or AlertLink(alert_id=a.id)
    row.device_id, row.rule, row.severity = a.device_id, a.rule, a.severity
    row.raised_at, row.resolved_at = a.raised_at, a.resolved_at
    if a.work_order_id is not None:
        row.work_order_id = a.work_order_id
    s.add(row)


def link_order(s: Session, order: WorkOrderSnapshot) -> None:
    assert order.alert_id is not None
    row = s.get(AlertLink, order.alert_id)
    if row is not None:
        row.work_order_id, row.work_order_status = order.id, order.status


def _numeric(r: Reading) -> bool:
    return isinstance(r.value, int | float) and not isinstance(r.value, bool)
