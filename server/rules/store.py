"""Persisted rule state per device and rule, so delays survive a server restart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.db.base import Base


class RuleStateRow(Base):
    __tablename__ = "rule_state"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def forget_active(session: Session, device_id: str, rule: str) -> None:
    """A person resolved the alert: a condition that persists must raise a new one."""
    row = session.get(RuleStateRow, (device_id, rule))
    if row is not None and row.state.get("active"):
        row.state = {
            k: v
            for k, v in row.state.items()
            if k not in ("active", "pending_since", "clear_since", "peak")
        }
