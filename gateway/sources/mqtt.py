"""MQTT device source: subscribes to profile topics, hands raw messages on, acks when told.

QoS 1 with manual acknowledgement: the broker keeps (and on reconnect redelivers) a
message until it is acknowledged, which the gateway does only after the outbox commit.

paho reads a packet with three `recv` calls, handles one packet per pass of its network
loop, builds a message object and a log line for each, and sends each PUBACK in a syscall
of its own: at thousands of device messages a second that is most of the gateway's time.
`_FastClient` keeps paho for the protocol (connect, session, subscribe, keepalive, TLS,
reconnects, QoS 2, every packet but one kind) and changes only the hot lane: the socket
is read in large blocks, the QoS 0/1 PUBLISH packets already buffered are cut out in one
pass and handed on as one list, and the PUBACKs of a whole outbox commit go out as one
write (`ack_many`). Anything else at the head of the buffer (a SUBACK, a PINGRESP, a
packet cut in two by the read) goes through paho's own reader.

Backpressure: messages handed on and not yet acknowledged are counted, and while
`max_held` of them are, the fast lane stops reading. TCP then holds the broker back and
the rest waits in its session, so the gateway's memory does not grow with a backlog
(Mosquitto sends a persistent session's queue as fast as the socket takes it, whatever
its in-flight window). These reach into paho's
internals (pinned below 3 in pyproject.toml); tests/unit/gateway/test_mqtt_fast_lane.py
and the MQTT integration tests run through them.
"""

from __future__ import annotations

import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from core.mqtturl import BrokerEndpoint, make_client
from core.readings import now_ms
from gateway.sources.raw import RawMessage

log = logging.getLogger(__name__)

PUBACK = 0x40
READ_BLOCK = 256 * 1024
PAUSE_S = 0.05  # how long a paused reader waits for acknowledgements before looking again

# (topic, payload, packet id, qos, retain) of each PUBLISH cut out of the buffer
Publish = tuple[bytes, bytes, int, int, bool]


class _BufferedSocket:
    """The broker connection, read in blocks; paho asks it for a few bytes at a time.

    `pending()` (which paho's loop checks, as for TLS sockets) tells it that bytes are
    waiting here even when the kernel socket is empty, so none are left unhandled.
    """

    def __init__(self, sock: Any, may_read: Callable[[], bool] | None = None) -> None:
        self._sock = sock
        self.buf = bytearray()
        # Asked before paho's reader takes another block from the kernel: a packet cut in
        # two by a read is finished by paho, and without this its next read would slip
        # past the pause (every block of large messages ends in such a packet).
        self._may_read = may_read

    def fill(self) -> bool:
        """Read what the kernel holds (one block); False when it had nothing."""
        data = self._sock.recv(READ_BLOCK)  # BlockingIOError / OSError pass to the caller
        if not data:
            raise ConnectionResetError("broker closed the connection")
        self.buf += data
        return True

    def recv(self, bufsize: int) -> bytes:
        if not self.buf:
            if self._may_read is not None and not self._may_read():
                raise BlockingIOError  # paused: paho takes it as "nothing yet"
            data = self._sock.recv(READ_BLOCK)  # BlockingIOError / SSLWantRead pass to paho
            if not data:
                return b""
            self.buf += data
        out = bytes(self.buf[:bufsize])
        del self.buf[:bufsize]
        return out

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self.buf) + int(inner)

    def __getattr__(self, name: str) -> Any:  # send, close, fileno, setblocking, ...
        return getattr(self._sock, name)


def cut_publishes(buf: bytearray) -> tuple[list[Publish], int]:
    """The whole QoS 0/1 MQTT 3.1.1 PUBLISH packets at the head of `buf`, and how many bytes
    they take. Stops at the first packet that is anything else, incomplete or malformed:
    paho's reader takes it from there (and refuses it, if it is malformed)."""
    out: list[Publish] = []
    pos = 0
    size = len(buf)
    while size - pos >= 2:
        cmd = buf[pos]
        if cmd & 0xF0 != 0x30:
            break
        qos = (cmd >> 1) & 0x03
        if qos > 1:
            break
        # remaining length: 1-4 bytes, 7 bits each
        length = 0
        shift = 0
        i = pos + 1
        while True:
            if i >= size or shift > 21:
                return out, pos
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if byte < 0x80:
                break
        end = i + length
        if end > size:
            break
        topic_len = (buf[i] << 8 | buf[i + 1]) if length >= 2 else -1
        body = i + 2 + topic_len + (2 if qos else 0)
        if topic_len <= 0 or body > end:
            break  # no topic, or lengths that do not add up: paho names the fault
        topic = bytes(buf[i + 2 : i + 2 + topic_len])
        mid = (buf[body - 2] << 8 | buf[body - 1]) if qos else 0
        out.append((topic, bytes(buf[body:end]), mid, qos, bool(cmd & 0x01)))
        pos = end
    return out, pos


class _FastClient(mqtt.Client):
    # Called with every batch of publishes cut out of one read (see the module docstring).
    on_publishes: Callable[[list[Publish]], None] | None = None
    # Asked before each read; False: not now (it may wait a little before answering).
    may_read: Callable[[], bool] | None = None

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if not isinstance(sock, socket.socket):
            return sock
        return _BufferedSocket(sock, lambda: self.may_read is None or self.may_read())

    def _fast_lane(self, sock: _BufferedSocket) -> int:
        """Cut the buffered publishes out and hand them on; returns how many."""
        found, used = cut_publishes(sock.buf)
        if not used:
            return 0
        del sock.buf[:used]
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        hook = self.on_publishes
        if hook is not None:
            with self._in_callback_mutex:
                hook(found)
        return len(found)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        sock: Any = self._sock
        fast = (
            isinstance(sock, _BufferedSocket)
            and self.on_publishes is not None
            and self._protocol in (MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv31)
        )
        if fast and self._in_packet["command"] == 0:
            if self.may_read is not None and not self.may_read():
                return MQTTErrorCode.MQTT_ERR_SUCCESS  # paused: the kernel buffers, then TCP
            try:
                sock.fill()
            except BlockingIOError:
                pass
            except OSError:
                return super().loop_read(max_packets)  # paho reports the lost connection
        else:  # paho's reader goes on with the packet it has begun (or is all there is)
            rc = super().loop_read(max_packets)
            if rc:
                return rc
        while True:
            if fast and self._in_packet["command"] == 0:
                self._fast_lane(sock)
            sock = self._sock
            if sock is None or not hasattr(sock, "pending") or not sock.pending():
                return MQTTErrorCode.MQTT_ERR_SUCCESS
            # Something else is at the head: paho's reader takes one packet (or the start
            # of one) and we go on while whole packets are buffered.
            rc = super().loop_read(max_packets)
            if rc:
                return rc

    def ack_many(self, mids: list[int]) -> None:
        """PUBACK every QoS 1 message in `mids` with one write."""
        if mids:
            # Each PUBACK is 0x40 0x02 and the id: one big-endian 32-bit word.
            blob = struct.pack(f">{len(mids)}I", *[0x40020000 | mid for mid in mids])
            self._packet_queue(PUBACK, blob, 0, 0)


class MqttSource:
    def __init__(
        self,
        endpoint: BrokerEndpoint,
        client_id: str,
        subscriptions: list[str],
        out: queue.SimpleQueue[list[RawMessage]],
        max_held: int = 10_000,
    ) -> None:
        self._endpoint = endpoint
        self._subscriptions = subscriptions
        self._out = out
        self.connected = False
        self.max_held = max_held
        self._held = 0  # handed on, not yet acknowledged
        self._acked = threading.Condition()
        self._client = make_client(
            endpoint, client_id, persistent=True, manual_ack=True, client_class=_FastClient
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        assert isinstance(self._client, _FastClient)
        self._client.on_publishes = self._on_publishes
        self._client.may_read = self._may_read

    def start(self) -> None:
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def ack_many(self, msgs: list[RawMessage]) -> None:
        """Acknowledge messages the outbox now holds (QoS 1: subscriptions grant no more).
        Every message handed on comes back here once, acknowledged or refused."""
        client = self._client
        assert isinstance(client, _FastClient)
        client.ack_many([m.mid for m in msgs if m.qos == 1])
        with self._acked:
            self._held -= len(msgs)
            self._acked.notify_all()

    @property
    def held(self) -> int:
        """Messages handed on and not yet acknowledged."""
        return self._held

    def _may_read(self) -> bool:
        with self._acked:
            if self._held >= self.max_held:
                self._acked.wait(PAUSE_S)
            return self._held < self.max_held

    def _hand_on(self, msgs: list[RawMessage]) -> None:
        with self._acked:
            self._held += len(msgs)
        self._out.put(msgs)

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
        # paho's own path: QoS 2, or a publish that arrived cut in two by a read
        topic = msg._topic.decode("utf-8", "replace")
        self._hand_on(
            [RawMessage(topic, bytes(msg.payload), now_ms(), msg.mid, msg.qos, msg.retain)]
        )

    def _on_publishes(self, found: list[Publish]) -> None:
        now = now_ms()
        # A topic that is not UTF-8 keeps its replacement characters: routed nowhere, it
        # is counted as unknown_topic like any other stray message.
        self._hand_on(
            [
                RawMessage(t.decode("utf-8", "replace"), p, now, mid, qos, retain)
                for t, p, mid, qos, retain in found
            ]
        )
