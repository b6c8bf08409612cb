"""Durable SQLite (WAL) queue between decoding and the sinks, with one cursor per sink.

A source message is acknowledged only after `append` returns, i.e. once its items are on
disk. Each sink reads from its own cursor, so a dead sink never blocks the others, and
catches up in order when it returns. Rows are deleted only when every sink has passed them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


class OutboxFull(RuntimeError):
    """The outbox holds its cap of undelivered items; new data is refused, nothing deleted."""


@dataclass(frozen=True, slots=True)
class Item:
    pos: int
    kind: str  # "r" reading, "e" event
    body: bytes  # wire-encoded (core.wire) JSON object


class Outbox:
    def __init__(self, path: Path, sinks: Sequence[str], *, max_pending: int = 1_000_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we acknowledge the source (power-cut safe).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS items (pos INTEGER PRIMARY KEY AUTOINCREMENT,"
            " kind TEXT NOT NULL, body BLOB NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, pos INTEGER NOT NULL)"
        )
        with self._lock:
            head = self._head_locked()
            for sink in sinks:
                # A new sink starts at what is still held, not at zero of a pruned history.
                self._db.execute(
                    "INSERT OR IGNORE INTO cursors (sink, pos) VALUES (?, ?)",
                    (sink, self._oldest_locked() - 1 if head else 0),
                )
            self._sinks = list(sinks)
            self._last = head

    def _head_locked(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='items'").fetchone()
        return int(row[0]) if row else 0

    def _oldest_locked(self) -> int:
        row = self._db.execute("SELECT MIN(pos) FROM items").fetchone()
        return int(row[0]) if row and row[0] is not None else self._head_locked() + 1

    def _min_cursor_locked(self) -> int:
        marks = ",".join("?" * len(self._sinks))
        row = self._db.execute(
            f"SELECT MIN(pos) FROM cursors WHERE sink IN ({marks})",
            self._sinks,
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else self._last

    def append(self, items: Iterable[tuple[str, bytes]]) -> tuple[int, int]:
        """Store items in one transaction; returns (first, last) positions. Raises OutboxFull."""
        batch = list(items)
        if not batch:
            return (0, 0)
        with self._lock:
            pending = self._last - self._min_cursor_locked()
            if pending + len(batch) > self.max_pending:
                raise OutboxFull(
                    f"outbox holds {pending} undelivered items; cap is {self.max_pending}"
                )
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO items (kind, body) VALUES (?, ?)", batch)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            first = self._last + 1
            self._last = self._head_locked()
            return first, self._last

    def read(self, sink: str, limit: int) -> list[Item]:
        with self._lock:
            (cursor,) = self._db.execute(
                "SELECT pos FROM cursors WHERE sink = ?", (sink,)
            ).fetchone()
            rows = self._db.execute(
                "SELECT pos, kind, body FROM items WHERE pos > ? ORDER BY pos LIMIT ?",
                (cursor, limit),
            ).fetchall()
        return [Item(int(p), str(k), bytes(b)) for p, k, b in rows]

    def commit(self, sink: str, pos: int) -> None:
        """The sink has durably taken everything up to `pos`."""
        with self._lock:
            self._db.execute("UPDATE cursors SET pos = MAX(pos, ?) WHERE sink = ?", (pos, sink))

    def prune(self) -> int:
        with self._lock:
            done = self._min_cursor_locked()
            cur = self._db.execute("DELETE FROM items WHERE pos <= ?", (done,))
            return cur.rowcount

    def pending(self, sink: str) -> int:
        with self._lock:
            (cursor,) = self._db.execute(
                "SELECT pos FROM cursors WHERE sink = ?", (sink,)
            ).fetchone()
            return self._last - int(cursor)

    @property
    def head(self) -> int:
        """Position of the newest item (no query: kept in memory by append)."""
        return self._last

    def fill_ratio(self) -> float:
        with self._lock:
            return (self._last - self._min_cursor_locked()) / self.max_pending

    def close(self) -> None:
        with self._lock:
            self._db.close()
