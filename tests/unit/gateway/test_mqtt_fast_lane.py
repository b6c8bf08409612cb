"""The MQTT source's fast lane cuts whole QoS 0/1 PUBLISH packets out of the read buffer and
leaves everything else (other packets, QoS 2, a packet cut in two, a malformed one) at the
head for paho's reader. Packets here are built per MQTT 3.1.1 section 3.3."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sources.mqtt import cut_publishes


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: bytes, payload: bytes, qos: int = 1, mid: int = 1, flags: int = 0) -> bytes:
    var = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    return (
        bytes([0x30 | qos << 1 | flags]) + remaining_length(len(var) + len(payload)) + var + payload
    )


def test_whole_publishes_are_cut_with_their_ids_qos_and_retain_flag() -> None:
    a = publish(b"campus/x/cold/f1/telemetry", b'{"t": 3.5}', qos=1, mid=513)
    b = publish(b"t/2", b"", qos=0)
    c = publish(b"t/3", b"x" * 300, qos=1, mid=65535, flags=0x09)  # dup + retain, 2-byte length
    buf = bytearray(a + b + c)
    found, used = cut_publishes(buf)
    assert used == len(buf)
    assert found == [
        (b"campus/x/cold/f1/telemetry", b'{"t": 3.5}', 513, 1, False),
        (b"t/2", b"", 0, 0, False),
        (b"t/3", b"x" * 300, 65535, 1, True),
    ]


def test_a_packet_cut_in_two_stays_for_the_next_read() -> None:
    a, b = publish(b"t/1", b"one"), publish(b"t/2", b"two" * 100)
    for cut in range(1, len(b)):
        found, used = cut_publishes(bytearray(a + b[:cut]))
        assert found == [(b"t/1", b"one", 1, 1, False)] and used == len(a)


def test_anything_but_a_qos_0_or_1_publish_is_left_for_paho() -> None:
    suback = b"\x90\x03\x00\x01\x01"
    qos2 = publish(b"t/q2", b"x", qos=2)
    no_topic = publish(b"", b"x")  # 3.1.1 forbids an empty topic: paho refuses it
    lying = b"\x32\x05\x00\x09t/1\x00"  # topic length longer than the packet
    for head in (suback, qos2, no_topic, lying, b"\x32\xff\xff\xff\xff\x7f"):
        found, used = cut_publishes(bytearray(head + publish(b"t/1", b"after")))
        assert (found, used) == ([], 0), head


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=40),
            st.binary(max_size=400),
            st.integers(0, 1),
            st.integers(1, 65535),
        ),
        max_size=20,
    ),
    st.data(),
)
def test_any_stream_cut_anywhere_yields_exactly_the_whole_packets_before_the_cut(
    messages: list[tuple[bytes, bytes, int, int]], data: st.DataObject
) -> None:
    packets = [publish(t, p, q, m) for t, p, q, m in messages]
    stream = b"".join(packets)
    cut = data.draw(st.integers(0, len(stream)))
    found, used = cut_publishes(bytearray(stream[:cut]))
    whole = 0
    ends = 0
    for packet in packets:
        if ends + len(packet) > cut:
            break
        ends += len(packet)
        whole += 1
    assert used == ends
    assert found == [(t, p, m if q else 0, q, False) for t, p, q, m in messages[:whole]]
