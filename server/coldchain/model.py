"""The cold-chain record's tables: compliance readings (a copy kept ≥ 2 years), excursions,
the alerts and work orders that followed them, corrective actions and daily records.
Records are never deleted; a wrong one is corrected or voided, and the audit chain keeps
every form it had (server/audit/)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime


class ColdReading(Base):
    __tablename__ = "coldchain_readings"
    __table_args__ = (Index("ix_coldchain_readings_device_at", "device_id", "measured_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reading_id: Mapped[str] = mapped_column(String(200), unique=True)  # redelivery: once
    device_id: Mapped[str] = mapped_column(String(64))
    measured_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)  # by the gateway
    arrived_at: Mapped[datetime] = mapped_column(UtcDateTime)  # by the server, first time
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Excursion(Base):
    __tablename__ = "coldchain_excursions"
    __table_args__ = (Index("ix_coldchain_excursions_device_start", "device_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(64), index=True)
    metric: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # high | low
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)  # first out-of-range reading
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)  # back in
    last_out_at: Mapped[datetime] = mapped_column(UtcDateTime)
    peak: Mapped[float] = mapped_column(Float)
    limit_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    limit_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    above_s: Mapped[float] = mapped_column(Float, default=0.0)
    below_s: Mapped[float] = mapped_column(Float, default=0.0)
    unknown_s: Mapped[float] = mapped_column(Float, default=0.0)
    readings: Mapped[int] = mapped_column(Integer, default=0)
    void: Mapped[bool] = mapped_column(Boolean, default=False)  # superseded by late data


class AlertLink(Base):
    """What the alert lifecycle told us (AlertRaised/Resolved, WorkOrderOpened/Changed),
    kept so an excursion can show the alert and work order that followed it."""

    __tablename__ = "coldchain_alert_links"

    alert_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    work_order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    work_order_status: Mapped[str | None] = mapped_column(String(32), nullable=True)


class CorrectiveAction(Base):
    __tablename__ = "coldchain_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    excursion_id: Mapped[int] = mapped_column(ForeignKey("coldchain_excursions.id"), index=True)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cause: Mapped[str] = mapped_column(Text)
    impact: Mapped[str] = mapped_column(Text)
    disposition: Mapped[str] = mapped_column(String(16))  # kept | moved | discarded
    moved_to: Mapped[str | None] = mapped_column(String(128), nullable=True)
    quantity: Mapped[str | None] = mapped_column(String(64), nullable=True)
    preventive_action: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")


class DailyRecord(Base):
    __tablename__ = "coldchain_daily"
    __table_args__ = (UniqueConstraint("device_id", "day", name="uq_coldchain_daily"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(64), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)  # readings came in later
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)  # analysis.DayFigures.as_dict()
