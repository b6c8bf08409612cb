"""Durable SQLite (WAL) queue between decoding and the sinks, with one cursor per sink.

A source message is acknowledged only after `append` returns, i.e. once its items are on
disk. Each sink reads from its own cursor, so a dead sink never blocks the others, and
catches up in order when it returns. Rows are deleted only when every sink has passed them.

Items (wire-encoded readings and events, core/wire.py) are numbered 1, 2, 3, ... for good
and stored in chunks: one row holds up to CHUNK_ITEMS items of one append, so an ingest
batch of thousands of readings costs one transaction and one fsync, not one per reading.
Positions, cursors, the cap and `pending` all count items, not rows.

A chunk's body is its readings as one JSON array, a newline, its events as another (JSON
text holds no raw newline). The uplink splices those arrays into its message unparsed;
only sinks that need the values parse them. Bodies of the first chunk format (one JSON
object {"r": [...], "e": [...]}) are still read.

Appends commit with synchronous=FULL: the broker is acknowledged after this returns. Cursor
moves and pruning commit with NORMAL (no fsync of their own; the next append's makes them
durable): a cursor lost to a power cut only sends a batch again, and every sink is
idempotent. Sinks read through a connection of their own, so an append's fsync does not
hold them up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import orjson

from core.wire import WireEvent, WireReading

CHUNK_ITEMS = 2000


class OutboxFull(RuntimeError):
    """The outbox holds its cap of undelivered items; new data is refused, nothing deleted."""


class Batch:
    """Items `first`..`last` (positions) for one sink: chunk bodies, parsed on first use."""

    __slots__ = ("_events", "_parts", "_readings", "first", "last")

    def __init__(self, first: int, last: int, parts: list[tuple[bytes, bytes]]) -> None:
        self.first = first
        self.last = last
        self._parts = parts  # (readings array, events array) per chunk, JSON
        self._readings: list[WireReading] | None = None
        self._events: list[WireEvent] | None = None

    def __len__(self) -> int:
        return self.last - self.first + 1

    @property
    def readings(self) -> list[WireReading]:
        if self._readings is None:
            self._readings = []
            for r, _e in self._parts:
                if r != b"[]":
                    self._readings += orjson.loads(r)
        return self._readings

    @property
    def events(self) -> list[WireEvent]:
        if self._events is None:
            self._events = []
            for _r, e in self._parts:
                if e != b"[]":
                    self._events += orjson.loads(e)
        return self._events

    def readings_json(self) -> bytes:
        """The readings as one JSON array, spliced from the chunks without parsing."""
        return _join_arrays([r for r, _e in self._parts])

    def events_json(self) -> bytes:
        return _join_arrays([e for _r, e in self._parts])


def _join_arrays(arrays: list[bytes]) -> bytes:
    inner = [a[1:-1] for a in arrays if a != b"[]"]
    return b"[" + b",".join(inner) + b"]"


def _split_body(body: bytes) -> tuple[bytes, bytes]:
    """(readings array, events array) of a chunk body in either format."""
    if body[:1] == b"{":  # first format: {"r": [...], "e": [...]}
        chunk = orjson.loads(body)
        return orjson.dumps(chunk["r"]), orjson.dumps(chunk["e"])
    r, _, e = body.partition(b"\n")
    return r, e


def _body(readings: bytes, events: bytes) -> bytes:
    return readings + b"\n" + events


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
        # `upto` is the position of the chunk's last item; it holds items upto-n+1 .. upto.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS chunks (upto INTEGER PRIMARY KEY,"
            " n INTEGER NOT NULL, body BLOB NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, pos INTEGER NOT NULL)"
        )
        with self._lock:
            self._migrate_items_locked()
            self._last = self._head_locked()
            oldest = self._oldest_locked()
            for sink in sinks:
                # A new sink starts at what is still held, not at zero of a pruned history.
                self._db.execute(
                    "INSERT OR IGNORE INTO cursors (sink, pos) VALUES (?, ?)", (sink, oldest - 1)
                )
            self._sinks = list(sinks)
            # Only this process moves the cursors: they are kept here, and written through.
            self._cursors: dict[str, int] = {
                name: int(pos)
                for name, pos in self._db.execute("SELECT sink, pos FROM cursors")
                if name in self._sinks
            }
            self._min_cursor = min(self._cursors.values(), default=self._last)
        self._rlock = threading.Lock()
        self._rdb = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)

    def _migrate_items_locked(self) -> None:
        """Outboxes written before chunks held one row per item: keep them, as 1-item chunks."""
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'items'"
        ).fetchone()
        if not found:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for pos, kind, body in self._db.execute("SELECT pos, kind, body FROM items"):
                wrapped = (
                    _body(b"[" + body + b"]", b"[]")
                    if kind == "r"
                    else _body(b"[]", b"[" + body + b"]")
                )
                self._db.execute("INSERT INTO chunks VALUES (?, 1, ?)", (pos, wrapped))
            head = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='items'").fetchone()
            if head and not self._db.execute("SELECT 1 FROM chunks").fetchone():
                # Everything was delivered: keep the numbering going past it.
                self._db.execute("UPDATE cursors SET pos = MAX(pos, ?)", (int(head[0]),))
            self._db.execute("DROP TABLE items")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _head_locked(self) -> int:
        # Pruning may empty the table; the cursors then remember how far numbering went.
        (upto,) = self._db.execute("SELECT MAX(upto) FROM chunks").fetchone()
        (cur,) = self._db.execute("SELECT MAX(pos) FROM cursors").fetchone()
        return max(int(upto or 0), int(cur or 0))

    def _oldest_locked(self) -> int:
        row = self._db.execute("SELECT upto - n + 1 FROM chunks ORDER BY upto LIMIT 1").fetchone()
        return int(row[0]) if row else self._last + 1

    # -- writing -------------------------------------------------------------------------
    def append_wire(self, readings: list[WireReading], events: list[WireEvent]) -> tuple[int, int]:
        """Store wire-encoded items in one transaction; returns their (first, last)
        positions, or (0, 0) for nothing. Raises OutboxFull at the cap, storing nothing."""
        n = len(readings) + len(events)
        if not n:
            return (0, 0)
        bodies: list[tuple[int, bytes]] = []
        for k in range(0, len(readings), CHUNK_ITEMS):
            part = readings[k : k + CHUNK_ITEMS]
            bodies.append((len(part), _body(orjson.dumps(part), b"[]")))
        for k in range(0, len(events), CHUNK_ITEMS):
            events_part = events[k : k + CHUNK_ITEMS]
            bodies.append((len(events_part), _body(b"[]", orjson.dumps(events_part))))
        return self._store(n, bodies)

    def _store(self, n: int, bodies: list[tuple[int, bytes]]) -> tuple[int, int]:
        with self._lock:
            pending = self._last - self._min_cursor
            if pending + n > self.max_pending:
                raise OutboxFull(
                    f"outbox holds {pending} undelivered items; cap is {self.max_pending}"
                )
            rows = []
            upto = self._last
            for count, body in bodies:
                upto += count
                rows.append((upto, count, body))
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO chunks (upto, n, body) VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            first, self._last = self._last + 1, upto
            return first, upto

    # -- reading -------------------------------------------------------------------------
    def read(self, sink: str, limit: int) -> Batch | None:
        """The next items after the sink's cursor: whole chunks, at least one, until about
        `limit` items; None when the sink is up to date."""
        cursor = self._cursors[sink]
        if cursor >= self._last:
            return None
        rows = []
        taken = 0
        with self._rlock:
            found = self._rdb.execute(
                "SELECT upto, n, body FROM chunks WHERE upto > ? ORDER BY upto", (cursor,)
            )
            for upto, n, body in found:
                rows.append((int(upto), int(n), bytes(body)))
                taken += n
                if taken >= limit:
                    break
            found.close()  # ends the read transaction now, so checkpoints are not held up
        if not rows:
            return None
        parts: list[tuple[bytes, bytes]] = []
        for upto, n, body in rows:
            r, e = _split_body(body)
            skip = cursor - (upto - n)  # > 0 only if the cursor stopped inside this chunk
            if skip > 0:
                r_items, e_items = orjson.loads(r), orjson.loads(e)
                e_items = e_items[max(0, skip - len(r_items)) :]
                r_items = r_items[skip:]
                r, e = orjson.dumps(r_items), orjson.dumps(e_items)
            parts.append((r, e))
        return Batch(max(cursor + 1, rows[0][0] - rows[0][1] + 1), rows[-1][0], parts)

    def commit(self, sink: str, pos: int) -> None:
        """The sink has taken everything up to `pos`."""
        with self._lock:
            if pos <= self._cursors[sink]:
                return
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("UPDATE cursors SET pos = ? WHERE sink = ?", (pos, sink))
            self._cursors[sink] = pos
            self._min_cursor = min(self._cursors.values())

    def prune(self) -> int:
        """Delete the chunks every sink has passed; returns how many rows went."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            cur = self._db.execute("DELETE FROM chunks WHERE upto <= ?", (self._min_cursor,))
            return cur.rowcount

    def pending(self, sink: str) -> int:
        return self._last - self._cursors[sink]

    @property
    def head(self) -> int:
        """Position of the newest item (no query: kept in memory by append)."""
        return self._last

    def fill_ratio(self) -> float:
        return (self._last - self._min_cursor) / self.max_pending

    def close(self) -> None:
        with self._rlock:
            self._rdb.close()
        with self._lock:
            self._db.close()
