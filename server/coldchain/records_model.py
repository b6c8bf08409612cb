"""Tables of what people record (sign-offs, corrections, calibrations, samples, menus) and
of what the record found (findings, each notified at most once)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime


class SignOff(Base):
    __tablename__ = "coldchain_signoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    building: Mapped[str] = mapped_column(String(64), index=True)
    period: Mapped[str] = mapped_column(String(8))  # day | week
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)  # inclusive
    signed_by: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    comment: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # {ref: sha256 of its payload}


class Correction(Base):
    __tablename__ = "coldchain_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), index=True)  # the record corrected
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)  # {field: [old, new]}
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    after_signoff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Calibration(Base):
    __tablename__ = "coldchain_calibrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    calibrated_on: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(200))  # reference instrument, certificate
    offset_c: Mapped[float] = mapped_column(Float)
    result: Mapped[str] = mapped_column(String(8))  # pass | fail
    next_due: Mapped[date] = mapped_column(Date)
    by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    note: Mapped[str] = mapped_column(Text, default="")
    void: Mapped[bool] = mapped_column(Boolean, default=False)
    void_reason: Mapped[str] = mapped_column(Text, default="")


class Sample(Base):
    __tablename__ = "coldchain_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    building: Mapped[str] = mapped_column(String(64), index=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    meal: Mapped[str] = mapped_column(String(32))
    dish: Mapped[str] = mapped_column(String(128))
    weight_g: Mapped[float] = mapped_column(Float)
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime)
    person: Mapped[str] = mapped_column(String(64))
    fridge: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    removed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    removal_reason: Mapped[str] = mapped_column(Text, default="")
    void: Mapped[bool] = mapped_column(Boolean, default=False)
    void_reason: Mapped[str] = mapped_column(Text, default="")


class Menu(Base):
    """The dishes of one meal on one day in one canteen (else the site file's usual ones)."""

    __tablename__ = "coldchain_menus"
    __table_args__ = (UniqueConstraint("day", "meal", "building", name="uq_coldchain_menu"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    meal: Mapped[str] = mapped_column(String(32))
    building: Mapped[str] = mapped_column(String(64))
    dishes: Mapped[list[str]] = mapped_column(JSON)
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Finding(Base):
    """Something the record found that needs a person: a gap, a missing or early-removed
    sample, an action overdue, a calibration due. `key` makes each one once."""

    __tablename__ = "coldchain_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    building: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    detail: Mapped[str] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
