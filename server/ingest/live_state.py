"""Live device state: the latest value per metric, last seen, online, completeness.

One `LiveState` per transaction: it loads each device row once (plain rows, one query for
a batch's devices), applies readings and events to it, writes the changed rows back in one
statement (`write`, before the commit), and says what changed as domain events (published
after commit).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from core.readings import DeviceEvent, Reading, unix_ms
from core.site import SiteConfig
from server.db.bulk import among, update_many
from server.events.types import (
    DeviceCameOnline,
    DeviceSnapshot,
    DeviceStateChanged,
    DeviceWentOffline,
    DomainEvent,
)
from server.ingest import completeness
from server.ingest.model import Device


def snapshot(d: Device | DeviceRow) -> DeviceSnapshot:
    return DeviceSnapshot(
        id=d.id,
        building=d.building,
        device_class=d.device_class,
        online=d.online,
        last_seen=d.last_seen,
        values=dict(d.values),
    )


def sync_devices(s: Session, site: SiteConfig, device_class: dict[str, str]) -> None:
    """Make the device table match the site file (ids fixed by the site, not by data)."""
    known = {d.id: d for d in s.scalars(select(Device))}
    for cfg in site.devices:
        row = known.get(cfg.id)
        if row is None:
            row = Device(id=cfg.id, values={}, received=0, seq_gaps=0, online=False)
            s.add(row)
        row.device_class = device_class[cfg.id]
        row.profile, row.building, row.location = cfg.profile, cfg.building, cfg.location
        row.room, row.gateway_id = cfg.room, cfg.gateway


_TABLE = cast(Table, Device.__table__)
_COLUMNS = tuple(_TABLE.columns)


class DeviceRow:
    """A device's row as the ingest path reads and writes it: plain attributes (the ORM's
    bookkeeping per object and per change cost more than the work itself), read in one query
    per batch and written back in one UPDATE for all the batch's devices."""

    __slots__ = (*(c.name for c in _COLUMNS), "dirty")

    id: str
    device_class: str
    profile: str
    building: str
    location: str
    room: str | None
    gateway_id: str
    last_seen: datetime | None
    online: bool
    values: dict[str, Any]
    received: int
    first_seq: int | None
    last_seq: int | None
    seq_gaps: int
    last_msg_ms: int | None
    cadence_ms: int | None

    def __init__(self, row: Any) -> None:
        for c, v in zip(_COLUMNS, row, strict=True):
            setattr(self, c.name, v)
        self.values = dict(self.values or {})
        self.dirty = False


_WRITTEN = (
    "last_seen",
    "online",
    "values",
    "received",
    "first_seq",
    "last_seq",
    "seq_gaps",
    "last_msg_ms",
    "cadence_ms",
)


@dataclass
class LiveState:
    session: Session
    poll_ms: dict[str, int]
    _devices: dict[str, DeviceRow | None] = field(default_factory=dict)
    _touched: dict[str, DeviceRow] = field(default_factory=dict)
    _came_online: dict[str, datetime] = field(default_factory=dict)

    def device(self, device_id: str) -> DeviceRow | None:
        if device_id not in self._devices:
            self.load([device_id])
        return self._devices[device_id]

    def load(self, device_ids: Collection[str]) -> None:
        """These devices' rows in one query, locked for this transaction (in id order, so
        two writers never wait on each other in a circle): on PostgreSQL the clock and
        another worker then wait for or skip them instead of overwriting what we write."""
        wanted = sorted(d for d in device_ids if d not in self._devices)
        for d in wanted:
            self._devices[d] = None  # not in the table: an unknown device
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            q = select(*_COLUMNS).where(among(self.session, _TABLE.c.id, chunk))
            for row in self.session.execute(q.order_by(_TABLE.c.id).with_for_update()):
                self._devices[row.id] = DeviceRow(row)

    def load_seen(self, device_ids: Collection[str]) -> list[DeviceRow]:
        """The clock's chunk: these devices that have been seen, in id order, locked; those
        another transaction holds (a batch of theirs in progress) are skipped."""
        q = select(*_COLUMNS).where(among(self.session, _TABLE.c.id, list(device_ids)))
        q = q.where(_TABLE.c.last_seen.is_not(None)).order_by(_TABLE.c.id)
        out = [DeviceRow(r) for r in self.session.execute(q.with_for_update(skip_locked=True))]
        self._devices.update((d.id, d) for d in out)
        return out

    def write(self) -> None:
        """Every changed device row in one UPDATE (executemany)."""
        changed = [d for d in self._devices.values() if d is not None and d.dirty]
        if not changed:
            return
        rows = []
        for d in changed:
            rows.append({name: getattr(d, name) for name in ("id", *_WRITTEN)})
            d.dirty = False
        update_many(self.session.connection(), _TABLE, ("id",), rows)

    def reading(self, device: DeviceRow, r: Reading) -> datetime | None:
        """Apply a reading; returns the event time of the device's newest data before it."""
        ts = unix_ms(r.measured_at)
        values = device.values
        previous = max((v["t"] for v in values.values()), default=None)
        current = values.get(r.metric)
        if current is None or ts >= current["t"]:
            values[r.metric] = {"v": r.value, "t": ts, "u": r.unit}
        completeness.count_message(device, r.seq, ts, self.poll_ms.get(device.id))
        self._seen(device, r.received_at, r.measured_at)
        return _at(previous) if previous is not None else None

    def event(self, device: DeviceRow, e: DeviceEvent) -> None:
        self._seen(device, e.received_at, e.measured_at)

    def _seen(self, device: DeviceRow, received_at: datetime, at: datetime) -> None:
        if device.last_seen is None or received_at > device.last_seen:
            device.last_seen = received_at
        if not device.online:
            device.online = True
            self._came_online.setdefault(device.id, at)
        device.dirty = True
        self._touched[device.id] = device

    def went_offline(self, device: DeviceRow, at: datetime) -> list[DomainEvent]:
        device.online = False
        device.dirty = True
        snap = snapshot(device)
        return [DeviceWentOffline(at=at, device=snap), DeviceStateChanged(at=at, device=snap)]

    def changes(self, at: datetime) -> list[DomainEvent]:
        """Each touched device's new state, after the items of a batch were applied."""
        out: list[DomainEvent] = []
        for device_id, device in self._touched.items():
            snap = snapshot(device)
            if device_id in self._came_online:
                out.append(DeviceCameOnline(at=self._came_online[device_id], device=snap))
            out.append(DeviceStateChanged(at=at, device=snap))
        return out

    @property
    def loaded(self) -> list[str]:
        """The ids of the devices loaded so far that have a row."""
        return [d for d, row in self._devices.items() if row is not None]

    @property
    def touched(self) -> list[DeviceRow]:
        return list(self._touched.values())


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
