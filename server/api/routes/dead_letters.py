"""GET /api/dead-letters: uplink messages the server refused, newest first (admins)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from server.api.deps import PageDep, SessionDep
from server.ingest.dead_letters import DeadLetter

router = APIRouter(prefix="/api/dead-letters", tags=["uplink"])


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    received_at: datetime
    topic: str
    gateway_id: str | None
    reason: str
    detail: str
    whole: bool  # the whole message was refused (else some of its items)
    refused_items: int
    size: int
    sha256: str
    payload: str  # as received, up to 64 KiB
    truncated: bool


@router.get("")
def list_dead_letters(
    session: SessionDep,
    page: PageDep,
    reason: str | None = Query(default=None, max_length=32),
    gateway_id: str | None = Query(default=None, max_length=64),
) -> list[DeadLetterOut]:
    q = select(DeadLetter).order_by(DeadLetter.id.desc())
    if reason:
        q = q.where(DeadLetter.reason == reason)
    if gateway_id:
        q = q.where(DeadLetter.gateway_id == gateway_id)
    rows = session.scalars(q.limit(page.limit).offset(page.offset))
    return [DeadLetterOut.model_validate(r) for r in rows]
