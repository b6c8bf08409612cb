"""Prometheus metrics of one gateway instance (own registry: tests run several per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "gateway_messages_received", "Device messages received", ["transport"], registry=r
        )
        self.accepted = Counter(
            "gateway_readings_accepted", "Readings accepted into the outbox", registry=r
        )
        self.events = Counter("gateway_events_accepted", "Device events accepted", registry=r)
        self.rejected = Counter(
            "gateway_rejections", "Rejected input by reason", ["reason"], registry=r
        )
        self.restamped = Counter(
            "gateway_readings_restamped", "Readings whose device clock was not trusted", registry=r
        )
        self.outbox_pending = Gauge(
            "gateway_outbox_pending", "Items not yet taken by a sink", ["sink"], registry=r
        )
        self.outbox_fill = Gauge(
            "gateway_outbox_fill_ratio", "Outbox use against its cap", registry=r
        )
        self.sink_latency = Histogram(
            "gateway_sink_write_seconds", "Sink batch write time", ["sink"], registry=r
        )
        self.sink_errors = Counter(
            "gateway_sink_write_errors", "Failed sink writes", ["sink"], registry=r
        )
        self.sink_items = Counter(
            "gateway_sink_items", "Items taken by a sink", ["sink"], registry=r
        )
        # Serial buses: one master per port; per device and per bus figures.
        self.serial_requests = Counter(
            "gateway_serial_requests", "Serial requests sent", ["bus", "device"], registry=r
        )
        self.serial_timeouts = Counter(
            "gateway_serial_timeouts", "Serial requests unanswered", ["bus", "device"], registry=r
        )
        self.serial_frame_errors = Counter(
            "gateway_serial_frame_errors",
            "Serial replies refused (crc/checksum, wrong address, error reply, ...)",
            ["bus", "device", "reason"],
            registry=r,
        )
        self.serial_latency = Histogram(
            "gateway_serial_latency_seconds",
            "Request to complete reply",
            ["bus"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.serial_bus_up = Gauge(
            "gateway_serial_bus_up", "Port open (1) or not", ["bus"], registry=r
        )
        self.serial_device_online = Gauge(
            "gateway_serial_device_online", "Device answered its last poll", ["device"], registry=r
        )
