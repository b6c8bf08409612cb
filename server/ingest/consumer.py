"""Uplink consumer: MQTT (persistent session, QoS 1, manual ack) -> IngestPipeline.

A batch is acknowledged to the broker only after its transaction commits, so a server
crash redelivers it; the pipeline is idempotent on reading and event ids.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import paho.mqtt.client as mqtt
from prometheus_client import CollectorRegistry, Counter

from core.clock import Clock
from core.mqtturl import BrokerEndpoint, make_client
from core.wire import DATA_SUBSCRIPTION, STATUS_SUBSCRIPTION, WireError, decode_batch, decode_status
from server.ingest.pipeline import IngestPipeline

log = logging.getLogger(__name__)


class UplinkConsumer:
    def __init__(
        self,
        endpoint: BrokerEndpoint,
        client_id: str,
        pipeline: IngestPipeline,
        clock: Clock,
        tick_seconds: float,
        registry: CollectorRegistry,
    ) -> None:
        self._endpoint = endpoint
        self._pipeline = pipeline
        self._clock = clock
        self._tick = tick_seconds
        self._queue: queue.SimpleQueue[mqtt.MQTTMessage] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connected = False
        self.batches = Counter(
            "server_uplink_batches", "Uplink batches processed", registry=registry
        )
        self.readings = Counter("server_uplink_readings", "Readings processed", registry=registry)
        self.wire_errors = Counter(
            "server_uplink_rejected", "Uplink messages rejected", ["reason"], registry=registry
        )
        self._client = make_client(endpoint, client_id, persistent=True, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = lambda _c, _u, msg: self._queue.put(msg)

    def start(self) -> None:
        for name, target in (("uplink", self._work), ("rules-tick", self._ticker)):
            t = threading.Thread(target=target, name=f"server-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        for t in self._threads:
            t.join(timeout=10)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("uplink broker %s refused connection: %s", self._endpoint, reason)
            return
        self.connected = True
        client.subscribe([(DATA_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)])

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected = False
        log.warning("uplink broker %s disconnected: %s", self._endpoint, reason)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.handle(msg.topic, bytes(msg.payload))
            except Exception:
                # Not acked: the broker redelivers after reconnect. Log loudly and go on.
                log.exception("processing %s failed; left unacknowledged", msg.topic)
                continue
            if msg.qos > 0:
                self._client.ack(msg.mid, msg.qos)

    def handle(self, topic: str, payload: bytes) -> None:
        try:
            if topic.endswith("/status"):
                if not payload:
                    return  # a cleared retained status
                self._pipeline.gateway_status(decode_status(payload), self._clock.now())
                return
            batch = decode_batch(payload)
        except WireError as exc:
            self.wire_errors.labels("wire_schema").inc()
            log.warning("rejected uplink message on %s: %s", topic, exc)
            return
        self._pipeline.handle_batch(batch)
        self.batches.inc()
        self.readings.inc(len(batch.readings))

    def _ticker(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self._pipeline.tick(self._clock.now())
            except Exception:
                log.exception("rule tick failed")
