"""Fan-out of live events to SSE subscribers, each filtered by its viewer's scope.

The hub subscribes to the domain events a browser shows (device state, alerts, work orders,
gateway status) and turns each into the stream's own JSON; nothing else reads that JSON.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.alerts.schemas import AlertOut
from server.events.bus import EventBus
from server.events.types import (
    AlertAcknowledged,
    AlertAssigned,
    AlertRaised,
    AlertResolved,
    DeviceStateChanged,
    GatewayStatusReported,
    WorkOrderChanged,
    WorkOrderOpened,
)
from server.work_orders.schemas import WorkOrderOut


@dataclass(frozen=True, slots=True)
class LiveEvent:
    type: str  # reading | alert | work_order | gateway
    data: dict[str, Any]
    building: str | None = None
    device_class: str | None = None
    category: str | None = None


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    accept: Callable[[LiveEvent], bool]
    queue: asyncio.Queue[LiveEvent] = field(default_factory=lambda: asyncio.Queue(2000))
    dropped: int = 0

    def _put(self, event: LiveEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1  # a stalled browser must not hold memory or the ingest thread


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


class LiveHub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        # Set when several server processes share the stream (server/stream/fanout.py):
        # events go out through the engine and come back to `deliver` in every process.
        self.remote: Callable[[LiveEvent], None] | None = None

    def subscribe_to(self, bus: EventBus) -> None:
        bus.subscribe(DeviceStateChanged, self._device, name="stream.device")
        bus.subscribe(AlertRaised, self._alert, name="stream.alert")
        bus.subscribe(AlertAcknowledged, self._alert, name="stream.alert")
        bus.subscribe(AlertAssigned, self._alert, name="stream.alert")
        bus.subscribe(AlertResolved, self._alert, name="stream.alert")
        bus.subscribe(WorkOrderOpened, self._order, name="stream.work_order")
        bus.subscribe(WorkOrderChanged, self._order, name="stream.work_order")
        bus.subscribe(GatewayStatusReported, self._gateway, name="stream.gateway")

    # -- domain events -> stream events ------------------------------------------------
    def _device(self, ev: DeviceStateChanged) -> None:
        d = ev.device
        data = {
            "device_id": d.id,
            "values": d.values,
            "online": d.online,
            "last_seen": _iso(d.last_seen),
        }
        self.publish(LiveEvent("reading", data, d.building, d.device_class))

    def _alert(self, ev: AlertRaised | AlertAcknowledged | AlertAssigned | AlertResolved) -> None:
        a = ev.alert
        data = AlertOut.model_validate(a).model_dump(mode="json")
        self.publish(LiveEvent("alert", data, a.building, a.device_class))

    def _order(self, ev: WorkOrderOpened | WorkOrderChanged) -> None:
        o = ev.order
        data = WorkOrderOut.model_validate(o).model_dump(mode="json")
        self.publish(LiveEvent("work_order", data, o.building, o.device_class, o.category))

    def _gateway(self, ev: GatewayStatusReported) -> None:
        self.publish(LiveEvent("gateway", {"gateway_id": ev.gateway_id, "state": ev.state}))

    # -- subscribers -------------------------------------------------------------------
    def subscribe(self, accept: Callable[[LiveEvent], bool]) -> Subscription:
        sub = Subscription(asyncio.get_running_loop(), accept)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, event: LiveEvent) -> None:
        """Thread-safe: called from the ingest thread or a request after its commit."""
        remote = self.remote
        if remote is not None:
            remote(event)
        else:
            self.deliver(event)

    def deliver(self, event: LiveEvent) -> None:
        """To this process's subscribers whose scope accepts it."""
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if sub.accept(event):
                try:
                    sub.loop.call_soon_threadsafe(sub._put, event)
                except RuntimeError:
                    self.unsubscribe(sub)  # its event loop is gone

    @property
    def subscribers(self) -> int:
        return len(self._subs)
