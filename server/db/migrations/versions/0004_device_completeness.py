"""device completeness: time of the last counted message and expected cadence

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("last_msg_ms", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("cadence_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("cadence_ms")
        batch.drop_column("last_msg_ms")
