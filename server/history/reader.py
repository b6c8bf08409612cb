"""History reads from the time-series store: SQL (the gateway's table) or InfluxQL /query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.engine import Engine

from core import tsdb_schema as ts


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


class SqlHistory:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(
        self, device_id: str, metric: str | None, start: datetime, end: datetime, limit: int
    ) -> list[Point]:
        t = ts.readings
        q = (
            select(t.c.metric, t.c.ts, t.c.value_num, t.c.value_text, t.c.unit)
            .where(
                t.c.device_id == device_id,
                t.c.ts >= int(start.timestamp() * 1000),
                t.c.ts <= int(end.timestamp() * 1000),
            )
            .order_by(t.c.ts)
            .limit(limit)
        )
        if metric:
            q = q.where(t.c.metric == metric)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(q).all()
        except Exception as exc:  # the store is the gateway's: it may not exist yet
            raise HistoryUnavailable(str(exc)) from exc
        return [
            Point(m, datetime.fromtimestamp(t_ms / 1000, tz=UTC), vn if vn is not None else vt, u)
            for m, t_ms, vn, vt, u in rows
        ]


class HistoryUnavailable(RuntimeError):
    pass
