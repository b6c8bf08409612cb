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

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.readings import Reading
from server.coldchain import daily, excursions, store
from server.coldchain.devices import ColdDevice
from server.coldchain.model import AlertLink, ColdReading, DailyRecord
from server.db.bulk import among
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

log = logging.getLogger(__name__)
# A reading of a day that ends sooner than this is kept under the chain's lock: the tick that
# records the day must not miss it.
CLOSE_MARGIN = timedelta(minutes=10)


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
        a canteen gateway holds most of its fridges), with a handful of queries whatever the
        number of devices. The usual batch (in-range readings of days still open, no
        excursion to bring up to date) appends nothing to the audit chain, so it does not
        wait for the chain's lock (the cold-chain tick holds it while it closes days);
        anything else is kept under the lock, as `store.write` does."""
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
        try:
            with self.sessions.begin() as s:
                self.keep(s, work, now, chained=False)
            return
        except _NeedsChain:
            pass
        except (IntegrityError, OperationalError):
            log.info("cold-chain readings kept again under the chain's lock")
        store.write(self.sessions, lambda s: self.keep(s, work, now, chained=True))

    def keep(
        self,
        s: Session,
        work: list[tuple[ColdDevice, list[Reading]]],
        now: datetime,
        *,
        chained: bool = True,
    ) -> int:
        """Store the readings not stored yet; bring the record up to date. Returns how many
        were new (0 for a redelivered batch: nothing else happens then). With
        `chained=False` it raises _NeedsChain (before the transaction commits) as soon as
        the record needs more than new rows: a day already recorded to mark for
        recomputation, a day about to close, an excursion to reconcile."""
        rows = [
            {
                "reading_id": r.reading_id,
                "device_id": dev.id,
                "measured_at": r.measured_at,
                "value": float(r.value),
                "received_at": r.received_at,
                "arrived_at": now,
                "seq": r.seq,
            }
            for dev, readings in work
            for r in readings
        ]
        # Stored once: a reading id already there (a redelivered batch) is left as it is.
        added = set(s.scalars(_insert_new(s, rows), rows))
        fresh: list[tuple[ColdDevice, list[Reading]]] = []
        for dev, readings in work:
            new = []
            for r in readings:
                if r.reading_id in added:
                    added.discard(r.reading_id)  # a repeat in the batch counts once
                    new.append(r)
            if new:
                fresh.append((dev, new))
        if not fresh:
            return 0
        days = {
            (dev.id, r.measured_at.astimezone(self.tz).date()) for dev, new in fresh for r in new
        }
        if not chained and any(self._ending(day, now) for _, day in days):
            raise _NeedsChain  # the tick may record that day any time now
        for chunk in _chunks(sorted({d for d, _ in days})):
            for rec in s.scalars(
                select(DailyRecord).where(
                    among(s, DailyRecord.device_id, chunk),
                    DailyRecord.day.in_({day for _, day in days}),
                )
            ):
                if (rec.device_id, rec.day) in days:
                    if not chained:
                        raise _NeedsChain
                    rec.stale = True  # recomputed by the next tick, as a correction if signed
        since = {dev.id: min(r.measured_at for r in new).astimezone(UTC) for dev, new in fresh}
        due = excursions.to_reconcile(s, [dev for dev, _ in fresh], since)
        if due and not chained:
            raise _NeedsChain
        for dev, _ in fresh:
            if dev.id in due:
                excursions.reconcile(s, dev, since[dev.id], now, self.tz)
        return sum(len(new) for _, new in fresh)

    def _ending(self, day: date, now: datetime) -> bool:
        """The day has ended, or ends within CLOSE_MARGIN: the tick closes it
        `day_close_after` (>= 0) past its end, so before that it cannot be recording it."""
        return daily.day_bounds(day, self.tz)[1] <= now + CLOSE_MARGIN

    # -- alerts and work orders ------------------------------------------------------------
    # The links are not chained: they are written without waiting for the chain's lock.
    def on_alert(self, ev: AlertRaised | AlertResolved) -> None:
        if ev.alert.device_id in self.devices:
            self._unchained(lambda s: link_alert(s, ev.alert))

    def on_work_order(self, ev: WorkOrderOpened | WorkOrderChanged) -> None:
        order = ev.order
        if order.alert_id is not None and order.device_id in self.devices:
            self._unchained(lambda s: link_order(s, order))

    def _unchained(self, fn: Callable[[Session], None]) -> None:
        """One transaction that appends nothing to the audit chain; a conflict (another
        writer first) is retried the way `store.write` retries."""
        try:
            with self.sessions.begin() as s:
                fn(s)
        except (IntegrityError, OperationalError):
            store.write(self.sessions, fn)


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


def _insert_new(s: Session, rows: list[dict[str, Any]]) -> Any:
    """INSERT .. ON CONFLICT (reading_id) DO NOTHING RETURNING reading_id: the ids it added
    (one statement; the unique index answers, however long the record is)."""
    table = cast(Table, ColdReading.__table__)
    dialect = s.get_bind().dialect.name
    ins = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    return ins.on_conflict_do_nothing(index_elements=["reading_id"]).returning(table.c.reading_id)


class _NeedsChain(Exception):
    """The batch's record needs the audit chain (and so its lock)."""


def _chunks(items: list[str], size: int = 1000) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _numeric(r: Reading) -> bool:
    return isinstance(r.value, int | float) and not isinstance(r.value, bool)
