"""The gateway's MQTT source against a real Mosquitto: every message handed on once, in
order, through the fast lane or paho's own reader (a message larger than a read block);
nothing acknowledged before the gateway says so."""

from __future__ import annotations

import queue
import time

import pytest

from core.mqtturl import make_client, parse_broker_url
from gateway.sources.mqtt import READ_BLOCK, MqttSource
from gateway.sources.raw import RawMessage
from tests.harness import Mosquitto
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


def collect(
    q: queue.SimpleQueue[list[RawMessage]],
    n: int,
    timeout: float,
    ack: MqttSource | None = None,
) -> list[RawMessage]:
    """Up to n messages within timeout; acknowledged as they come when `ack` is given (the
    broker sends only 20 unacknowledged QoS 1 messages at a time)."""
    got: list[RawMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        try:
            batch = q.get(timeout=0.2)
        except queue.Empty:
            continue
        got += batch
        if ack is not None:
            ack.ack_many(batch)
    return got


def test_every_message_once_in_order_and_acked_only_when_told(mosquitto: Mosquitto) -> None:
    ep = parse_broker_url(mosquitto.url)
    q: queue.SimpleQueue[list[RawMessage]] = queue.SimpleQueue()
    source = MqttSource(ep, "test-gw", ["t/#"], q)
    source.start()
    wait_until(lambda: source.connected, 20, "source subscribed")

    pub = make_client(ep, "test-pub")
    pub.connect(ep.host, ep.port)
    pub.loop_start()
    sent = [(f"t/{i % 7}", b"%d:" % i + b"x" * (i * 37 % 2000)) for i in range(3000)]
    big = ("t/big", b"B" * (READ_BLOCK + 1000))  # spans reads: paho's reader takes it
    for topic, payload in sent[:1500]:
        pub.publish(topic, payload, qos=1)
    pub.publish(*big, qos=1).wait_for_publish(10)
    for topic, payload in sent[1500:]:
        pub.publish(topic, payload, qos=1)
    pub.publish("t/q0", b"at most once", qos=0).wait_for_publish(10)

    got = collect(q, 3002, 60, ack=source)
    by_qos1 = [(m.topic, m.payload) for m in got if m.qos == 1]
    assert by_qos1 == [*sent[:1500], big, *sent[1500:]]
    assert [(m.topic, m.payload) for m in got if m.qos == 0] == [("t/q0", b"at most once")]
    assert all(abs(m.received_ms - time.time() * 1000) < 60_000 for m in got)

    # Held without an ack (the gateway's outbox has not committed them): after a reconnect
    # they all come again, unacked ones first.
    later = [(f"t/later/{i}", b"%d" % i) for i in range(50)]
    for topic, payload in later:
        pub.publish(topic, payload, qos=1)
    held = collect(q, 50, 3)
    assert held and [(m.topic, m.payload) for m in held] == later[: len(held)]
    source.stop()
    again_q: queue.SimpleQueue[list[RawMessage]] = queue.SimpleQueue()
    again = MqttSource(ep, "test-gw", ["t/#"], again_q)
    again.start()
    redelivered = collect(again_q, 50, 30, ack=again)
    assert [(m.topic, m.payload) for m in redelivered] == later
    again.stop()
    pub.disconnect()
    pub.loop_stop()


def test_the_source_stops_reading_while_its_held_messages_wait_for_their_ack(
    mosquitto: Mosquitto,
) -> None:
    """The gateway's memory does not grow with a broker's backlog: past `max_held` messages
    handed on and not acknowledged, the fast lane stops reading (TCP holds the broker back)
    and goes on as acknowledgements come. QoS 0, which no in-flight window limits."""
    ep = parse_broker_url(mosquitto.url)
    q: queue.SimpleQueue[list[RawMessage]] = queue.SimpleQueue()
    source = MqttSource(ep, "test-held", ["held/#"], q, max_held=50)
    source.start()
    wait_until(lambda: source.connected, 20, "source subscribed")
    pub = make_client(ep, "test-held-pub")
    pub.connect(ep.host, ep.port)
    pub.loop_start()
    n = 400
    sent = [b"%d:" % i + b"x" * 10_000 for i in range(n)]  # ~25 to a read block
    for payload in sent:
        pub.publish("held/t", payload, qos=0)
    pub.publish("held/t", b"last", qos=1).wait_for_publish(10)
    first = collect(q, n, 3)  # not acknowledged
    assert 50 <= len(first) < 50 + READ_BLOCK // 10_000 + 5, len(first)
    assert source.held == len(first)
    source.ack_many(first)  # the outbox took them: reading goes on
    got = first + collect(q, n + 1 - len(first), 30, ack=source)
    assert [m.payload for m in got] == [*sent, b"last"]
    wait_until(lambda: source.held == 0, 5, "every message acknowledged")
    source.stop()
    pub.disconnect()
    pub.loop_stop()
