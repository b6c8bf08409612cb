"""notification flap state: device|rule key and claim time of each notification

Flap detection reads the last "raised" row per channel and key from the log, so it
survives a restart like the hourly budget. Rows written before this revision get their key
from their alert and their claim time from `at`.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification_log") as batch:
        batch.add_column(sa.Column("flap_key", sa.String(length=160), nullable=True))
        batch.add_column(
            sa.Column("claimed_at", server.db.base.UtcDateTime(timezone=True), nullable=True)
        )
    # `||` concatenates on SQLite and PostgreSQL alike (PostgreSQL casts the integer id).
    op.execute(
        "UPDATE notification_log SET claimed_at = at, flap_key = ("
        " SELECT alerts.device_id || '|' || alerts.rule FROM alerts"
        " WHERE 'alert:' || alerts.id = notification_log.subject)"
    )
    with op.batch_alter_table("notification_log") as batch:
        batch.alter_column(
            "claimed_at",
            existing_type=server.db.base.UtcDateTime(timezone=True),
            nullable=False,
        )
        batch.create_index("ix_notification_log_flap", ["channel", "flap_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notification_log") as batch:
        batch.drop_index("ix_notification_log_flap")
        batch.drop_column("claimed_at")
        batch.drop_column("flap_key")
