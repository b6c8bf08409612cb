"""MQTT device source: subscribes to profile topics, hands raw messages on, acks when told.

QoS 1 with manual acknowledgement: the broker keeps (and on reconnect redelivers) a
message until `ack` is called, which the gateway does only after the outbox commit.
"""

from __future__ import annotations

import logging
import queue
from typing import Any

import paho.mqtt.client as mqtt

from core.clock import utcnow
from core.mqtturl import BrokerEndpoint, make_client
from gateway.sources.raw import RawMessage

log = logging.getLogger(__name__)


class MqttSource:
    def __init__(
        self,
        endpoint: BrokerEndpoint,
        client_id: str,
        subscriptions: list[str],
        out: queue.SimpleQueue[RawMessage],
    ) -> None:
        self._endpoint = endpoint
        self._subscriptions = subscriptions
        self._out = out
        self.connected = False
        self._client = make_client(endpoint, client_id, persistent=True, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, msg: RawMessage) -> None:
        if msg.qos > 0:
            self._client.ack(msg.mid, msg.qos)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("device broker %s refused connection: %s", self._endpoint, reason)
            return
        log.info("connected to device broker %s", self._endpoint)
        if self._subscriptions:
            client.subscribe([(topic, 1) for topic in self._subscriptions])
        else:
            self.connected = True

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        # `connected` means subscribed: from here on no device message can slip past us.
        self.connected = True
        log.info("subscribed to %d topic filters on %s", len(self._subscriptions), self._endpoint)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected = False
        log.warning("device broker %s disconnected: %s", self._endpoint, reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._out.put(RawMessage(msg.topic, bytes(msg.payload), utcnow(), msg.mid, msg.qos))
