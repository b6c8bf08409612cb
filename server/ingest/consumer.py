"""Uplink consumer: MQTT (persistent session, QoS 1, manual ack) -> UplinkHandler
(guard, pipeline, dead letters: server/ingest/handler.py).

A batch is acknowledged to the broker only after its transaction commits, so a server
crash redelivers it; the pipeline is idempotent on reading and event ids. What the guard
refuses is acknowledged too: a bad message never blocks the ones behind it. The one server
of a campus; several workers share the uplink through server/ingest/partitioned.py instead.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import paho.mqtt.client as mqtt
from prometheus_client import CollectorRegistry

from core.clock import Clock
from core.mqtturl import BrokerEndpoint, make_client
from core.wire import DATA_SUBSCRIPTION, STATUS_SUBSCRIPTION
from server.ingest.handler import UplinkHandler
from server.ingest.pipeline import IngestPipeline
from server.ingest.uplink_check import UplinkGuard

log = logging.getLogger(__name__)


class UplinkConsumer(UplinkHandler):
    def __init__(
        self,
        endpoint: BrokerEndpoint,
        client_id: str,
        pipeline: IngestPipeline,
        clock: Clock,
        tick_seconds: float,
        registry: CollectorRegistry,
        *,
        guard: UplinkGuard | None = None,
        max_dead_letters: int = 10_000,
    ) -> None:
        super().__init__(pipeline, clock, registry, guard=guard, max_dead_letters=max_dead_letters)
        self._endpoint = endpoint
        self._tick = tick_seconds
        self._queue: queue.SimpleQueue[mqtt.MQTTMessage] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self.connected = False
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
            if self._process(msg.topic, bytes(msg.payload)) and msg.qos > 0:
                self._client.ack(msg.mid, msg.qos)

    def _ticker(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self._pipeline.tick(self._clock.now())
            except Exception:
                log.exception("rule tick failed")
