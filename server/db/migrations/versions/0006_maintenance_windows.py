"""maintenance windows as their own table; work orders keep their device's class

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from server.db.base import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CONTEXT_ROW = "_context"  # where declared maintenance lived before, in rule_state


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False, index=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False, server_default=""),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(64), nullable=True),
    )
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("device_class", sa.String(32), nullable=True))
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE work_orders SET device_class = (SELECT devices.device_class FROM devices "
            "WHERE devices.id = work_orders.device_id) WHERE device_id IS NOT NULL"
        )
    )
    # Declared maintenance moves out of the reserved rule-state row; so do event marks,
    # which threshold rules now keep in their own state (a defrost seen again re-marks).
    rows = conn.execute(
        sa.text("SELECT device_id, state FROM rule_state WHERE rule = :r"), {"r": CONTEXT_ROW}
    ).all()
    table = sa.table(
        "maintenance_windows",
        sa.column("device_id", sa.String),
        sa.column("starts_at", UtcDateTime()),
        sa.column("ends_at", UtcDateTime()),
        sa.column("declared_by", sa.String),
        sa.column("comment", sa.Text),
    )
    now = datetime.now(UTC)
    for device_id, state in rows:
        data = _json(state)
        until = data.get("maintenance_until")
        if isinstance(until, str) and until:
            ends = datetime.fromisoformat(until)
            if ends > now:
                conn.execute(
                    table.insert().values(
                        device_id=device_id,
                        starts_at=now,
                        ends_at=ends,
                        declared_by=str(data.get("maintenance_by") or "unknown"),
                        comment=str(data.get("maintenance_comment") or ""),
                    )
                )
    conn.execute(sa.text("DELETE FROM rule_state WHERE rule = :r"), {"r": CONTEXT_ROW})


def _json(state: object) -> dict[str, object]:
    if isinstance(state, dict):
        return state
    if isinstance(state, str | bytes):
        loaded = json.loads(state)
        return loaded if isinstance(loaded, dict) else {}
    return {}


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("device_class")
    op.drop_table("maintenance_windows")
