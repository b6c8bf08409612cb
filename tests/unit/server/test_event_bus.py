"""The domain-event bus: typed delivery by class, batches per publish, failures isolated and
counted."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from server.events.bus import EventBus
from server.events.types import DomainEvent, GatewayStatusReported, ReadingsAccepted

AT = datetime(2026, 11, 29, tzinfo=UTC)


def status(gw: str) -> GatewayStatusReported:
    return GatewayStatusReported(at=AT, gateway_id=gw, state="online", changed=True, outbox_fill=0)


def readings(device: str) -> ReadingsAccepted:
    return ReadingsAccepted(
        at=AT, gateway_id="gw", device_id=device, building="b", device_class="c", readings=()
    )


def failures(registry: CollectorRegistry, listener: str, event: str) -> float:
    value = registry.get_sample_value(
        "server_event_listener_failures_total", {"listener": listener, "event": event}
    )
    return value or 0.0


def test_handlers_get_their_class_and_subclasses_in_order() -> None:
    bus = EventBus(CollectorRegistry())
    got: list[str] = []
    bus.subscribe(GatewayStatusReported, lambda e: got.append(f"gw:{e.gateway_id}"))
    bus.subscribe(DomainEvent, lambda e: got.append(type(e).__name__))
    bus.publish_all([status("a"), readings("d1")])
    assert got == ["gw:a", "GatewayStatusReported", "ReadingsAccepted"]


def test_a_batch_handler_gets_one_call_per_publish_with_its_events_only() -> None:
    bus = EventBus(CollectorRegistry())
    calls: list[list[str]] = []
    bus.subscribe_batch(ReadingsAccepted, lambda es: calls.append([e.device_id for e in es]))
    bus.publish_all([readings("d1"), status("a"), readings("d2")])
    bus.publish_all([status("b")])  # none of its kind: not called
    bus.publish(readings("d3"))  # a single publish is a batch of one
    assert calls == [["d1", "d2"], ["d3"]]


def test_a_failing_handler_is_counted_and_the_others_still_run() -> None:
    registry = CollectorRegistry()
    bus = EventBus(registry)
    seen: list[str] = []

    def boom(_e: DomainEvent) -> None:
        raise RuntimeError("broken consumer")

    def boom_batch(_es: list[ReadingsAccepted]) -> None:
        raise RuntimeError("broken batch consumer")

    bus.subscribe(DomainEvent, boom, name="boom")
    bus.subscribe_batch(ReadingsAccepted, boom_batch, name="boom_batch")
    bus.subscribe(ReadingsAccepted, lambda e: seen.append(e.device_id), name="ok")
    bus.publish_all([readings("d1"), readings("d2")])  # never raises to the producer
    assert seen == ["d1", "d2"]
    assert failures(registry, "boom", "ReadingsAccepted") == 2
    assert failures(registry, "boom_batch", "ReadingsAccepted") == 1
