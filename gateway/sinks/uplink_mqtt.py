"""Uplink sink: batches to the server over MQTT QoS 1; a batch counts once the broker acks it."""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

import paho.mqtt.client as mqtt

from core.clock import utcnow
from core.mqtturl import BrokerEndpoint, make_client
from core.wire import (
    GatewayStatus,
    WireEvent,
    WireReading,
    data_topic,
    encode_batch,
    encode_batch_json,
    encode_status,
    status_topic,
)
from gateway.sinks.base import OutboxBatch, Sink, SinkError

log = logging.getLogger(__name__)


class UplinkSink(Sink):
    """Also carries the gateway's health: retained status, and `offline` as its last will."""

    def __init__(
        self,
        endpoint: BrokerEndpoint,
        gateway_id: str,
        devices: list[str],
        name: str = "uplink",
        publish_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.gateway_id = gateway_id
        self._endpoint = endpoint
        self._devices = devices
        self._timeout = publish_timeout
        self.outbox_fill = 0.0
        self.offline_devices: list[str] = []
        self._connected = threading.Event()
        will = encode_status(GatewayStatus(gateway_id=gateway_id, state="offline"))
        self._client = make_client(
            endpoint, f"facility-gw-{gateway_id}-uplink", will=(status_topic(gateway_id), will)
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect

    def start(self) -> None:
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("uplink broker %s refused connection: %s", self._endpoint, reason)
            return
        self._connected.set()
        self.publish_status("online")

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connected.clear()
        log.warning("uplink broker %s disconnected: %s", self._endpoint, reason)

    def publish_status(
        self,
        state: Literal["online", "offline"],
        offline_devices: list[str] | None = None,
        outbox_fill: float | None = None,
    ) -> None:
        if outbox_fill is not None:
            self.outbox_fill = outbox_fill
        if offline_devices is not None:
            self.offline_devices = offline_devices
        status = GatewayStatus(
            gateway_id=self.gateway_id,
            state=state,
            at=utcnow(),
            devices=self._devices,
            offline_devices=self.offline_devices,
            outbox_fill=round(self.outbox_fill, 4),
        )
        self._client.publish(
            status_topic(self.gateway_id), encode_status(status), qos=1, retain=True
        )

    def write(
        self, readings: list[WireReading], events: list[WireEvent], first: int, last: int
    ) -> None:
        self._send(encode_batch(self.gateway_id, first, last, readings, events))

    def write_json(self, readings: bytes, events: bytes, first: int, last: int) -> None:
        """`write` for items already encoded: JSON arrays of wire readings and events."""
        self._send(encode_batch_json(self.gateway_id, first, last, readings, events))

    def write_batch(self, batch: OutboxBatch) -> None:
        # Forwarded as stored: the chunks' JSON is spliced into the message, never parsed.
        self.write_json(batch.readings_json(), batch.events_json(), batch.first, batch.last)

    def _send(self, payload: bytes) -> None:
        if not self._connected.is_set():
            raise SinkError(f"uplink broker {self._endpoint} not connected")
        info = self._client.publish(data_topic(self.gateway_id), payload, qos=1)
        try:
            info.wait_for_publish(self._timeout)
        except (ValueError, RuntimeError) as exc:
            raise SinkError(f"uplink publish failed: {exc}") from exc
        if not info.is_published():
            raise SinkError(f"uplink broker did not acknowledge within {self._timeout:g} s")

    def close(self) -> None:
        self.publish_status("offline")
        self._client.disconnect()
        self._client.loop_stop()
