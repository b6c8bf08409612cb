"""SQL time-series schema shared by the gateway's SQL sink (writer) and the server (reader)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Double,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
)

metadata = MetaData()

# Times are epoch milliseconds: one cheap, sortable integer on SQLite and PostgreSQL alike.
# One B-tree does both jobs: the key (device, time, metric, reading id) is unique exactly
# when the reading id is (the id is made of device, metric, time and seq), so replays are
# ignored on it; and its prefix serves the hot query, one device's readings over a time
# range (charts, cold-chain reports), with or without a metric, already in time order.
# On SQLite the table is WITHOUT ROWID, so rows live in that B-tree: no second index to
# update on every insert, half the disk. Stores made by earlier versions (reading_id as
# key plus an index on device, metric, time) are read and written unchanged.
readings = Table(
    "ts_readings",
    metadata,
    Column("reading_id", String(200), nullable=False),  # idempotency key
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
    PrimaryKeyConstraint("device_id", "ts", "metric", "reading_id", name="pk_ts_readings"),
    sqlite_with_rowid=False,
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
