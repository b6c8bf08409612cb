"""Alerts and their history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db.base import Base, UtcDateTime


class AlertState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Alert(Base):
    __tablename__ = "alerts"
    # At most one open alert per device and rule: open_key is "device|rule" while open and
    # NULL once resolved (NULLs never collide in a unique index on SQLite or PostgreSQL).
    __table_args__ = (UniqueConstraint("open_key", name="uq_alerts_open_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    building: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True, default=AlertState.ACTIVE)
    message: Mapped[str] = mapped_column(Text, default="")
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    peak: Mapped[float | None] = mapped_column(Float, nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    open_key: Mapped[str | None] = mapped_column(String(160), nullable=True)
    work_order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # True while the device is silent: its condition is unknown, and the alert stays open.
    condition_unknown: Mapped[bool] = mapped_column(default=False)

    history: Mapped[list[AlertEvent]] = relationship(
        back_populates="alert", order_by="AlertEvent.id", cascade="all, delete-orphan"
    )


class AlertEvent(Base):
    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text, default="")

    alert: Mapped[Alert] = relationship(back_populates="history")
