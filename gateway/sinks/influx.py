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

Line protocol is written here rather than through influxdb-client's Point, which costs
more per point than the rest of the gateway's path: each device's measurement and tags
are escaped once, at start. Numbers are always float fields (a device sending `3` after
`3.5` must not meet a field-type conflict); `seq` is an integer field.
"""

from __future__ import annotations

import logging
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from core.profiles import Profile
from core.site import SiteConfig
from core.wire import WireEvent, WireReading
from gateway.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)

EVENTS_MEASUREMENT = "device_event"

# Line-protocol escaping (https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/)
_ESC_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESC_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESC_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


def _tag_value(value: str) -> str:
    out = value.translate(_ESC_KEY)
    return out + " " if out.endswith("\\") else out  # a trailing backslash would escape


def series_key(measurement: str, tags: dict[str, str]) -> str:
    """`measurement,tag=value,...` escaped, tags sorted (as InfluxDB stores them)."""
    parts = [measurement.translate(_ESC_MEASUREMENT)]
    parts += [f"{k.translate(_ESC_KEY)}={_tag_value(v)}" for k, v in sorted(tags.items()) if v]
    return ",".join(parts)


def field(key: str, value: Any) -> str | None:
    """`key=value` for a reading's value; None for a value line protocol cannot hold."""
    return _field_value(key.translate(_ESC_KEY) + "=", value)


def _field_value(prefix: str, value: Any) -> str | None:
    """`prefix` (the escaped key and "=") and the value as a field, or None."""
    kind = type(value)
    if kind is float:
        if value - value != 0.0:  # nan or inf: line protocol has no spelling for them
            return None
        text = repr(value)
        return prefix + (text[:-2] if text.endswith(".0") else text)
    if kind is bool:
        return prefix + ("true" if value else "false")
    if isinstance(value, int) and not isinstance(value, bool):
        return _field_value(prefix, float(value))
    if isinstance(value, str):
        return f'{prefix}"{value.translate(_ESC_STRING)}"'
    return None


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
        self.name = name
        self.org = org
        self.bucket = bucket
        self.rejected_points = 0
        self._client = InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout_s * 1000), enable_gzip=True
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._tags: dict[str, dict[str, str]] = {}
        self._series: dict[str, str] = {}  # device -> escaped "measurement,tags"
        self._field_prefixes: dict[str, str] = {}  # metric -> escaped "key="
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
            self._tags[d.id] = tags
            self._series[d.id] = series_key(cls, tags)

    def _series_of(self, device: str) -> str:
        key = self._series.get(device)
        if key is None:  # not in the site file: still stored, under its id
            key = self._series[device] = series_key("unknown", {"device": device})
        return key

    def lines(self, readings: list[WireReading], events: list[WireEvent]) -> list[str]:
        """Line protocol, millisecond timestamps. The readings of one device message (same
        device and time) share one point; its identity is series + time, so a replayed
        batch overwrites itself."""
        points: dict[tuple[str, int], list[str]] = {}
        prefixes = self._field_prefixes
        for r in readings:
            key = (r["d"], r["t"])
            fields = points.get(key)
            if fields is None:
                seq = r.get("s")
                fields = points[key] = [] if seq is None else [f"seq={int(seq)}i"]
            metric = r["m"]
            prefix = prefixes.get(metric)
            if prefix is None:
                prefix = prefixes[metric] = metric.translate(_ESC_KEY) + "="
            f = _field_value(prefix, r["v"])
            if f is not None:
                fields.append(f)
        out = [
            f"{self._series_of(device)} {','.join(fields)} {t}"
            for (device, t), fields in points.items()
            if fields
        ]
        for e in events:
            tags = {**self._tags.get(e["d"], {"device": e["d"]}), "kind": e["k"]}
            event_id = str(e["id"]).translate(_ESC_STRING)
            out.append(
                f'{series_key(EVENTS_MEASUREMENT, tags)} count=1i,event_id="{event_id}" {e["t"]}'
            )
        return out

    def write(
        self, readings: list[WireReading], events: list[WireEvent], first: int, last: int
    ) -> None:
        lines = self.lines(readings, events)
        if not lines:
            return
        try:
            self._write.write(
                bucket=self.bucket,
                org=self.org,
                record="\n".join(lines),
                # The library's stub types the enum class, its constants are plain str.
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            if exc.status in (400, 422):
                # The store refused some points for good (e.g. a field type conflict); the
                # valid ones are written. Retrying cannot help: count, log, go on.
                self.rejected_points += len(lines)
                log.error("%s: store refused points %d-%d: %s", self.name, first, last, exc.body)
                return
            raise SinkError(f"{self.name}: HTTP {exc.status}: {exc.reason}") from exc
        except (HTTPError, OSError) as exc:
            raise SinkError(f"{self.name}: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()
