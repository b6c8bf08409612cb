"""The audit hash chain's tables: one row per appended entry, one signed head per day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime


class AuditEntry(Base):
    """Entry `seq` commits to entry `seq - 1` through `prev_hash`; `seq` is unique, so two
    writers appending at once cannot fork the chain (the second one retries)."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # excursion, action, daily, signoff, ...
    op: Mapped[str] = mapped_column(String(16))  # create, update, correction, void
    ref: Mapped[str] = mapped_column(String(64), index=True)  # "excursion:12"
    actor: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # the record's canonical JSON
    content_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditDayHead(Base):
    """The chain's head at the end of a site-local day, signed with the site's Ed25519 key."""

    __tablename__ = "audit_day_heads"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)  # 0: the chain was still empty
    entry_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    key_id: Mapped[str] = mapped_column(String(64))  # fingerprint of the public key
    public_key: Mapped[str] = mapped_column(String(128))  # raw Ed25519, base64
    signature: Mapped[str] = mapped_column(String(128))  # base64
