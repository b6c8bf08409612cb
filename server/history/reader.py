"""History reads from the time-series store: SQL (the gateway's table) or InfluxQL /query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Select, inspect, select
from sqlalchemy.engine import Engine

from core import tsdb_schema as ts
from core.readings import unix_ms


@dataclass(frozen=True, slots=True)
class Point:
    metric: str
    ts: datetime
    value: float | bool | str | None
    unit: str | None


class HistoryReader(Protocol):
    def read(
        self, device_id: str, metric: str | None, start: datetime, end: datetime, limit: int
    ) -> list[Point]: ...


def history_query(
    device_id: str, metric: str | None, start: datetime, end: datetime, limit: int
) -> Select[str, int, float | None, str | None, str | None]:
    """Raw readings of one device over a time range: a range search of the table's key
    (device, time, ...), already in time order (tests check the plan)."""
    t = ts.readings
    q = (
        select(t.c.metric, t.c.ts, t.c.value_num, t.c.value_text, t.c.unit)
        .where(
            t.c.device_id == device_id,
            t.c.ts >= unix_ms(start),
            t.c.ts <= unix_ms(end),
        )
        .order_by(t.c.ts)
        .limit(limit)
    )
    return q.where(t.c.metric == metric) if metric else q


class SqlHistory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(
        self, device_id: str, metric: str | None, start: datetime, end: datetime, limit: int
    ) -> list[Point]:
        q = history_query(device_id, metric, start, end, limit)
        h = ts.readings_hourly
        hq = (
            select(h.c.metric, h.c.hour, h.c.mean, h.c.unit)
            .where(
                h.c.device_id == device_id,
                h.c.hour >= unix_ms(start),
                h.c.hour <= unix_ms(end),
            )
            .order_by(h.c.hour)
            .limit(limit)
        )
        if metric:
            hq = hq.where(h.c.metric == metric)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(q).all()
                hourly = conn.execute(hq).all() if inspect(conn).has_table(h.name) else []
        except Exception as exc:  # the store is the gateway's: it may not exist yet
            raise HistoryUnavailable(str(exc)) from exc
        # Hourly means stand in for raw readings that retention removed (older than any raw).
        first_raw = rows[0][1] if rows else None
        points = [
            Point(m, datetime.fromtimestamp(t_ms / 1000, tz=UTC), mean, u)
            for m, t_ms, mean, u in hourly
            if first_raw is None or t_ms + 3_600_000 <= first_raw
        ]
        points += [
            Point(m, datetime.fromtimestamp(t_ms / 1000, tz=UTC), vn if vn is not None else vt, u)
            for m, t_ms, vn, vt, u in rows
        ]
        return points[:limit]


class HistoryUnavailable(RuntimeError):
    pass
