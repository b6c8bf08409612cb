"""Live device state: the latest value per metric, last seen, online, completeness.

One `LiveState` per transaction: it loads each device row once, applies readings and
events to it, and afterwards says what changed as domain events (published after commit).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.readings import DeviceEvent, Reading, unix_ms
from core.site import SiteConfig
from server.events.types import (
    DeviceCameOnline,
    DeviceSnapshot,
    DeviceStateChanged,
    DeviceWentOffline,
    DomainEvent,
)
from server.ingest import completeness
from server.ingest.model import Device


def snapshot(d: Device) -> DeviceSnapshot:
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


@dataclass
class LiveState:
    session: Session
    poll_ms: dict[str, int]
    _devices: dict[str, Device | None] = field(default_factory=dict)
    _touched: dict[str, Device] = field(default_factory=dict)
    _came_online: dict[str, datetime] = field(default_factory=dict)

    def device(self, device_id: str) -> Device | None:
        if device_id not in self._devices:
            self._devices[device_id] = self.session.get(Device, device_id)
        return self._devices[device_id]

    def load(self, device_ids: Collection[str]) -> None:
        """These devices' rows in one query, locked for this transaction (in id order, so
        two writers never wait on each other in a circle): on PostgreSQL the clock and
        another worker then wait for or skip them instead of overwriting what we write."""
        wanted = sorted(d for d in device_ids if d not in self._devices)
        for d in wanted:
            self._devices[d] = None  # not in the table: an unknown device
        for start in range(0, len(wanted), 1000):
            q = select(Device).where(Device.id.in_(wanted[start : start + 1000]))
            for row in self.session.scalars(q.order_by(Device.id).with_for_update()):
                self._devices[row.id] = row

    def reading(self, device: Device, r: Reading) -> datetime | None:
        """Apply a reading; returns the event time of the device's newest data before it."""
        ts = unix_ms(r.measured_at)
        values = device.values
        previous = max((v["t"] for v in values.values()), default=None)
        current = values.get(r.metric)
        if current is None or ts >= current["t"]:
            device.values = {**values, r.metric: {"v": r.value, "t": ts, "u": r.unit}}
        completeness.count_message(device, r.seq, ts, self.poll_ms.get(device.id))
        self._seen(device, r.received_at, r.measured_at)
        return _at(previous) if previous is not None else None

    def event(self, device: Device, e: DeviceEvent) -> None:
        self._seen(device, e.received_at, e.measured_at)

    def _seen(self, device: Device, received_at: datetime, at: datetime) -> None:
        if device.last_seen is None or received_at > device.last_seen:
            device.last_seen = received_at
        if not device.online:
            device.online = True
            self._came_online.setdefault(device.id, at)
        self._touched[device.id] = device

    def went_offline(self, device: Device, at: datetime) -> list[DomainEvent]:
        device.online = False
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
    def touched(self) -> list[Device]:
        return list(self._touched.values())


def _at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
