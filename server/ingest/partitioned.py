"""Partitioned uplink: several server workers share the gateways' uplink through RabbitMQ.

Gateways publish over RabbitMQ's MQTT plugin, which routes their messages to `amq.topic`
with the topic as routing key ('/' and '.' swapped). That exchange feeds a consistent-hash
exchange, which spreads routing keys over `partitions` quorum queues, each with a single
active consumer: every message of one gateway's data topic (so every reading of each of its
devices) goes to one queue, and one worker at a time takes that queue in order.

Each worker consumes first the partitions p with p % workers == worker_index, then registers
as a standby consumer on the others once they have a consumer (or after `grace` without one:
their worker is missing, so it takes them). When a worker dies its connection closes, the
broker returns its unacknowledged messages to the head of their queues and activates the
next consumer: the partition moves within a second, in order. A message is acknowledged only
after its transaction committed; one redelivered after a crash between commit and ack is
processed again, which the pipeline ignores (rule state, completeness and alerts are keyed
on the readings' times and ids).

Known limit of RabbitMQ 3.x's single active consumer: a worker that comes back stands by;
partitions move back to it only when their current consumer goes (no cooperative handoff:
a handoff would let the next consumer start before the last one's messages were settled).
"""

from __future__ import annotations

import logging
import threading
import time

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties
from prometheus_client import CollectorRegistry, Gauge

from core.clock import Clock
from core.wire import TOPIC_ROOT
from server.ingest.handler import UplinkHandler
from server.ingest.pipeline import IngestPipeline
from server.ingest.uplink_check import UplinkGuard

log = logging.getLogger(__name__)
EXCHANGE = "facility.uplink"
_SWAP = str.maketrans("./", "/.")


def queue_name(p: int) -> str:
    return f"facility.uplink.p{p:03d}"


def topic_of(routing_key: str) -> str:
    """The MQTT topic RabbitMQ's MQTT plugin turned into `routing_key` ('/' <-> '.')."""
    return routing_key.translate(_SWAP)


def declare_topology(ch: BlockingChannel, partitions: int) -> None:
    """Idempotent: every worker declares it at start (the same `partitions` everywhere)."""
    ch.exchange_declare(EXCHANGE, "x-consistent-hash", durable=True)
    ch.exchange_bind(EXCHANGE, "amq.topic", TOPIC_ROOT.replace("/", ".") + ".gw.#")
    for p in range(partitions):
        ch.queue_declare(
            queue_name(p),
            durable=True,
            arguments={"x-queue-type": "quorum", "x-single-active-consumer": True},
        )
        ch.queue_bind(queue_name(p), EXCHANGE, routing_key="1")  # equal weights


class PartitionedConsumer(UplinkHandler):
    def __init__(
        self,
        amqp_url: str,
        pipeline: IngestPipeline,
        clock: Clock,
        registry: CollectorRegistry,
        *,
        partitions: int,
        worker_index: int,
        workers: int,
        grace_s: float,
        guard: UplinkGuard | None = None,
        max_dead_letters: int = 10_000,
        prefetch: int = 4,
    ) -> None:
        super().__init__(pipeline, clock, registry, guard=guard, max_dead_letters=max_dead_letters)
        self._params = pika.URLParameters(amqp_url)
        self._params.heartbeat = 30
        self._partitions = partitions
        self._preferred = [p for p in range(partitions) if p % workers == worker_index]
        self._grace = grace_s
        self._prefetch = prefetch
        self._thread: threading.Thread | None = None
        self.connected = False
        self.active: set[int] = set()  # partitions that delivered to this worker
        self.active_gauge = Gauge(
            "server_uplink_partitions_active",
            "Uplink partitions this worker has taken messages from since it connected",
            registry=registry,
        )

    def start(self) -> None:
        t = threading.Thread(target=self._run, name="server-uplink-amqp", daemon=True)
        t.start()
        self._thread = t

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._session()
                delay = 0.5
            except AMQPError as exc:
                log.warning("uplink engine: %s; reconnecting in %.1f s", exc, delay)
            except Exception:
                log.exception("uplink engine consumer failed; reconnecting")
            self.connected = False
            self.active.clear()
            self._stop.wait(delay)
            delay = min(delay * 2, 10.0)

    def _session(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            ch = conn.channel()
            declare_topology(ch, self._partitions)
            ch.basic_qos(prefetch_count=self._prefetch)
            registered: set[int] = set()
            for p in self._preferred:
                self._consume(ch, p, registered)
            self.connected = True
            log.info("uplink engine: consuming partitions %s first", self._preferred)
            started = checked = time.monotonic()
            while not self._stop.is_set():
                conn.process_data_events(time_limit=0.2)
                now = time.monotonic()
                if len(registered) < self._partitions and now - checked >= 1.0:
                    checked = now
                    for p in range(self._partitions):
                        if p in registered:
                            continue
                        q = ch.queue_declare(queue_name(p), passive=True)
                        if q.method.consumer_count > 0 or now - started >= self._grace:
                            self._consume(ch, p, registered)  # standby, or theirs is missing
        finally:
            if conn.is_open:
                conn.close()  # unacknowledged messages go back to their queues

    def _consume(self, ch: BlockingChannel, p: int, registered: set[int]) -> None:
        def on_message(
            c: BlockingChannel, method: Basic.Deliver, _props: BasicProperties, body: bytes
        ) -> None:
            if p not in self.active:
                self.active.add(p)
                self.active_gauge.set(len(self.active))
                log.info("uplink engine: partition %d is ours", p)
            if self._process(topic_of(method.routing_key), body):
                c.basic_ack(method.delivery_tag)

        ch.basic_consume(queue_name(p), on_message)
        registered.add(p)
