"""Gateway wiring: sources -> decode -> durable outbox -> one worker per sink, and health.
No logic here beyond moving items between stages; see sources/, decode/, outbox/, sinks/ and
health.py for what each does."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from typing import Any

from core.mqtturl import parse_broker_url, with_credentials
from core.profiles import load_profiles
from core.readings import Reading, Rejection, RejectReason, now_ms
from core.site import load_site
from core.wire import WireEvent, WireReading, encode_readings
from gateway.decode.json_payload import JsonDecoder, WireDecoded
from gateway.decode.match import TopicMatcher
from gateway.decode.mqtt_message import MessageDecoder
from gateway.health import HealthReporter
from gateway.metrics import GatewayMetrics
from gateway.outbox.outbox import Outbox, OutboxFull
from gateway.pseudonym import load_key
from gateway.rejectlog import RejectionLog
from gateway.settings import GatewaySettings
from gateway.sinks.base import Sink, SinkError
from gateway.sinks.uplink_mqtt import UplinkSink
from gateway.sources.mqtt import MqttSource
from gateway.sources.raw import RawMessage
from gateway.sources.serial.assemble import assemble_buses

log = logging.getLogger(__name__)

# Items per sink write: one request or transaction of this many amortises its round trip
# and fsync, and stays small for any store (InfluxDB advises batches of 5,000 lines).
SINK_BATCH = 4000


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.profiles = load_profiles(settings.profiles_dir)
        self.site = load_site(settings.site_file, self.profiles)
        self.matcher = TopicMatcher(
            self.site, self.profiles, settings.gateway_id, settings.watch_namespace
        )
        self.decoder = JsonDecoder(load_key(settings.pseudonym_key, settings.data_dir))
        self.messages = MessageDecoder(self.matcher, self.decoder, settings.max_payload_bytes)
        self.reject_log = RejectionLog(log)
        self._queue: queue.SimpleQueue[list[RawMessage]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []

        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        device_ep = with_credentials(
            parse_broker_url(settings.device_broker), settings.mqtt_username, password
        )
        uplink_ep = with_credentials(
            parse_broker_url(settings.uplink_broker or settings.device_broker),
            settings.mqtt_username,
            password,
        )
        devices = [d.id for d in self.site.devices if d.gateway == settings.gateway_id]
        self.uplink = UplinkSink(uplink_ep, settings.gateway_id, devices)
        self.sinks: list[Sink] = [self.uplink]
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # the SQLite sink lives there too
        if settings.tsdb == "sql":
            # Loaded only when used: SQLAlchemy is a third of an InfluxDB gateway's memory.
            from gateway.sinks.sql_ts import SqlTimeSeriesSink

            self.sinks.insert(
                0,
                SqlTimeSeriesSink(
                    settings.sql_url(),
                    settings.gateway_id,
                    retention_days=settings.tsdb_retention_days,
                ),
            )
        elif settings.tsdb == "influx":
            from gateway.sinks.influx import InfluxSink  # only loaded when used: memory

            self.sinks.insert(
                0,
                InfluxSink(
                    settings.influx_url,
                    settings.influx_token.get_secret_value(),
                    settings.influx_org,
                    settings.influx_bucket,
                    self.site,
                    self.profiles,
                    settings.gateway_id,
                ),
            )
        self.outbox = Outbox(
            settings.data_dir / "outbox.db",
            [s.name for s in self.sinks],
            max_pending=settings.outbox_max_pending,
        )
        self.source = MqttSource(
            device_ep, f"facility-gw-{settings.gateway_id}", self.matcher.subscriptions, self._queue
        )
        # One master per RS-485 port; a poll is done once its readings are on disk.
        self.buses = assemble_buses(
            self.site,
            self.profiles,
            settings.gateway_id,
            settings.serial_ports,
            self.ingest_readings,
            self.metrics,
        )
        self.health = HealthReporter(
            fill=self.outbox.fill_ratio,
            uplink=self.uplink,
            serial_targets=[t for b in self.buses for t in b.targets],
            metrics=self.metrics,
            every_s=settings.status_every_s,
            cap=settings.outbox_max_pending,
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.uplink.start()
        for sink in self.sinks:
            self._spawn(f"sink-{sink.name}", self._sink_loop, sink)
        self._spawn("ingest", self._ingest_loop)
        self._spawn("health", self.health.run, self._stop)
        self.source.start()
        for bus in self.buses:
            bus.start()
        if self.settings.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(
                self.settings.metrics_port,
                self.settings.metrics_host,
                registry=self.metrics.registry,
            )
        log.info(
            "gateway %s started: %d devices, sinks %s",
            self.settings.gateway_id,
            len(self.matcher.devices),
            [s.name for s in self.sinks],
        )

    def stop(self) -> None:
        for bus in self.buses:
            bus.stop()
        self.source.stop()
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout=10)
        for sink in self.sinks:
            sink.close()
        self.outbox.close()

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=f"gw-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    # -- ingest: raw -> decoded -> outbox -> ack -----------------------------------------
    def _drain(self) -> list[RawMessage]:
        """What the sources handed on (lists, one per network read), up to `batch_max`
        messages, waiting a little for the first."""
        try:
            batch = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        while len(batch) < self.settings.batch_max:
            try:
                batch += self._queue.get_nowait()
            except queue.Empty:
                break
        return batch

    def decode(self, msg: RawMessage) -> WireDecoded:
        return self.messages.decode(msg)

    def _ingest_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._drain()
            if batch:
                self.ingest(batch)

    def ingest(self, batch: list[RawMessage]) -> None:
        readings: list[WireReading] = []
        events: list[WireEvent] = []
        restamped = 0
        self.metrics.received.labels("mqtt").inc(len(batch))
        decode = self.messages.decode
        for msg in batch:
            try:
                decoded = decode(msg)
            except Exception as exc:  # a decoder bug costs this one message, not the gateway
                rej = Rejection(
                    reason=RejectReason.DECODE_ERROR,
                    detail=f"{type(exc).__name__}: {exc}",
                    source=msg.topic,
                    raw=msg.payload[:512],
                )
                self.record_rejection(rej, exc_info=exc)
                continue
            if decoded.rejections:
                for rej in decoded.rejections:
                    self.record_rejection(rej)
            readings += decoded.readings
            if decoded.events:
                events += decoded.events
            restamped += decoded.restamped
        if restamped:
            self.metrics.restamped.inc(restamped)
        try:
            self.outbox.append_wire(readings, events)
        except OutboxFull as exc:
            # Refuse new data rather than delete what we hold; acked so the broker does not
            # redeliver the same overflow forever.
            for msg in batch:
                self.record_rejection(
                    Rejection(reason=RejectReason.OUTBOX_FULL, detail=str(exc), source=msg.topic)
                )
        else:
            self.metrics.accepted.inc(len(readings))
            self.metrics.events.inc(len(events))
            with self._wake:
                self._wake.notify_all()
        self.source.ack_many(batch)  # one write for the whole batch, now on disk

    def ingest_readings(self, device_id: str, readings: list[Reading]) -> None:
        """A serial poll's readings into the outbox; returns once they are on disk."""
        try:
            self.outbox.append_wire(encode_readings(readings), [])
        except OutboxFull as exc:
            self.record_rejection(
                Rejection(reason=RejectReason.OUTBOX_FULL, detail=str(exc), source=device_id)
            )
            return
        self.metrics.accepted.inc(len(readings))
        with self._wake:
            self._wake.notify_all()

    def record_rejection(self, rej: Rejection, exc_info: BaseException | None = None) -> None:
        self.metrics.rejected.labels(rej.reason.value).inc()
        self.reject_log.log(rej, exc_info)  # every one counted; the log line is rate-limited

    # -- sinks: outbox cursor -> sink ----------------------------------------------------
    def _sink_loop(self, sink: Sink) -> None:
        backoff = 0.5
        last_prune = time.monotonic()
        while not self._stop.is_set():
            batch = self.outbox.read(sink.name, SINK_BATCH)
            pending = self.metrics.outbox_pending.labels(sink.name)
            if batch is None:
                pending.set(0)
                with self._wake:
                    self._wake.wait(timeout=0.5)
                continue
            started = time.perf_counter()
            try:
                sink.write_batch(batch)
            except SinkError as exc:
                self.metrics.sink_errors.labels(sink.name).inc()
                pending.set(self.outbox.head - batch.first + 1)  # grows while the sink is down
                log.warning("sink %s: %s; retrying in %.1f s", sink.name, exc, backoff)
                # Full jitter keeps many gateways from hammering a recovering store together.
                self._stop.wait(random.uniform(0, backoff))
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            self.metrics.sink_latency.labels(sink.name).observe(time.perf_counter() - started)
            self.metrics.sink_items.labels(sink.name).inc(len(batch))
            self.outbox.commit(sink.name, batch.last)
            pending.set(self.outbox.head - batch.last)
            if time.monotonic() - last_prune > 5:
                self.outbox.prune()
                last_prune = time.monotonic()
            try:
                sink.maintain(now_ms())
            except SinkError as exc:
                log.warning("%s", exc)


def build_gateway(settings: GatewaySettings) -> Gateway:
    return Gateway(settings)
