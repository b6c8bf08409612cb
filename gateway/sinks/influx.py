"""Time-series sink for InfluxDB's v2 write API (InfluxDB 2.x/3.x, 1.8+ compatibility
endpoint, VictoriaMetrics). Schema: docs/timeseries.md.

One measurement per device class; tags device, site, building, room, gateway; one field per
metric, plus `seq` (the device's message counter, a field: a tag would make every message a
new series). A point is identified by measurement + tags + timestamp, so a batch the outbox
replays after a crash overwrites itself instead of doubling (VictoriaMetrics: with
`-dedup.minScrapeInterval=1ms`).

Batching and retries are the outbox's: each write is one synchronous request of up to a few
thousand items, gzip-compressed; a failure raises SinkError and the sink loop retries the
same batch with exponential back-off and full jitter, so nothing is acknowledged before the
store has it.

The request is influxdb-client's v2 write call (its WriteService: `POST /api/v2/write`,
precision ms), made with the line protocol the gateway rendered at ingest; the library owns
the HTTP, TLS, proxies and error mapping. The body is gzipped here at level 1 rather than by
the client's `enable_gzip` (level 9): on a machine whose cores the broker, the store and the
gateway share, level 9 cost a fifth of the sink process's CPU for a few per cent of size.
The library costs the sink process ~28 MB of imports (every generated API model), which the
gateway's memory budget allows for (bench/ingest.py).

The line protocol itself is gateway.sinks.line_protocol's (no client library there, so the
gateway's own process does not load this one).
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService
from urllib3.exceptions import HTTPError

from gateway.sinks.base import OutboxBatch, Sink, SinkError
from gateway.sinks.line_protocol import DeviceTags, LineProtocol

if TYPE_CHECKING:  # types only: the sink process loads neither profiles nor site
    from core.profiles import Profile
    from core.site import SiteConfig
    from core.wire import WireEvent, WireReading

log = logging.getLogger(__name__)
GZIP_LEVEL = 1


class InfluxSink(Sink):
    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        site: SiteConfig,
        profiles: dict[str, Profile],
        gateway_id: str,
        name: str = "tsdb",
        timeout_s: float = 10.0,
    ) -> None:
        protocol = LineProtocol.for_site(site, profiles, gateway_id)
        self._setup(url, token, org, bucket, protocol, name, timeout_s)

    @classmethod
    def for_devices(
        cls,
        url: str,
        token: str,
        org: str,
        bucket: str,
        site: str,
        gateway_id: str,
        devices: Mapping[str, DeviceTags],
        *,
        name: str = "tsdb",
        timeout_s: float = 10.0,
    ) -> InfluxSink:
        """The sink for devices `device_tags` described (the sink process gets them from
        the gateway instead of loading the site)."""
        sink = cls.__new__(cls)
        protocol = LineProtocol(site, gateway_id, devices)
        sink._setup(url, token, org, bucket, protocol, name, timeout_s)
        return sink

    def _setup(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        protocol: LineProtocol,
        name: str,
        timeout_s: float,
    ) -> None:
        self.name = name
        self.org = org
        self.bucket = bucket
        self.rejected_points = 0
        self.protocol = protocol
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB URL {url!r} must be http(s)://host[:port][/path]")
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000))
        self._write = WriteService(self._client.api_client)

    def lines(self, readings: list[WireReading], events: list[WireEvent]) -> list[str]:
        return self.protocol.lines(readings, events)

    def write(
        self, readings: list[WireReading], events: list[WireEvent], first: int, last: int
    ) -> None:
        self._send(self.protocol.render(readings, events), first, last)

    def write_batch(self, batch: OutboxBatch) -> None:
        # The lines the gateway stored with the items; rendered here only when it did not.
        text = batch.lines()
        if text is None:
            text = self.protocol.render(batch.readings, batch.events)
        self._send(text, batch.first, batch.last)

    def _send(self, text: bytes, first: int, last: int) -> None:
        if not text:
            return
        try:
            self._write.post_write(
                org=self.org,
                bucket=self.bucket,
                body=gzip.compress(text, GZIP_LEVEL),
                precision="ms",
                content_encoding="gzip",
                content_type="text/plain; charset=utf-8",
            )
        except ApiException as exc:
            if exc.status in (400, 422):
                # The store refused some points for good (e.g. a field type conflict); the
                # valid ones are written. Retrying cannot help: count, log, go on.
                self.rejected_points += text.count(b"\n") + 1
                log.error("%s: store refused points %d-%d: %s", self.name, first, last, exc.body)
                return
            raise SinkError(f"{self.name}: HTTP {exc.status}: {exc.reason}") from exc
        except (HTTPError, OSError) as exc:
            raise SinkError(f"{self.name}: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
