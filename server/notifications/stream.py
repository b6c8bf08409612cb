"""Fan-out of live events to SSE subscribers, each filtered by its viewer's scope."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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


class Broadcaster:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._listeners: list[Callable[[LiveEvent], None]] = []
        self._lock = threading.Lock()

    def add_listener(self, listener: Callable[[LiveEvent], None]) -> None:
        """Called in the publishing thread for every event; must only enqueue work."""
        with self._lock:
            self._listeners.append(listener)

    def subscribe(self, accept: Callable[[LiveEvent], bool]) -> Subscription:
        sub = Subscription(asyncio.get_running_loop(), accept)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, event: LiveEvent) -> None:
        """Thread-safe: called from the ingest thread after its transaction commits."""
        with self._lock:
            subs = list(self._subs)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)
        for sub in subs:
            if sub.accept(event):
                try:
                    sub.loop.call_soon_threadsafe(sub._put, event)
                except RuntimeError:
                    self.unsubscribe(sub)  # its event loop is gone

    @property
    def subscribers(self) -> int:
        return len(self._subs)
