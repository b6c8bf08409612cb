"""Prometheus metrics of one gateway instance (own registry: tests run several per process)."""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._sinks: dict[str, _SinkSeries] = {}
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
        self.sink_process_restarts = Counter(
            "gateway_sink_process_restarts",
            "Times the sink process died and was started again",
            registry=r,
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

    # -- what sink loops report (gateway.sinks.loop.SinkObserver), from either process --
    def _sink(self, sink: str) -> _SinkSeries:
        """A sink's labelled series, looked up once: `labels()` takes the metric's lock and
        builds its key on every call, and two threads report a batch each every few ms."""
        series = self._sinks.get(sink)
        if series is None:
            series = self._sinks[sink] = _SinkSeries(
                self.sink_latency.labels(sink),
                self.sink_items.labels(sink),
                self.sink_errors.labels(sink),
                self.outbox_pending.labels(sink),
            )
        return series

    def sink_took(self, sink: str, items: int, seconds: float, pending: int) -> None:
        series = self._sink(sink)
        series.latency.observe(seconds)
        series.items.inc(items)
        series.pending.set(pending)

    def sink_failed(self, sink: str, pending: int) -> None:
        series = self._sink(sink)
        series.errors.inc()
        series.pending.set(pending)

    def sink_idle(self, sink: str) -> None:
        self._sink(sink).pending.set(0)


class _SinkSeries(NamedTuple):
    latency: Histogram
    items: Counter
    errors: Counter
    pending: Gauge
