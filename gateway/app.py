"""Gateway wiring: sources -> decode -> durable outbox -> one worker per sink. No logic here
beyond moving items between stages; see decode/, outbox/ and sinks/ for what each does."""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson

from core.mqtturl import parse_broker_url, with_credentials
from core.profiles import SerialTransport, load_profiles
from core.readings import Reading, Rejection, RejectReason
from core.site import load_site
from core.wire import encode_reading
from gateway.decode.json_payload import JsonDecoder, WireDecoded
from gateway.decode.match import TopicMatcher
from gateway.metrics import GatewayMetrics
from gateway.outbox.outbox import Outbox, OutboxFull
from gateway.rejectlog import RejectionLog
from gateway.settings import GatewaySettings
from gateway.sinks.base import Sink, SinkError
from gateway.sinks.uplink_mqtt import UplinkSink
from gateway.sources.mqtt import MqttSource
from gateway.sources.raw import RawMessage

if TYPE_CHECKING:
    from gateway.sinks.sql_ts import SqlTimeSeriesSink
    from gateway.sources.serial.bus import SerialBus

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
        self.decoder = JsonDecoder(self._pseudonym_key())
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
        self._sql_sink: SqlTimeSeriesSink | None = None
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # the SQLite sink lives there too
        if settings.tsdb == "sql":
            # Loaded only when used: SQLAlchemy is a third of an InfluxDB gateway's memory.
            from gateway.sinks.sql_ts import SqlTimeSeriesSink

            self._sql_sink = SqlTimeSeriesSink(settings.sql_url(), settings.gateway_id)
            self.sinks.insert(0, self._sql_sink)
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
        self.buses = self._serial_buses()

    def _pseudonym_key(self) -> bytes:
        """The key that turns card numbers into pseudonyms: from the environment, or made
        once and kept (0600) in the data folder so pseudonyms stay stable across restarts."""
        if self.settings.pseudonym_key is not None:
            return self.settings.pseudonym_key.get_secret_value().encode()
        path = self.settings.data_dir / "pseudonym.key"
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        return path.read_bytes()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.uplink.start()
        for sink in self.sinks:
            self._spawn(f"sink-{sink.name}", self._sink_loop, sink)
        self._spawn("ingest", self._ingest_loop)
        self._spawn("health", self._health_loop)
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
        if len(msg.payload) > self.settings.max_payload_bytes:
            # Checked before routing, so a huge message on any topic is named for its size.
            detail = (
                f"payload of {len(msg.payload)} bytes exceeds {self.settings.max_payload_bytes}"
            )
            return _refused(
                Rejection(
                    reason=RejectReason.OVERSIZE,
                    detail=detail,
                    source=msg.topic,
                    raw=msg.payload[:512],
                )
            )
        route = self.matcher.route(msg.topic)
        if route is None:
            pattern = self.matcher.pattern_for(msg.topic)
            reason = RejectReason.UNKNOWN_DEVICE if pattern else RejectReason.UNKNOWN_TOPIC
            what = (
                f"no device of this site publishes on {msg.topic!r} "
                f"(looks like profile {pattern.profile.profile})"
                if pattern
                else f"topic {msg.topic!r} matches no device profile"
            )
            return _refused(
                Rejection(reason=reason, detail=what, source=msg.topic, raw=msg.payload[:512])
            )
        return self.decoder.decode_wire(
            device_id=route.device.id,
            profile=route.profile,
            topic=msg.topic,
            payload=msg.payload,
            received_ms=msg.received_ms,
            retained=msg.retain,
        )

    def _ingest_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._drain()
            if batch:
                self.ingest(batch)

    def ingest(self, batch: list[RawMessage]) -> None:
        readings: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        restamped = 0
        self.metrics.received.labels("mqtt").inc(len(batch))
        for msg in batch:
            try:
                decoded = self.decode(msg)
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

    # -- serial: one master per port; a poll is done once its readings are on disk ----------
    def _serial_buses(self) -> list[SerialBus]:
        # pymodbus and pyserial are loaded only by gateways that have serial devices.
        from gateway.sources.serial.bus import PollTarget, SerialBus

        by_bus: dict[str, list[PollTarget]] = {}
        for device in self.site.devices:
            profile = self.profiles[device.profile]
            if device.gateway != self.settings.gateway_id or not isinstance(
                profile.transport, SerialTransport
            ):
                continue
            if device.bus is None:
                raise ValueError(f"serial device {device.id} has no 'bus' in the site file")
            line = self.site.buses.get(device.bus)
            by_bus.setdefault(device.bus, []).append(PollTarget(device, profile, line=line))
        buses = []
        for name, targets in sorted(by_bus.items()):
            # This host's adapter names win over the site file's.
            line = self.site.buses.get(name)
            port = self.settings.serial_ports.get(name) or (line.port if line else None)
            if port is None:
                log.warning(
                    "serial bus %s (%s) has no port: set it in the site's buses or in "
                    "FACILITY_GATEWAY_SERIAL_PORTS; its devices stay offline",
                    name,
                    ", ".join(t.device.id for t in targets),
                )
                continue
            buses.append(SerialBus(name, port, targets, self.ingest_readings, self.metrics))
        return buses

    def ingest_readings(self, device_id: str, readings: list[Reading]) -> None:
        items = [("r", orjson.dumps(encode_reading(r))) for r in readings]
        try:
            self.outbox.append(items)
        except OutboxFull as exc:
            self.record_rejection(
                Rejection(reason=RejectReason.OUTBOX_FULL, detail=str(exc), source=device_id)
            )
            return
        self.metrics.accepted.inc(len(readings))
        with self._wake:
            self._wake.notify_all()

    # -- health: the outbox's fill and the serial devices that stopped answering ------------
    OUTBOX_ALERT_FILL = 0.8

    def _health_loop(self) -> None:
        """Publish the retained status when its content changes, and every `status_every_s`
        anyway, so the server sees the outbox fill and unreachable devices."""
        last: tuple[bool, tuple[str, ...]] | None = None
        last_sent = 0.0
        while not self._stop.wait(1.0):
            fill = self.outbox.fill_ratio()
            self.metrics.outbox_fill.set(fill)
            high = fill >= self.OUTBOX_ALERT_FILL
            offline = tuple(
                sorted(t.device.id for b in self.buses for t in b.targets if t.online is False)
            )
            now = time.monotonic()
            if (high, offline) == last and now - last_sent < self.settings.status_every_s:
                continue
            if high and (last is None or not last[0]):
                log.warning(
                    "outbox %.0f %% full (cap %d items): a sink is not keeping up",
                    fill * 100,
                    self.settings.outbox_max_pending,
                )
            if self.uplink.connected:
                self.uplink.publish_status("online", list(offline), fill)
                last, last_sent = (high, offline), now

    def record_rejection(self, rej: Rejection, exc_info: BaseException | None = None) -> None:
        self.metrics.rejected.labels(rej.reason.value).inc()
        self.reject_log.log(rej, exc_info)  # every one counted; the log line is rate-limited

    # -- sinks: outbox cursor -> sink ----------------------------------------------------
    def _sink_loop(self, sink: Sink) -> None:
        backoff = 0.5
        last_prune = time.monotonic()
        next_retention = time.monotonic() + 60
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
                if isinstance(sink, UplinkSink):  # passes the outbox's JSON on unparsed
                    sink.write_json(
                        batch.readings_json(), batch.events_json(), batch.first, batch.last
                    )
                else:
                    sink.write(batch.readings, batch.events, batch.first, batch.last)
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
            if sink is self._sql_sink and time.monotonic() > next_retention:
                next_retention = time.monotonic() + 3600
                self._retention(self._sql_sink)

    def _retention(self, sink: SqlTimeSeriesSink) -> None:
        days = self.settings.tsdb_retention_days
        if days <= 0:
            return
        try:
            hours, deleted = sink.apply_retention(days, int(time.time() * 1000))
        except SinkError as exc:
            log.warning("%s", exc)
            return
        if deleted:
            log.info("retention: %d raw readings rolled up into %d hourly rows", deleted, hours)


def _refused(rejection: Rejection) -> WireDecoded:
    return WireDecoded(readings=[], events=[], rejections=[rejection], restamped=0)


def build_gateway(settings: GatewaySettings) -> Gateway:
    return Gateway(settings)
