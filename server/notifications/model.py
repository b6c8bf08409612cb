"""Every notification sent (or held back), one row per subject, channel and event: the
unique key is the deduplication, so a replay, a restart or a repeated event never sends
the same message twice. The log is also the notifier's memory across restarts: the hourly
budget is counted from it, and flapping is judged from its last "raised" row per channel
and device|rule (`flap_key`, `claimed_at`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime


class NotificationLog(Base):
    __tablename__ = "notification_log"
    __table_args__ = (
        UniqueConstraint("subject", "channel", "event", name="uq_notification"),
        Index("ix_notification_log_flap", "channel", "flap_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)  # "alert:12", "wo:5"
    channel: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))  # raised, resolved, escalated, reminder-1
    # When the row took (or, for a retry round, took again) a slot of the hourly budget.
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))  # pending, sent, failed, digest
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    # "device|rule" of an alert's messages (what a flapping alert repeats); None otherwise.
    flap_key: Mapped[str | None] = mapped_column(String(160), nullable=True)
    # When the row was claimed; unlike `at`, a retry never moves it (the flap window counts
    # from the raise, not from its redelivery).
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
