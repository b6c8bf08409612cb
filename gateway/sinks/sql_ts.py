"""Time-series sink on SQL (SQLite by default, PostgreSQL), idempotent on reading ids."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core import tsdb_schema as ts
from gateway.sinks.base import SinkError


def make_engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the server read history while the gateway writes.
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA busy_timeout=10000")

    return engine


class SqlTimeSeriesSink:
    def __init__(self, url: str, gateway_id: str, name: str = "tsdb") -> None:
        self.name = name
        self.gateway_id = gateway_id
        self._engine = make_engine(url)
        self._insert = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        try:
            ts.metadata.create_all(self._engine)
        except SQLAlchemyError as exc:
            raise SinkError(f"time-series store {self._engine.url!r} unusable: {exc}") from exc

    def write(
        self, readings: list[dict[str, Any]], events: list[dict[str, Any]], first: int, last: int
    ) -> None:
        rows = [
            {
                "reading_id": r["id"],
                "device_id": r["d"],
                "metric": r["m"],
                "ts": r["t"],
                "value_num": float(r["v"]) if isinstance(r["v"], int | float) else None,
                "value_text": r["v"] if isinstance(r["v"], str) else None,
                "unit": r.get("u"),
                "seq": r.get("s"),
                "quality": r.get("q", "good"),
                "received_ts": r["r"],
                "gateway_id": self.gateway_id,
            }
            for r in readings
        ]
        erows = [
            {
                "event_id": e["id"],
                "device_id": e["d"],
                "kind": e["k"],
                "ts": e["t"],
                "received_ts": e["r"],
                "attrs": e.get("a"),
                "gateway_id": self.gateway_id,
            }
            for e in events
        ]
        try:
            with self._engine.begin() as conn:
                if rows:
                    conn.execute(self._insert(ts.readings).on_conflict_do_nothing(), rows)
                if erows:
                    conn.execute(self._insert(ts.events).on_conflict_do_nothing(), erows)
        except SQLAlchemyError as exc:
            raise SinkError(f"{self.name}: write failed: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        self._engine.dispose()
