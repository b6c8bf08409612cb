"""Persisted rule state per device and rule, so delays survive a server restart."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import JSON, String, Table, event, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.db.base import Base
from server.db.bulk import among, update_many


class RuleStateRow(Base):
    __tablename__ = "rule_state"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


_TABLE = cast(Table, RuleStateRow.__table__)


class RuleStates:
    """The rule states of one transaction: read once per device as plain rows (one query for
    all of a batch's devices), changed in memory, and written back in two statements (one
    UPDATE and one INSERT, each for every changed row at once) by `write`, which also runs
    when the session commits."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[str, dict[str, dict[str, Any]]] = {}
        self._stored: set[tuple[str, str]] = set()  # (device, rule) rows in the table
        self._dirty: dict[tuple[str, str], dict[str, Any]] = {}
        self._all = False
        event.listen(session, "before_commit", self._before_commit)

    def _before_commit(self, _session: Session) -> None:
        self.write()

    def _device(self, device_id: str) -> dict[str, dict[str, Any]]:
        rows = self._rows.get(device_id)
        if rows is None:
            self.load_devices([device_id])
            rows = self._rows[device_id]
        return rows

    def load_devices(self, device_ids: Collection[str]) -> None:
        """These devices' rows in one query (an uplink batch names its devices up front)."""
        wanted = [d for d in device_ids if d not in self._rows]
        for d in wanted:
            self._rows[d] = {}
        if self._all:
            return
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            q = select(_TABLE.c.device_id, _TABLE.c.rule, _TABLE.c.state)
            q = q.where(among(self.session, _TABLE.c.device_id, chunk))
            self._take(self.session.execute(q))

    def load_all(self) -> None:
        """Every device's rows in one query (the clock visits every device)."""
        self._take(self.session.execute(select(_TABLE.c.device_id, _TABLE.c.rule, _TABLE.c.state)))
        self._all = True

    def _take(self, rows: Any) -> None:
        for device_id, rule, state in rows:
            if (device_id, rule) not in self._dirty:
                self._rows.setdefault(device_id, {})[rule] = state
            self._stored.add((device_id, rule))

    def get(self, device_id: str, rule: str) -> dict[str, Any]:
        return self._device(device_id).get(rule) or {}

    def put(self, device_id: str, rule: str, state: dict[str, Any]) -> None:
        self._device(device_id)[rule] = state
        self._dirty[(device_id, rule)] = state

    def pending(self) -> int:
        """How many changed rows wait for `write`."""
        return len(self._dirty)

    def write(self) -> None:
        """The changed rows to the database (nothing when nothing changed)."""
        if not self._dirty:
            return
        changed = self._dirty
        self._dirty = {}
        conn = self.session.connection()
        old = [
            {"device_id": d, "rule": r, "state": st}
            for (d, r), st in changed.items()
            if (d, r) in self._stored
        ]
        new = [
            {"device_id": d, "rule": r, "state": st}
            for (d, r), st in changed.items()
            if (d, r) not in self._stored
        ]
        update_many(conn, _TABLE, ("device_id", "rule"), old)
        if new:
            conn.execute(insert(_TABLE), new)
            self._stored.update(k for k in changed if k not in self._stored)
