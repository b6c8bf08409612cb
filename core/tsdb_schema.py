"""SQL time-series schema shared by the gateway's SQL sink (writer) and the server (reader)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Double,
    Index,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

# Times are epoch milliseconds: one cheap, sortable integer on SQLite and PostgreSQL alike.
readings = Table(
    "ts_readings",
    metadata,
    Column("reading_id", String(200), primary_key=True),  # idempotency key
    Column("device_id", String(64), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("value_num", Double, nullable=True),
    Column("value_text", String(200), nullable=True),
    Column("unit", String(16), nullable=True),
    Column("seq", BigInteger, nullable=True),
    Column("quality", String(16), nullable=False, default="good"),
    Column("received_ts", BigInteger, nullable=False),
    Column("gateway_id", String(64), nullable=False),
    # Per-device time-range reads are the hot query (charts, cold-chain reports).
    Index("ix_ts_readings_device_metric_ts", "device_id", "metric", "ts"),
)

events = Table(
    "ts_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("device_id", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("received_ts", BigInteger, nullable=False),
    Column("attrs", JSON, nullable=True),
    Column("gateway_id", String(64), nullable=False),
    Index("ix_ts_events_device_ts", "device_id", "ts"),
)

# Hourly roll-up of numeric readings, kept after the raw rows pass their retention: the
# history stays readable (min/max/mean per hour) for as long as a cold-chain audit needs.
readings_hourly = Table(
    "ts_readings_hourly",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("hour", BigInteger, primary_key=True),  # epoch ms of the hour's start (UTC)
    Column("n", BigInteger, nullable=False),
    Column("min", Double, nullable=False),
    Column("max", Double, nullable=False),
    Column("mean", Double, nullable=False),
    Column("unit", String(16), nullable=True),
)
