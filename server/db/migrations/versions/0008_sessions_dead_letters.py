"""login sessions, stream tickets, uplink dead letters

Revision ID: 0008
Revises: 0007

Revocable sessions replace signed tokens (server/auth/sessions.py): a token is stored only
as its SHA-256. Dead letters keep what the uplink guard refused (server/ingest/).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.db.base import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
    )
    op.create_table(
        "stream_tickets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "session_id",
            sa.String(64),
            sa.ForeignKey("auth_sessions.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("received_at", UtcDateTime(), nullable=False, index=True),
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=True, index=True),
        sa.Column("reason", sa.String(32), nullable=False, index=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("whole", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("refused_items", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False, server_default=""),
        sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("stream_tickets")
    op.drop_table("auth_sessions")
