"""Dead letters: uplink messages (or parts of them) the server refused, kept for an admin
to read (GET /api/dead-letters): when, on which topic, why, and the message itself up to
64 KiB (a bigger one by its size, hash and first bytes). The table keeps the newest
`max_rows`; a flood of bad messages cannot fill the disk."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Integer, String, Text, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.db.base import Base, UtcDateTime
from server.ingest.uplink_check import Verdict

KEEP_PAYLOAD_BYTES = 65_536


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    topic: Mapped[str] = mapped_column(String(256))
    gateway_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    whole: Mapped[bool] = mapped_column(default=True)  # the whole message, or some items
    refused_items: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="")  # up to KEEP_PAYLOAD_BYTES
    truncated: Mapped[bool] = mapped_column(default=False)


def record(
    s: Session,
    *,
    topic: str,
    payload: bytes,
    verdict: Verdict,
    at: datetime,
    max_rows: int,
    reason: str | None = None,
    detail: str | None = None,
) -> DeadLetter:
    details = (
        detail
        if detail is not None
        else "; ".join(f"{r.reason}: {r.detail}" for r in verdict.refusals)
    )
    if verdict.refused_items > len(verdict.refusals):
        details += f" (+{verdict.refused_items - len(verdict.refusals)} more items)"
    row = DeadLetter(
        received_at=at,
        topic=topic[:256],
        gateway_id=verdict.gateway_id,
        reason=(reason or verdict.reason or "refused")[:32],
        detail=details[:4000],
        whole=verdict.whole,
        refused_items=verdict.refused_items,
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        payload=payload[:KEEP_PAYLOAD_BYTES].decode("utf-8", errors="replace"),
        truncated=len(payload) > KEEP_PAYLOAD_BYTES,
    )
    s.add(row)
    s.flush()
    if row.id % 100 == 0:  # now and then, drop what is beyond the cap
        newest = s.scalar(select(func.max(DeadLetter.id))) or 0
        s.execute(delete(DeadLetter).where(DeadLetter.id <= newest - max_rows))
    return row
