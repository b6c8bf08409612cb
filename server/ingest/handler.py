"""What every uplink transport does with a message once it has it: UplinkGuard ->
IngestPipeline, refusals counted, logged (a few lines per reason and minute) and kept as dead
letters, gateway status applied. The transports (consumer.py: one MQTT subscriber;
partitioned.py: RabbitMQ partition queues) acknowledge a message only when `process` says so.

A message the pipeline fails on is tried again while the database is unreachable (nothing
else could be stored meanwhile either), and dead-lettered and acknowledged when it fails for
any other reason.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import InterfaceError, OperationalError

from core.clock import Clock, utcnow
from core.wire import WireError, decode_status
from server.ingest import dead_letters
from server.ingest.pipeline import IngestPipeline
from server.ingest.uplink_check import UplinkGuard, Verdict, topic_gateway

log = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError)  # the database is away, not the message bad
TRANSIENT_TRIES = 8  # then the message is taken for a poisoned one (if it can be recorded)
LOG_PER_MINUTE = 5  # refusal log lines per reason and minute; the rest are counted only


def default_guard(pipeline: IngestPipeline) -> UplinkGuard:
    return UplinkGuard(
        pipeline.site,
        max_bytes=4_000_000,
        max_items=50_000,
        max_future=timedelta(minutes=5),
        max_age=timedelta(days=400),
    )


class UplinkHandler:
    def __init__(
        self,
        pipeline: IngestPipeline,
        clock: Clock,
        registry: CollectorRegistry,
        *,
        guard: UplinkGuard | None = None,
        max_dead_letters: int = 10_000,
    ) -> None:
        self._pipeline = pipeline
        self._clock = clock
        self._guard = guard or default_guard(pipeline)
        self._max_dead_letters = max_dead_letters
        self._stop = threading.Event()
        self._logged: dict[str, tuple[float, int]] = {}
        self.batches = Counter(
            "server_uplink_batches", "Uplink batches processed", registry=registry
        )
        self.readings = Counter("server_uplink_readings", "Readings processed", registry=registry)
        self.wire_errors = Counter(
            "server_uplink_rejected",
            "Uplink messages, readings and events refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "server_uplink_dead_letters", "Dead letters written", registry=registry
        )

    def _process(self, topic: str, payload: bytes) -> bool:
        """Handle one message until it is stored or dead-lettered; True = acknowledge it."""
        tries = 0
        while not self._stop.is_set():
            tries += 1
            try:
                self.handle(topic, payload)
                return True
            except TRANSIENT as exc:
                if tries >= TRANSIENT_TRIES and self._poisoned(topic, payload, exc):
                    return True
                log.warning("database unavailable (%s); retrying %s", type(exc).__name__, topic)
            except Exception as exc:
                log.exception("processing %s failed", topic)
                if self._poisoned(topic, payload, exc):
                    return True
            self._stop.wait(min(2.0**tries / 4, 30.0))
        return False  # stopping: left unacknowledged, the broker redelivers it

    def _poisoned(self, topic: str, payload: bytes, exc: Exception) -> bool:
        """Keep a message the pipeline cannot process; True once it is recorded."""
        gw = topic_gateway(topic)
        verdict = Verdict(gw[0] if gw else None).refuse_whole(
            "processing_error", f"{type(exc).__name__} while storing it (see the server log)"
        )
        try:
            self._dead_letter(topic, payload, verdict)
        except Exception:
            log.exception("could not record a dead letter for %s", topic)
            return False
        return True

    def handle(self, topic: str, payload: bytes) -> None:
        """One uplink message: refusals recorded, the rest (if any) processed."""
        if topic.endswith("/status"):
            self._status(topic, payload)
            return
        verdict = self._guard.check_data(topic, payload, (utcnow(), self._clock.now()))
        if verdict.batch is not None:
            self._pipeline.handle_batch(verdict.batch)
            self.batches.inc()
            self.readings.inc(len(verdict.batch.readings))
        if verdict.refusals:
            self._dead_letter(topic, payload, verdict)

    def _status(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained status
        parsed = topic_gateway(topic)
        verdict = Verdict(parsed[0] if parsed else None)
        try:
            status = decode_status(payload)
        except WireError as exc:
            self._dead_letter(topic, payload, verdict.refuse_whole("wire_schema", str(exc)))
            return
        if parsed is None or parsed[0] not in self._guard.gateways:
            verdict.refuse_whole("unknown_gateway", f"status on topic {topic[:200]!r}")
            self._dead_letter(topic, payload, verdict)
            return
        if status.gateway_id != parsed[0]:
            verdict.refuse_whole(
                "gateway_mismatch",
                f"status of {status.gateway_id[:64]!r} on topic {topic[:200]!r}",
            )
            self._dead_letter(topic, payload, verdict)
            return
        self._pipeline.gateway_status(status, self._clock.now())

    def _dead_letter(self, topic: str, payload: bytes, verdict: Verdict) -> None:
        for reason, n in verdict.counts.items():
            self.wire_errors.labels(reason).inc(n)
        with self._pipeline.sessions.begin() as s:
            dead_letters.record(
                s,
                topic=topic,
                payload=payload,
                verdict=verdict,
                at=utcnow(),
                max_rows=self._max_dead_letters,
            )
        self.dead_lettered.inc()
        reason = verdict.reason or "refused"
        if self._may_log(reason):
            what = "refused" if verdict.whole else f"{verdict.refused_items} item(s) refused in"
            detail = verdict.refusals[0].detail if verdict.refusals else ""
            log.warning("uplink %s message on %s: %s: %s", what, topic[:200], reason, detail)

    def _may_log(self, reason: str) -> bool:
        now = time.monotonic()
        start, n = self._logged.get(reason, (now, 0))
        if now - start >= 60:
            if n > LOG_PER_MINUTE:
                log.warning(
                    "uplink: %d more %s refusals in the last minute", n - LOG_PER_MINUTE, reason
                )
            start, n = now, 0
        self._logged[reason] = (start, n + 1)
        return n < LOG_PER_MINUTE
