"""Time-series sink on SQL (SQLite by default, PostgreSQL), idempotent on reading ids."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Table, create_engine, delete, event, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core import tsdb_schema as ts
from gateway.sinks.base import Sink, SinkError

if TYPE_CHECKING:  # types only: the sink process does without pydantic
    from core.wire import WireEvent, WireReading

log = logging.getLogger(__name__)

# Retention runs a minute after the first write, then hourly: rolling up is a few queries an hour.
RETENTION_FIRST_MS = 60_000
RETENTION_EVERY_MS = 3_600_000


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the server read history while the gateway writes.
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA busy_timeout=10000")

    return engine


def _insert_sql(engine: Engine, table: Table) -> str:
    """INSERT that skips rows whose id is already stored (replays are no-ops)."""
    cols = ", ".join(c.name for c in table.columns)
    if engine.dialect.name == "postgresql":
        marks = ", ".join(["%s"] * len(table.columns))
        return f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"
    marks = ", ".join(["?"] * len(table.columns))
    return f"INSERT OR IGNORE INTO {table.name} ({cols}) VALUES ({marks})"


class SqlTimeSeriesSink(Sink):
    def __init__(
        self, url: str, gateway_id: str, name: str = "tsdb", *, retention_days: int = 0
    ) -> None:
        self.name = name
        self.gateway_id = gateway_id
        self.retention_days = retention_days  # 0: keep every raw reading
        self._next_retention_ms: int | None = None  # set by the first `maintain`
        self._engine = make_engine(url)
        self._readings_sql = _insert_sql(self._engine, ts.readings)
        self._events_sql = _insert_sql(self._engine, ts.events)
        try:
            ts.metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise SinkError(f"time-series store {self._engine.url!r} unusable: {exc}") from exc

    def write(
        self, readings: list[WireReading], events: list[WireEvent], first: int, last: int
    ) -> None:
        # Plain DBAPI executemany: the hot path of the gateway, where building ORM or Core
        # statements per row cost more than the database's own work.
        gw = self.gateway_id
        rows = [
            (
                r["id"],
                r["d"],
                r["m"],
                r["t"],
                float(r["v"]) if isinstance(r["v"], int | float) else None,
                r["v"] if isinstance(r["v"], str) else None,
                r.get("u"),
                r.get("s"),
                r.get("q", "good"),
                r["r"],
                gw,
            )
            for r in readings
        ]
        erows = [
            (
                e["id"],
                e["d"],
                e["k"],
                e["t"],
                e["r"],
                orjson.dumps(e["a"]).decode() if e.get("a") is not None else None,
                gw,
            )
            for e in events
        ]
        try:
            with self._engine.begin() as conn:
                if rows:
                    conn.exec_driver_sql(self._readings_sql, rows)
                if erows:
                    conn.exec_driver_sql(self._events_sql, erows)
        except SQLAlchemyError as exc:
            raise SinkError(f"{self.name}: write failed: {exc.__class__.__name__}: {exc}") from exc

    def maintain(self, now_ms: int) -> None:
        """Retention on its schedule: raw readings past `retention_days` rolled up hourly."""
        if self.retention_days <= 0:
            return
        if self._next_retention_ms is None:
            self._next_retention_ms = now_ms + RETENTION_FIRST_MS
        if now_ms < self._next_retention_ms:
            return
        self._next_retention_ms = now_ms + RETENTION_EVERY_MS
        hours, deleted = self.apply_retention(self.retention_days, now_ms)
        if deleted:
            log.info("retention: %d raw readings rolled up into %d hourly rows", deleted, hours)

    def apply_retention(self, retention_days: int, now_ms: int) -> tuple[int, int]:
        """Roll raw readings older than `retention_days` up into hourly min/max/mean rows,
        then delete them. Only whole hours are rolled up, so an hour is never half counted;
        idempotent (a repeated run finds nothing left to roll up). Returns (hours, rows)."""
        if retention_days <= 0:
            return (0, 0)
        hour_ms = 3_600_000
        cutoff = (now_ms - retention_days * 86_400_000) // hour_ms * hour_ms
        t, h = ts.readings, ts.readings_hourly
        bucket = (t.c.ts - (t.c.ts % hour_ms)).label("hour")
        rollup = (
            select(
                t.c.device_id,
                t.c.metric,
                bucket,
                func.count().label("n"),
                func.min(t.c.value_num).label("min"),
                func.max(t.c.value_num).label("max"),
                func.avg(t.c.value_num).label("mean"),
                func.max(t.c.unit).label("unit"),
            )
            .where(t.c.ts < cutoff, t.c.value_num.is_not(None))
            .group_by(t.c.device_id, t.c.metric, bucket)
        )
        try:
            with self._engine.begin() as conn:
                rows = [dict(r._mapping) for r in conn.execute(rollup)]
                if rows:
                    insert = (
                        pg_insert(h)
                        if self._engine.dialect.name == "postgresql"
                        else sqlite_insert(h)
                    )
                    conn.execute(insert.on_conflict_do_nothing(), rows)
                deleted = conn.execute(delete(t).where(t.c.ts < cutoff)).rowcount
        except SQLAlchemyError as exc:
            raise SinkError(f"{self.name}: retention failed: {exc}") from exc
        return (len(rows), deleted or 0)

    def close(self) -> None:
        self._engine.dispose()
