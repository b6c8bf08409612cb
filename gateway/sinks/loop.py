"""Sink stage driver: one sink's outbox cursor -> the sink, retried with back-off until it
takes each batch. The same loop runs the uplink in the gateway's process and the
time-series sink in the sink process (worker.py); what it saw goes to a `SinkObserver`
(the gateway's metrics, or the sink process's report to the gateway). No I/O of its own
beyond the outbox and the sink; nothing here imports Prometheus or pydantic, so the sink
process stays small."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Protocol

from core.readings import now_ms
from gateway.outbox.outbox import Outbox
from gateway.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)

# Items per sink write: one request or transaction of this many amortises its round trip
# and fsync, and stays small for any store (InfluxDB advises batches of 5,000 lines).
SINK_BATCH = 2000
PRUNE_EVERY_S = 5.0
IDLE_WAIT_S = 0.5


class SinkObserver(Protocol):
    """What a sink loop reports: gateway.metrics.GatewayMetrics counts it."""

    def sink_took(self, sink: str, items: int, seconds: float, pending: int) -> None: ...

    def sink_failed(self, sink: str, pending: int) -> None: ...

    def sink_idle(self, sink: str) -> None: ...


class Wake:
    """New items are in the outbox: wakes the loops waiting for them. A generation count,
    so a wake that comes between a loop's empty read and its wait is not lost."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def generation(self) -> int:
        return self._generation

    def wait(self, seen: int, timeout: float) -> None:
        """Until a wake after generation `seen`, or `timeout` seconds."""
        with self._cond:
            if self._generation == seen:
                self._cond.wait(timeout)


def run_sink(
    sink: Sink,
    outbox: Outbox,
    stop: threading.Event,
    wake: Wake,
    observer: SinkObserver,
    *,
    batch_items: int = SINK_BATCH,
) -> None:
    """Until `stop`: read the sink's next batch, write it, move its cursor. A batch is
    written whole or not at all (SinkError): the cursor moves only after the sink took it,
    so a crash in between sends it again, and sinks are idempotent."""
    name = sink.name
    backoff = 0.5
    last_prune = time.monotonic()
    while not stop.is_set():
        seen = wake.generation()
        batch = outbox.read(name, batch_items)
        if batch is None:
            observer.sink_idle(name)
            wake.wait(seen, IDLE_WAIT_S)
            continue
        started = time.perf_counter()
        try:
            sink.write_batch(batch)
        except SinkError as exc:
            observer.sink_failed(name, outbox.head - batch.first + 1)  # grows while down
            log.warning("sink %s: %s; retrying in %.1f s", name, exc, backoff)
            # Full jitter keeps many gateways from hammering a recovering store together.
            stop.wait(random.uniform(0, backoff))
            backoff = min(backoff * 2, 30.0)
            continue
        backoff = 0.5
        seconds = time.perf_counter() - started
        outbox.commit(name, batch.last)
        observer.sink_took(name, len(batch), seconds, outbox.head - batch.last)
        if time.monotonic() - last_prune > PRUNE_EVERY_S:
            outbox.prune()
            last_prune = time.monotonic()
        try:
            sink.maintain(now_ms())
        except SinkError as exc:
            log.warning("%s", exc)
