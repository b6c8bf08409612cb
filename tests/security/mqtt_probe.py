"""A small MQTT 5 client for the ACL tests: connect as an account, subscribe, publish and
read the broker's reason codes (MQTT 5 reports a denied publish in its PUBACK)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import wait_until


@dataclass
class Probe:
    client: mqtt.Client
    received: list[tuple[str, bytes]] = field(default_factory=list)
    acks: dict[int, int] = field(default_factory=dict)  # mid -> PUBACK reason code
    granted: dict[int, list[int]] = field(default_factory=dict)  # mid -> SUBACK codes
    connect_rc: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, topic: str, payload: bytes = b"{}") -> int:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        wait_until(lambda: info.mid in self.acks, 10, f"PUBACK for {topic}")
        return self.acks[info.mid]

    def subscribe(self, *topics: str) -> list[int]:
        """Subscribe at QoS 1; returns the granted codes (>= 0x80: refused)."""
        _, mid = self.client.subscribe([(t, 1) for t in topics])
        assert mid is not None
        wait_until(lambda: mid in self.granted, 10, f"SUBACK for {topics}")
        return self.granted[mid]

    def got(self, topic: str) -> bool:
        with self.lock:
            return any(t == topic for t, _ in self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(port: int, username: str | None, password: str | None) -> Probe:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"probe-{username}-{id(object())}",
        protocol=mqtt.MQTTv5,
    )
    if username is not None:
        client.username_pw_set(username, password)
    probe = Probe(client)
    connected = threading.Event()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        probe.connect_rc = reason.value
        connected.set()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with probe.lock:
            probe.received.append((msg.topic, bytes(msg.payload)))

    def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        probe.acks[mid] = reason.value

    def on_subscribe(_c: Any, _u: Any, mid: int, codes: Any, _p: Any) -> None:
        probe.granted[mid] = [c.value for c in codes]

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        probe.close()
        raise AssertionError(f"no CONNACK for {username}")
    return probe
