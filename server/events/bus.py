"""The server's in-process event bus: typed subscribe, publish after commit, failures isolated.

Handlers run in the publishing thread (the uplink worker or a request), after the producer's
transaction has committed, so they only see what is durable. A handler must be quick: it
enqueues work for its own thread (the notifier's delivery worker, a browser's queue). One
that raises is logged and counted, and the next handler still runs; the producer never sees
the error, so a broken consumer cannot hold back the uplink acknowledgement or make a
message redeliver forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter

from server.events.types import DomainEvent

log = logging.getLogger(__name__)
E = TypeVar("E", bound=DomainEvent)
_LOG_EVERY_S = 60.0  # a handler failing on every event logs its traceback once a minute


class EventBus:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._handlers: dict[type[DomainEvent], list[tuple[str, Callable[[Any], None]]]] = {}
        self._batch_handlers: list[tuple[type[DomainEvent], str, Callable[[Any], None]]] = []
        self._lock = threading.Lock()
        self._last_logged: dict[tuple[str, str], float] = {}
        self.failures = Counter(
            "server_event_listener_failures",
            "Domain-event handlers that raised (the event went on to the other handlers)",
            ["listener", "event"],
            registry=registry,
        )

    def subscribe(
        self, kind: type[E], handler: Callable[[E], None], *, name: str | None = None
    ) -> None:
        """`handler` gets every event of `kind` and its subclasses (DomainEvent: all)."""
        label: str = name or str(getattr(handler, "__qualname__", repr(handler)))
        with self._lock:
            self._handlers.setdefault(kind, []).append((label, handler))

    def subscribe_batch(
        self, kind: type[E], handler: Callable[[list[E]], None], *, name: str | None = None
    ) -> None:
        """`handler` gets, once per `publish_all`, every event of `kind` in it (only when there
        is at least one): one transaction for a whole uplink batch instead of one per device.
        A single `publish` counts as a batch of one."""
        label: str = name or str(getattr(handler, "__qualname__", repr(handler)))
        with self._lock:
            self._batch_handlers.append((kind, label, handler))

    def unsubscribe(self, handler: Callable[[Any], None]) -> None:
        with self._lock:
            for kind, hs in self._handlers.items():
                self._handlers[kind] = [(n, h) for n, h in hs if h != handler]

    def publish(self, event: DomainEvent) -> None:
        self.publish_all((event,))

    def publish_all(self, events: Iterable[DomainEvent]) -> None:
        events = list(events)
        for event in events:
            self._each(event)
        with self._lock:
            batched = list(self._batch_handlers)
        for kind, name, handler in batched:
            mine = [e for e in events if isinstance(e, kind)]
            if not mine:
                continue
            try:
                handler(mine)
            except Exception:
                self._failed(name, mine[0])

    def _each(self, event: DomainEvent) -> None:
        with self._lock:
            targets = [
                entry for kind in type(event).__mro__ for entry in self._handlers.get(kind, ())
            ]
        for name, handler in targets:
            try:
                handler(event)
            except Exception:
                self._failed(name, event)

    def _failed(self, name: str, event: DomainEvent) -> None:
        kind = type(event).__name__
        self.failures.labels(name, kind).inc()
        now = time.monotonic()
        key = (name, kind)
        if now - self._last_logged.get(key, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._last_logged[key] = now
            log.exception("event handler %s failed on %s (counted; others still ran)", name, kind)
