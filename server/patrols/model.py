"""Patrol scans (append-only: who scanned which checkpoint when, from a reader or a QR code),
the rounds as judged at their end, and how far each route has been judged."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime


class PatrolScan(Base):
    __tablename__ = "patrol_scans"
    __table_args__ = (UniqueConstraint("event_id", name="uq_patrol_scans_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # A reader's event id: its redelivery records nothing twice. None for a QR scan.
    event_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    building: Mapped[str] = mapped_column(String(64), index=True)
    checkpoint: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    by: Mapped[str] = mapped_column(String(128))  # username, or "card:<pseudonym>"
    source: Mapped[str] = mapped_column(String(16))  # qr | reader
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PatrolRound(Base):
    """A round as judged once its time was up; never changed after (the notification was
    sent on it)."""

    __tablename__ = "patrol_rounds"
    __table_args__ = (UniqueConstraint("route", "starts_at", name="uq_patrol_rounds_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(64), index=True)
    night: Mapped[date] = mapped_column(Date, index=True)  # the evening the night starts
    number: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # complete | incomplete | missed
    scanned: Mapped[list[str]] = mapped_column(JSON, default=list)
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    out_of_order: Mapped[bool] = mapped_column(Boolean, default=False)
    judged_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PatrolRouteState(Base):
    """Rounds due up to `judged_until` are judged: after a restart the rest are, once."""

    __tablename__ = "patrol_route_state"

    route: Mapped[str] = mapped_column(String(64), primary_key=True)
    judged_until: Mapped[datetime] = mapped_column(UtcDateTime)
