"""The live stream across server processes: every process sends its stream events to a
RabbitMQ fanout exchange and hands what comes back to its own browsers, so a browser sees
the same events whichever API replica or worker it is connected to.

Each process has its own exclusive, auto-deleted queue (capped at 10,000 events, dropping the
oldest, and each event dropped after 10 s: a stalled replica cannot fill the broker). The
stream is live state, not a record: while the engine is unreachable, events go to this
process's own browsers only, and a browser that missed some re-reads the API on reconnect.
"""

from __future__ import annotations

import logging
import queue
import threading

import orjson
import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from pika.spec import Basic, BasicProperties

from server.stream.hub import LiveEvent, LiveHub

log = logging.getLogger(__name__)
EXCHANGE = "facility.live"


def encode(e: LiveEvent) -> bytes:
    return orjson.dumps(
        {
            "type": e.type,
            "data": e.data,
            "building": e.building,
            "device_class": e.device_class,
            "category": e.category,
        }
    )


def decode(body: bytes) -> LiveEvent:
    raw = orjson.loads(body)
    return LiveEvent(
        raw["type"], raw["data"], raw["building"], raw["device_class"], raw["category"]
    )


class EngineFanout:
    def __init__(self, amqp_url: str, hub: LiveHub) -> None:
        self._params = pika.URLParameters(amqp_url)
        self._params.heartbeat = 30
        self._hub = hub
        self._out: queue.SimpleQueue[LiveEvent] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-fanout", daemon=True)
        self.connected = False

    def start(self) -> None:
        self._hub.remote = self.send
        self._thread.start()

    def stop(self) -> None:
        self._hub.remote = None
        self._stop.set()
        self._thread.join(timeout=10)

    def send(self, event: LiveEvent) -> None:
        """Called by the hub for every stream event this process produces (any thread)."""
        if self.connected:
            self._out.put(event)
        else:
            self._hub.deliver(event)  # the engine is away: this process's browsers only

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except AMQPError as exc:
                log.warning("stream fan-out: %s; reconnecting", exc)
            except Exception:
                log.exception("stream fan-out failed; reconnecting")
            self.connected = False
            self._stop.wait(1.0)

    def _session(self) -> None:
        conn = pika.BlockingConnection(self._params)
        try:
            ch = conn.channel()
            ch.exchange_declare(EXCHANGE, "fanout", durable=True)
            q = ch.queue_declare(
                "",
                exclusive=True,
                auto_delete=True,
                arguments={
                    "x-max-length": 10_000,
                    "x-overflow": "drop-head",
                    "x-message-ttl": 10_000,
                },
            )
            ch.queue_bind(q.method.queue, EXCHANGE)
            ch.basic_consume(q.method.queue, self._on_message, auto_ack=True)
            self.connected = True
            while not self._stop.is_set():
                conn.process_data_events(time_limit=0.05)
                while True:
                    try:
                        event = self._out.get_nowait()
                    except queue.Empty:
                        break
                    ch.basic_publish(EXCHANGE, "", encode(event))
        finally:
            self.connected = False
            if conn.is_open:
                conn.close()

    def _on_message(
        self, _c: BlockingChannel, _m: Basic.Deliver, _p: BasicProperties, body: bytes
    ) -> None:
        try:
            self._hub.deliver(decode(body))
        except (ValueError, KeyError, TypeError):
            log.warning("stream fan-out: an event that is not ours was ignored")
