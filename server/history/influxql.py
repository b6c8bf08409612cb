"""History reads over InfluxQL on `/query` (InfluxDB 1.x; 2.x/3.x through their v1
compatibility API with a DBRP mapping), for points the gateway's InfluxSink wrote
(schema: docs/timeseries.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from core.profiles import Profile
from core.readings import unix_ms
from core.site import SiteConfig
from server.history.reader import HistoryUnavailable, Point

# Columns the sink writes that are not metrics.
NOT_METRICS = frozenset({"time", "device", "site", "building", "room", "gateway", "seq"})


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxQLHistory:
    def __init__(
        self,
        url: str,
        database: str,
        site: SiteConfig,
        profiles: dict[str, Profile],
        token: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self._headers = {"Authorization": f"Token {token}"} if token else {}
        self._timeout = timeout_s
        self._measurement: dict[str, str] = {}
        self._units: dict[str, dict[str, str | None]] = {}
        for d in site.devices:
            profile = profiles[d.profile]
            self._measurement[d.id] = (d.device_class or profile.device_class).value
            self._units[d.id] = {m.key: m.resolved_unit for m in profile.metrics}

    def query(self, q: str) -> dict[str, Any]:
        try:
            r = httpx.get(
                f"{self.url}/query",
                params={"db": self.database, "q": q, "epoch": "ms"},
                headers=self._headers,
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise HistoryUnavailable(f"{self.url}: {exc}") from exc
        if r.status_code != 200:
            raise HistoryUnavailable(f"{self.url}/query answered {r.status_code}: {r.text[:200]}")
        body: dict[str, Any] = r.json()
        for result in body.get("results", []):
            if "error" in result:
                raise HistoryUnavailable(f"InfluxQL error: {result['error']}")
        return body

    def read(
        self, device_id: str, metric: str | None, start: datetime, end: datetime, limit: int
    ) -> list[Point]:
        measurement = self._measurement.get(device_id)
        if measurement is None:
            return []
        fields = quote_ident(metric) if metric else "*"
        q = (
            f"SELECT {fields} FROM {quote_ident(measurement)} "
            f"WHERE {quote_ident('device')} = {quote_string(device_id)} "
            f"AND time >= {unix_ms(start)}ms "
            f"AND time <= {unix_ms(end)}ms "
            f"ORDER BY time ASC LIMIT {int(limit)}"
        )
        units = self._units.get(device_id, {})
        points: list[Point] = []
        for result in self.query(q).get("results", []):
            for series in result.get("series", []):
                columns: list[str] = series["columns"]
                for row in series.get("values", []):
                    at = datetime.fromtimestamp(row[0] / 1000, tz=UTC)
                    for col, value in zip(columns, row, strict=True):
                        if col in NOT_METRICS or value is None:
                            continue
                        points.append(Point(col, at, value, units.get(col)))
        return points[:limit]
