"""Live device state: latest value per metric, last seen, gateway, data completeness."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_class: Mapped[str] = mapped_column(String(32))
    profile: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(64), index=True)
    location: Mapped[str] = mapped_column(String(256))
    room: Mapped[str | None] = mapped_column(String(64), nullable=True)
    gateway_id: Mapped[str] = mapped_column(String(64))
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    # {metric: {"v": value, "t": epoch ms, "u": unit}}
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received: Mapped[int] = mapped_column(BigInteger, default=0)  # device messages seen
    first_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    seq_gaps: Mapped[int] = mapped_column(Integer, default=0)  # messages missed
    # Time (epoch ms) of the newest message counted, and the expected interval between
    # messages (learned from seq numbers, or the poll interval): server/ingest/completeness.py
    last_msg_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cadence_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Gateway(Base):
    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="unknown")
    changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_batch: Mapped[int] = mapped_column(BigInteger, default=0)
