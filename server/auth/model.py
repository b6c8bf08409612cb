"""Users, their login sessions and the event stream's single-use tickets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, UtcDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(32))
    # Buildings this user is responsible for; empty = all (for roles scoped by kind).
    buildings: Mapped[list[str]] = mapped_column(JSON, default=list)
    email: Mapped[str | None] = mapped_column(String(256), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AuthSession(Base):
    """One login. The bearer token is never stored: `id` is its SHA-256, so a copy of the
    database lets no one in. Revoked (logout, password change, account disabled) or expired
    sessions authenticate nothing."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)  # address at login


class StreamTicket(Base):
    """A single-use, short-lived stand-in for a session on GET /api/stream, whose
    EventSource cannot send an Authorization header (a URL is logged; a ticket in it is
    worthless once used or a few seconds old). Stored as its SHA-256."""

    __tablename__ = "stream_tickets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
