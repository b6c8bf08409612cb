"""late returns after curfew

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "late_returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=64), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("at", server.db.base.UtcDateTime(timezone=True), nullable=False),
        sa.Column("card", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", name="uq_late_returns_event"),
    )
    op.create_index(op.f("ix_late_returns_building"), "late_returns", ["building"])
    op.create_index(op.f("ix_late_returns_night"), "late_returns", ["night"])


def downgrade() -> None:
    op.drop_index(op.f("ix_late_returns_night"), table_name="late_returns")
    op.drop_index(op.f("ix_late_returns_building"), table_name="late_returns")
    op.drop_table("late_returns")
