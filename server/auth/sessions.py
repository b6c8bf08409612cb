"""Login sessions and stream tickets: opaque random tokens, stored only as their SHA-256.

A request is authenticated by looking its token's digest up: a revoked or expired session,
or a disabled user, authenticates nothing from that moment on (no signed token outlives a
logout). Times are wall-clock UTC, even where rules run on a simulated clock.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.orm import Session

from server.auth.model import AuthSession, StreamTicket, User

# Recognisable in logs and by secret scanners; the rest is 256 random bits.
TOKEN_PREFIX = "cfm_"
TICKET_PREFIX = "cfmt_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Login:
    """An authenticated request: the user and the session that proved it."""

    user: User
    session_id: str


def open_session(
    s: Session, user: User, *, now: datetime, ttl: timedelta, client: str | None
) -> str:
    """A new session for `user`; returns the bearer token (shown once, never stored)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    s.add(
        AuthSession(
            id=digest(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + ttl,
            client=(client or "")[:64] or None,
        )
    )
    return token


def _valid(session_id: str, now: datetime) -> object:
    return (
        (AuthSession.id == session_id)
        & AuthSession.revoked_at.is_(None)
        & (AuthSession.expires_at > now)
    )


def login_for(s: Session, token: str, now: datetime) -> Login | None:
    """The login `token` proves now, or None (unknown, revoked, expired, user disabled)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    return session_login(s, digest(token), now)


def session_login(s: Session, session_id: str, now: datetime) -> Login | None:
    row = s.execute(
        select(User, AuthSession.id)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(_valid(session_id, now), User.active.is_(True))  # type: ignore[arg-type]
    ).first()
    return None if row is None else Login(row[0], row[1])


def revoke(s: Session, session_id: str, now: datetime) -> None:
    s.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    s.execute(delete(StreamTicket).where(StreamTicket.session_id == session_id))


def revoke_user(s: Session, user_id: int, now: datetime, *, keep: str | None = None) -> list[str]:
    """End every live session of a user (but `keep`); returns the ids it ended."""
    live = select(AuthSession.id).where(
        AuthSession.user_id == user_id,
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > now,
    )
    if keep is not None:
        live = live.where(AuthSession.id != keep)
    ids = list(s.scalars(live))
    if ids:
        s.execute(update(AuthSession).where(AuthSession.id.in_(ids)).values(revoked_at=now))
        s.execute(delete(StreamTicket).where(StreamTicket.session_id.in_(ids)))
    return ids


def issue_ticket(s: Session, session_id: str, *, now: datetime, ttl: timedelta) -> str:
    ticket = TICKET_PREFIX + secrets.token_urlsafe(24)
    s.add(StreamTicket(id=digest(ticket), session_id=session_id, expires_at=now + ttl))
    return ticket


def redeem_ticket(s: Session, ticket: str, now: datetime) -> Login | None:
    """The login behind a ticket, which is used up by this call (second use: None)."""
    if not ticket.startswith(TICKET_PREFIX) or len(ticket) > 128:
        return None
    row = s.scalars(select(StreamTicket).where(StreamTicket.id == digest(ticket))).first()
    if row is None:
        return None
    # Deleted whatever happens next; rowcount says whether this call was the one to use it
    # (two requests racing with one ticket: one wins).
    result = s.execute(delete(StreamTicket).where(StreamTicket.id == row.id))
    used = cast(CursorResult[Any], result).rowcount
    s.commit()
    if not used or row.expires_at <= now:
        return None
    return session_login(s, row.session_id, now)


def purge(s: Session, now: datetime) -> None:
    """Drop expired tickets, and sessions that ended more than a day ago."""
    s.execute(delete(StreamTicket).where(StreamTicket.expires_at <= now))
    old = now - timedelta(days=1)
    s.execute(
        delete(AuthSession).where(or_(AuthSession.expires_at <= old, AuthSession.revoked_at <= old))
    )
