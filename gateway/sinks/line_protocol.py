"""Line protocol of wire items, for the InfluxDB v2 write API (schema: docs/timeseries.md).

Written here rather than through a client library's point objects, which cost more per
point than the rest of the gateway's path. The gateway's process renders each batch while
the decoder's dicts are in hand (the outbox keeps the lines beside the JSON); the sink
process (gateway.sinks.influx) sends those bytes. This module imports no client library, so
the gateway's process does not carry one.

One measurement per device class; tags device, site, building, room, gateway; one field per
metric, plus `seq` (the device's message counter, a field: a tag would make every message a
new series). Numbers are always float fields (a device sending `3` after `3.5` must not meet
a field-type conflict); `seq` is an integer field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the sink process loads neither profiles nor site
    from core.profiles import Profile
    from core.site import SiteConfig
    from core.wire import WireEvent, WireReading

EVENTS_MEASUREMENT = "device_event"
# What a device's tags come from besides the site and gateway: its measurement (the device
# class), building and room (None: the site file gives none).
DeviceTags = tuple[str, str, str | None]

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


def device_tags(site: SiteConfig, profiles: dict[str, Profile]) -> dict[str, DeviceTags]:
    """Each site device's measurement, building and room: what its series is made of."""
    return {
        d.id: ((d.device_class or profiles[d.profile].device_class).value, d.building, d.room)
        for d in site.devices
    }


class LineProtocol:
    """Wire items as line protocol for one site's devices. The gateway renders each batch
    with it while the decoder's dicts are in hand (the outbox keeps the lines beside the
    JSON), so the sink process sends bytes instead of parsing and regrouping them; the sink
    renders with it only what was stored without lines."""

    def __init__(self, site: str, gateway_id: str, devices: Mapping[str, DeviceTags]) -> None:
        self._site = site
        self._gateway_id = gateway_id
        self._devices = devices
        # Escaped on first use, each once: device -> "measurement,tags"; metric -> "key=".
        self._series: dict[str, str] = {}
        self._field_prefixes: dict[str, str] = {}

    @classmethod
    def for_site(
        cls, site: SiteConfig, profiles: dict[str, Profile], gateway_id: str
    ) -> LineProtocol:
        return cls(site.site, gateway_id, device_tags(site, profiles))

    def _tags(self, device: str) -> tuple[str, dict[str, str]]:
        """A device's measurement and tags; a device not in the site file is still stored,
        under its id."""
        found = self._devices.get(device)
        if found is None:
            return "unknown", {"device": device}
        measurement, building, room = found
        tags = {
            "device": device,
            "site": self._site,
            "building": building,
            "gateway": self._gateway_id,
        }
        if room:
            tags["room"] = room
        return measurement, tags

    def _series_of(self, device: str) -> str:
        key = self._series.get(device)
        if key is None:
            key = self._series[device] = series_key(*self._tags(device))
        return key

    def _prefix(self, metric: str) -> str:
        prefix = self._field_prefixes[metric] = metric.translate(_ESC_KEY) + "="
        return prefix

    def lines(self, readings: list[WireReading], events: list[WireEvent]) -> list[str]:
        """Line protocol, millisecond timestamps. The readings of one device message (same
        device and time, next to each other in the outbox) share one point; its identity
        is series + time, so a replayed batch overwrites itself."""
        out: list[str] = []
        prefixes = self._field_prefixes
        series = self._series
        fields: list[str] = []
        device = ""
        t = -1
        for r in readings:
            d = r["d"]
            rt = r["t"]
            if rt != t or d != device:  # a new point
                if fields:
                    key = series.get(device) or self._series_of(device)
                    out.append(f"{key} {','.join(fields)} {t}")
                device, t = d, rt
                seq = r.get("s")
                fields = [] if seq is None else [f"seq={int(seq)}i"]
            metric = r["m"]
            prefix = prefixes.get(metric) or self._prefix(metric)
            value = r["v"]
            if type(value) is float:  # the everyday case inline: _field_value's first
                if value - value == 0.0:  # not nan or inf: line protocol has no spelling
                    text = repr(value)
                    fields.append(prefix + (text[:-2] if text.endswith(".0") else text))
            else:
                f = _field_value(prefix, value)
                if f is not None:
                    fields.append(f)
        if fields:
            out.append(f"{self._series_of(device)} {','.join(fields)} {t}")
        for e in events:  # few: escaped each time rather than kept for every device
            _measurement, tags = self._tags(e["d"])
            event_series = series_key(EVENTS_MEASUREMENT, {**tags, "kind": e["k"]})
            event_id = str(e["id"]).translate(_ESC_STRING)
            out.append(f'{event_series} count=1i,event_id="{event_id}" {e["t"]}')
        return out

    def render(self, readings: list[WireReading], events: list[WireEvent]) -> bytes:
        """`lines` as the request body's text (gateway.outbox.outbox.Render)."""
        return "\n".join(self.lines(readings, events)).encode()
