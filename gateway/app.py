"""Gateway wiring: sources -> decode -> durable outbox -> sinks, and health. No logic here
beyond moving items between stages; see sources/, decode/, outbox/, sinks/ and health.py
for what each does.

Two processes: this one takes messages in (sources, decoding, the outbox's appends and the
acknowledgements), runs the uplink (its connection carries the gateway's status and last
will) and serves the metrics; the time-series sink runs in a sink process of its own
(gateway/sinks/worker.py, watched by gateway/sinks/process.py) reading the same outbox
file, so the store's line protocol and HTTP (or SQL) work on the other core."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any, NamedTuple

from core.mqtturl import parse_broker_url, with_credentials
from core.profiles import load_profiles
from core.readings import Reading, Rejection, RejectReason
from core.site import SiteConfig, load_site
from core.wire import WireEvent, WireReading, encode_readings
from gateway.decode.json_payload import JsonDecoder, WireDecoded
from gateway.decode.match import TopicMatcher
from gateway.decode.mqtt_message import MessageDecoder
from gateway.health import HealthReporter
from gateway.metrics import GatewayMetrics
from gateway.outbox.outbox import Chunks, Outbox, OutboxFull, Render, encode_chunks
from gateway.pseudonym import load_key, missing_key_reason
from gateway.rejectlog import RejectionLog
from gateway.settings import GatewaySettings
from gateway.sinks.loop import Wake, run_sink
from gateway.sinks.process import SinkProcess
from gateway.sinks.uplink_mqtt import UplinkSink
from gateway.sinks.worker import InfluxSpec, SqlSpec, WorkerSpec
from gateway.sources.mqtt import MqttSource
from gateway.sources.raw import RawMessage
from gateway.sources.serial.assemble import assemble_buses

log = logging.getLogger(__name__)

TSDB_SINK = "tsdb"


class _Decoded(NamedTuple):
    """One batch decoded, on its way to the outbox."""

    batch: list[RawMessage]
    chunks: Chunks
    readings: int
    events: int


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.profiles = load_profiles(settings.profiles_dir)
        # The site is read here and not kept: what each stage needs of it is taken now
        # (routes, the store's series, serial targets), and its thousands of device
        # objects are a third of a big site's gateway's memory.
        site = load_site(settings.site_file, self.profiles)
        self.matcher = TopicMatcher(
            site, self.profiles, settings.gateway_id, settings.watch_namespace
        )
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        device_ep = with_credentials(
            parse_broker_url(settings.device_broker), settings.mqtt_username, password
        )
        uplink_ep = with_credentials(
            parse_broker_url(settings.uplink_broker or settings.device_broker),
            settings.mqtt_username,
            password,
        )
        key = load_key(
            settings.pseudonym_key,
            settings.data_dir,
            key_file=settings.pseudonym_key_file,
            required_because=missing_key_reason(
                [device_ep.host, uplink_ep.host], [d.gateway for d in site.devices]
            ),
        )
        self.decoder = JsonDecoder(key)
        self.messages = MessageDecoder(self.matcher, self.decoder, settings.max_payload_bytes)
        self.reject_log = RejectionLog(log)
        self._queue: queue.SimpleQueue[list[RawMessage]] = queue.SimpleQueue()
        # Decoded batches on their way to the outbox: the committer writes (and fsyncs) one
        # while the ingest thread decodes the next. One waiting: enough to overlap them.
        self._commits: queue.Queue[_Decoded | None] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._wake = Wake()  # the uplink's loop, in this process
        self._threads: list[threading.Thread] = []

        devices = [d.id for d in site.devices if d.gateway == settings.gateway_id]
        self.uplink = UplinkSink(uplink_ep, settings.gateway_id, devices)
        settings.data_dir.mkdir(parents=True, exist_ok=True)  # the SQLite sink lives there too
        store = self._store_spec(site)
        # InfluxDB: each batch is stored with its line protocol too (gateway/outbox/outbox.py)
        self._render: Render | None = None
        if settings.tsdb == "influx":
            from gateway.sinks.line_protocol import LineProtocol

            self._render = LineProtocol.for_site(site, self.profiles, settings.gateway_id).render
        self.sink_names = ([TSDB_SINK] if store is not None else []) + [self.uplink.name]
        self.outbox = Outbox(
            settings.data_dir / "outbox.db",
            self.sink_names,
            max_pending=settings.outbox_max_pending,
        )
        self.sink_process = (
            SinkProcess(
                WorkerSpec(
                    outbox=str(self.outbox.path),
                    sinks=self.sink_names,
                    sink=TSDB_SINK,
                    store=store,
                    log_level=logging.getLogger().getEffectiveLevel(),
                ),
                self.metrics,
            )
            if store is not None
            else None
        )
        self.source = MqttSource(
            device_ep,
            f"facility-gw-{settings.gateway_id}",
            self.matcher.subscriptions,
            self._queue,
            # A batch decoding, one waiting for its commit, one committing, one gathering:
            # more than that held in memory only adds to it, so the source waits.
            max_held=4 * settings.batch_max,
        )
        # One master per RS-485 port; a poll is done once its readings are on disk.
        self.buses = assemble_buses(
            site,
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

    def _store_spec(self, site: SiteConfig) -> InfluxSpec | SqlSpec | None:
        """What the sink process needs to write the time-series store: everything taken
        from the site here (InfluxDB series keys), so that it never loads the site."""
        settings = self.settings
        if settings.tsdb == "sql":
            return SqlSpec(
                kind="sql",
                url=settings.sql_url(),
                gateway_id=settings.gateway_id,
                retention_days=settings.tsdb_retention_days,
            )
        if settings.tsdb == "influx":
            from gateway.sinks.line_protocol import device_tags

            return InfluxSpec(
                kind="influx",
                url=settings.influx_url,
                token=settings.influx_token.get_secret_value(),
                org=settings.influx_org,
                bucket=settings.influx_bucket,
                site=site.site,
                gateway_id=settings.gateway_id,
                devices=device_tags(site, self.profiles),
            )
        return None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.uplink.start()
        if self.sink_process is not None:
            self.sink_process.start()
        self._spawn(
            f"sink-{self.uplink.name}",
            run_sink,
            self.uplink,
            self.outbox,
            self._stop,
            self._wake,
            self.metrics,
        )
        self._spawn("ingest", self._ingest_loop)
        self._spawn("commit", self._commit_loop)
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
            len(self.matcher.device_ids),
            self.sink_names,
        )

    def stop(self) -> None:
        """Sources first, so nothing new comes in; then the sinks finish the batch in hand
        (what they have not taken stays in the outbox for the next start)."""
        for bus in self.buses:
            bus.stop()
        self.source.stop()
        self._stop.set()
        self._wake.notify()
        for t in self._threads:
            if t.name == "gw-commit":  # after the ingest thread: what it decoded is stored
                with contextlib.suppress(queue.Full):
                    self._commits.put(None, timeout=10)
            t.join(timeout=10)
        if self.sink_process is not None:
            self.sink_process.stop()
        self.uplink.close()
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
                self._commits.put(self.decode_batch(batch))

    def _commit_loop(self) -> None:
        while (decoded := self._commits.get()) is not None:
            self.commit(decoded)

    def ingest(self, batch: list[RawMessage]) -> None:
        """Decode, store and acknowledge one batch (what the two ingest threads do between
        them, here in one call)."""
        self.commit(self.decode_batch(batch))

    def decode_batch(self, batch: list[RawMessage]) -> _Decoded:
        readings: list[WireReading] = []
        events: list[WireEvent] = []
        rejections: list[Rejection] = []
        restamped = 0
        self.metrics.received.labels("mqtt").inc(len(batch))
        decode = self.messages.decode_into
        for msg in batch:
            held = len(readings), len(events), len(rejections)
            try:
                restamped += decode(msg, readings, events, rejections)
            except Exception as exc:  # a decoder bug costs this one message, not the gateway
                del readings[held[0] :], events[held[1] :], rejections[held[2] :]
                rej = Rejection(
                    reason=RejectReason.DECODE_ERROR,
                    detail=f"{type(exc).__name__}: {exc}",
                    source=msg.topic,
                    raw=msg.payload[:512],
                )
                self.record_rejection(rej, exc_info=exc)
        for rej in rejections:
            self.record_rejection(rej)
        if restamped:
            self.metrics.restamped.inc(restamped)
        chunks = encode_chunks(readings, events, self._render)
        return _Decoded(batch, chunks, len(readings), len(events))

    def commit(self, decoded: _Decoded) -> None:
        """Into the outbox (on disk when this returns), then acknowledged to the broker."""
        try:
            self.outbox.append_encoded(decoded.chunks)
        except OutboxFull as exc:
            # Refuse new data rather than delete what we hold; acked so the broker does not
            # redeliver the same overflow forever.
            for msg in decoded.batch:
                self.record_rejection(
                    Rejection(reason=RejectReason.OUTBOX_FULL, detail=str(exc), source=msg.topic)
                )
        else:
            self.metrics.accepted.inc(decoded.readings)
            self.metrics.events.inc(decoded.events)
            self._stored()
        self.source.ack_many(decoded.batch)  # one write for the whole batch, now on disk

    def ingest_readings(self, device_id: str, readings: list[Reading]) -> None:
        """A serial poll's readings into the outbox; returns once they are on disk."""
        try:
            self.outbox.append_encoded(encode_chunks(encode_readings(readings), [], self._render))
        except OutboxFull as exc:
            self.record_rejection(
                Rejection(reason=RejectReason.OUTBOX_FULL, detail=str(exc), source=device_id)
            )
            return
        self.metrics.accepted.inc(len(readings))
        self._stored()

    def _stored(self) -> None:
        """New items in the outbox: wake the sinks."""
        self._wake.notify()
        if self.sink_process is not None:
            self.sink_process.wake()

    def record_rejection(self, rej: Rejection, exc_info: BaseException | None = None) -> None:
        self.metrics.rejected.labels(rej.reason.value).inc()
        self.reject_log.log(rej, exc_info)  # every one counted; the log line is rate-limited


def build_gateway(settings: GatewaySettings) -> Gateway:
    return Gateway(settings)
