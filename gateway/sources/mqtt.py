"""MQTT device source: subscribes to profile topics, hands raw messages on, acks when told.

QoS 1 with manual acknowledgement: the broker keeps (and on reconnect redelivers) a
message until it is acknowledged, which the gateway does only after the outbox commit.

paho reads a packet with three `recv` calls, handles one packet per pass of its network
loop, and sends each PUBACK in a syscall of its own: at thousands of device messages a
second that is most of the gateway's time. `_FastClient` keeps paho (protocol, session,
reconnects, TLS) and changes only how bytes move: the socket is read in large blocks,
every packet already read is handled in one pass, messages go straight to `on_message`,
and the PUBACKs of a whole outbox commit go out as one write (`ack_many`). These reach
into paho's internals (pinned below 3 in pyproject.toml); the MQTT integration tests run
through them.
"""

from __future__ import annotations

import logging
import queue
import socket
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from core.clock import utcnow
from core.mqtturl import BrokerEndpoint, make_client
from gateway.sources.raw import RawMessage

log = logging.getLogger(__name__)

PUBACK = 0x40
READ_BLOCK = 256 * 1024


class _BufferedSocket:
    """The broker connection, read in blocks; paho asks it for a few bytes at a time.

    `pending()` (which paho's loop checks, as for TLS sockets) tells it that bytes are
    waiting here even when the kernel socket is empty, so none are left unhandled.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = bytearray()

    def recv(self, bufsize: int) -> bytes:
        if not self._buf:
            data = self._sock.recv(READ_BLOCK)  # BlockingIOError / SSLWantRead pass to paho
            if not data:
                return b""
            self._buf += data
        out = bytes(self._buf[:bufsize])
        del self._buf[:bufsize]
        return out

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) + int(inner)

    def __getattr__(self, name: str) -> Any:  # send, close, fileno, setblocking, ...
        return getattr(self._sock, name)


class _FastClient(mqtt.Client):
    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        return _BufferedSocket(sock) if isinstance(sock, socket.socket) else sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        # paho handles one packet per call when nothing of ours is in flight; go on while
        # whole packets are buffered (a partial one leaves pending() at 0).
        while True:
            rc = super().loop_read(max_packets)
            sock: Any = self._sock
            if rc or sock is None or not hasattr(sock, "pending") or not sock.pending():
                return rc

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        # Straight to on_message: this client never adds per-topic callbacks, so paho's
        # walk of its (empty) topic matcher for every message is skipped.
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                on_message(self, self._userdata, message)

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK every QoS 1 message in `mids` with one write."""
        if mids:
            blob = b"".join([b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids])
            self._packet_queue(PUBACK, blob, 0, 0)


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
        self._client = make_client(
            endpoint, client_id, persistent=True, manual_ack=True, client_class=_FastClient
        )
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

    def ack_many(self, msgs: list[RawMessage]) -> None:
        """Acknowledge messages the outbox now holds (QoS 1: subscriptions grant no more)."""
        client = self._client
        assert isinstance(client, _FastClient)
        client.ack_many([m.mid for m in msgs if m.qos == 1])

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
