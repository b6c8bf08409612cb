"""Time-series sink for InfluxDB's v2 write API (InfluxDB 2.x/3.x, 1.8+ compatibility
endpoint, VictoriaMetrics) through influxdb-client. Schema: docs/timeseries.md.

One measurement per device class; tags device, site, building, room, gateway; one field per
metric, plus `seq` (the device's message counter, a field: a tag would make every message a
new series). A point is identified by measurement + tags + timestamp, so a batch the outbox
replays after a crash overwrites itself instead of doubling (VictoriaMetrics: with
`-dedup.minScrapeInterval=1ms`).

Batching and retries are the outbox's: each write is one synchronous request of up to a
thousand items, gzip-compressed; a failure raises SinkError and the sink loop retries the
same batch with exponential back-off and full jitter, so nothing is acknowledged before the
store has it.
"""

from __future__ import annotations

import logging
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from core.profiles import Profile
from core.site import SiteConfig
from gateway.sinks.base import SinkError

log = logging.getLogger(__name__)

EVENTS_MEASUREMENT = "device_event"


class InfluxSink:
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
        self.name = name
        self.org = org
        self.bucket = bucket
        self.rejected_points = 0
        self._client = InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout_s * 1000), enable_gzip=True
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._tags: dict[str, tuple[str, dict[str, str]]] = {}
        for d in site.devices:
            cls = (d.device_class or profiles[d.profile].device_class).value
            tags = {
                "device": d.id,
                "site": site.site,
                "building": d.building,
                "gateway": gateway_id,
            }
            if d.room:
                tags["room"] = d.room
            self._tags[d.id] = (cls, tags)

    def points(self, readings: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[Point]:
        """Readings of one device message (same device and timestamp) share one point."""
        by_key: dict[tuple[str, int], Point] = {}
        for r in readings:
            key = (r["d"], r["t"])
            point = by_key.get(key)
            if point is None:
                measurement, tags = self._tags.get(r["d"], ("unknown", {"device": r["d"]}))
                point = Point(measurement).time(r["t"], WritePrecision.MS)
                for k, v in tags.items():
                    point.tag(k, v)
                if r.get("s") is not None:
                    point.field("seq", int(r["s"]))
                by_key[key] = point
            point.field(r["m"], r["v"])
        out = list(by_key.values())
        for e in events:
            _, tags = self._tags.get(e["d"], ("unknown", {"device": e["d"]}))
            point = Point(EVENTS_MEASUREMENT).time(e["t"], WritePrecision.MS).tag("kind", e["k"])
            for k, v in tags.items():
                point.tag(k, v)
            out.append(point.field("count", 1).field("event_id", e["id"]))
        return out

    def write(
        self, readings: list[dict[str, Any]], events: list[dict[str, Any]], first: int, last: int
    ) -> None:
        points = self.points(readings, events)
        if not points:
            return
        try:
            # Each point carries its own (millisecond) precision.
            self._write.write(bucket=self.bucket, org=self.org, record=points)
        except ApiException as exc:
            if exc.status in (400, 422):
                # The store refused some points for good (e.g. a field type conflict); the
                # valid ones are written. Retrying cannot help: count, log, go on.
                self.rejected_points += len(points)
                log.error("%s: store refused points %d-%d: %s", self.name, first, last, exc.body)
                return
            raise SinkError(f"{self.name}: HTTP {exc.status}: {exc.reason}") from exc
        except (HTTPError, OSError) as exc:
            raise SinkError(f"{self.name}: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
