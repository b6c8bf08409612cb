"""patrol scans, judged rounds and route state; work orders told past their deadline

Revision ID: 0009
Revises: 0008

Patrol rounds (巡查, server/patrols/): scans are append-only (a reader's event id keeps a
redelivered scan from counting twice), rounds are judged once at their end (unique per
route and start). Work orders record when they were told past their repair deadline, so
they are told once (server/work_orders/overdue.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from server.db.base import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_scans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=True),
        sa.Column("building", sa.String(64), nullable=False),
        sa.Column("checkpoint", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("by", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_patrol_scans_event"),
    )
    op.create_index("ix_patrol_scans_building", "patrol_scans", ["building"])
    op.create_index("ix_patrol_scans_at", "patrol_scans", ["at"])
    op.create_table(
        "patrol_rounds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("building", sa.String(64), nullable=False),
        sa.Column("night", sa.Date(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("starts_at", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("scanned", sa.JSON(), nullable=False),
        sa.Column("missing", sa.JSON(), nullable=False),
        sa.Column("out_of_order", sa.Boolean(), nullable=False),
        sa.Column("judged_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("route", "starts_at", name="uq_patrol_rounds_start"),
    )
    op.create_index("ix_patrol_rounds_building", "patrol_rounds", ["building"])
    op.create_index("ix_patrol_rounds_night", "patrol_rounds", ["night"])
    op.create_table(
        "patrol_route_state",
        sa.Column("route", sa.String(64), primary_key=True),
        sa.Column("judged_until", UtcDateTime(), nullable=False),
    )
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("overdue_notified_at", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("overdue_notified_at")
    op.drop_table("patrol_route_state")
    op.drop_index("ix_patrol_rounds_night", table_name="patrol_rounds")
    op.drop_index("ix_patrol_rounds_building", table_name="patrol_rounds")
    op.drop_table("patrol_rounds")
    op.drop_index("ix_patrol_scans_at", table_name="patrol_scans")
    op.drop_index("ix_patrol_scans_building", table_name="patrol_scans")
    op.drop_table("patrol_scans")
