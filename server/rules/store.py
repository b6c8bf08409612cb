"""Persisted rule state per device and rule, so delays survive a server restart."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import JSON, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.db.base import Base


class RuleStateRow(Base):
    __tablename__ = "rule_state"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RuleStates:
    """The rule state rows of one transaction, loaded once per device."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[str, dict[str, RuleStateRow]] = {}
        self._all = False

    def _device(self, device_id: str) -> dict[str, RuleStateRow]:
        rows = self._rows.get(device_id)
        if rows is None and self._all:
            rows = self._rows[device_id] = {}
        if rows is None:
            found = self.session.scalars(
                select(RuleStateRow).where(RuleStateRow.device_id == device_id)
            )
            rows = self._rows[device_id] = {r.rule: r for r in found}
        return rows

    def load_devices(self, device_ids: Collection[str]) -> None:
        """These devices' rows in one query (an uplink batch names its devices up front)."""
        wanted = [d for d in device_ids if d not in self._rows]
        for d in wanted:
            self._rows[d] = {}
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            for row in self.session.scalars(
                select(RuleStateRow).where(RuleStateRow.device_id.in_(chunk))
            ):
                self._rows[row.device_id][row.rule] = row

    def load_all(self) -> None:
        """Every device's rows in one query (the clock visits every device)."""
        for row in self.session.scalars(select(RuleStateRow)):
            self._rows.setdefault(row.device_id, {})[row.rule] = row
        self._all = True

    def get(self, device_id: str, rule: str) -> dict[str, Any]:
        row = self._device(device_id).get(rule)
        return row.state if row is not None else {}

    def put(self, device_id: str, rule: str, state: dict[str, Any]) -> None:
        rows = self._device(device_id)
        row = rows.get(rule)
        if row is None:
            row = rows[rule] = RuleStateRow(device_id=device_id, rule=rule, state=state)
            self.session.add(row)
        else:
            row.state = state
