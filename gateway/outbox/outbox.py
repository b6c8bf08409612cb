"""Durable SQLite (WAL) queue between decoding and the sinks, with one cursor per sink.

A source message is acknowledged only after `append` returns, i.e. once its items are on
disk. Each sink reads from its own cursor, so a dead sink never blocks the others, and
catches up in order when it returns. Rows are deleted only when every sink has passed them.

Items (wire-encoded readings and events, core/wire.py) are numbered 1, 2, 3, ... for good
and stored in chunks: one row holds up to CHUNK_ITEMS items of one append, so an ingest
batch of thousands of readings costs one transaction and one fsync, not one per reading.
Positions, cursors, the cap and `pending` all count items, not rows.

A chunk's body is its readings as one JSON array, a newline, its events as another (JSON
text holds no raw newline), and, when the gateway writes InfluxDB, a newline and the same
items as line protocol, rendered while the decoder's dicts were in hand. The uplink splices
the arrays into its message unparsed; the InfluxDB sink sends the lines as they are; only
sinks that need the values (SQL) parse them. Bodies of the first chunk format (one JSON
object {"r": [...], "e": [...]}) are still read.

Appends commit with synchronous=FULL: the broker is acknowledged after this returns. Cursor
moves and pruning commit with NORMAL (no fsync of their own; the next append's makes them
durable): a cursor lost to a power cut only sends a batch again, and every sink is
idempotent. Sinks read through a connection of their own, so an append's fsync does not
hold them up.

Two processes share the file (WAL lets one write while others read): the gateway appends,
and its sink process (gateway/sinks/worker.py) reads from its cursor and moves it. So the
cursors live in the database only, never cached in memory, and one process at a time may
append: the writer holds `<outbox>.lock` (flock) while it has the file open.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # types only: the sink process imports this module, and not pydantic
    from core.wire import WireEvent, WireReading

CHUNK_ITEMS = 2000
# How long a write waits for the other process's (a cursor move, an append's fsync).
BUSY_TIMEOUT_S = 30.0
# How long a new writer waits for the previous one (a gateway still stopping) to let go.
WRITER_WAIT_S = 30.0
# Page cache per connection, KiB: chunks are written once and read once, in order, so a
# cache saves little, and four connections (two per process) at SQLite's default 2 MiB
# would be a tenth of the gateway's memory.
CACHE_KIB = 256


class OutboxFull(RuntimeError):
    """The outbox holds its cap of undelivered items; new data is refused, nothing deleted."""


class OutboxBusy(RuntimeError):
    """Another process holds the outbox for writing (a second gateway on one data folder)."""


class Batch:
    """Items `first`..`last` (positions) for one sink: chunk bodies, parsed on first use."""

    __slots__ = ("_events", "_parts", "_readings", "first", "last")

    def __init__(self, first: int, last: int, parts: list[Part]) -> None:
        self.first = first
        self.last = last
        self._parts = parts
        self._readings: list[WireReading] | None = None
        self._events: list[WireEvent] | None = None

    def __len__(self) -> int:
        return self.last - self.first + 1

    @property
    def readings(self) -> list[WireReading]:
        if self._readings is None:
            self._readings = []
            for r, _e, _l in self._parts:
                if r != b"[]":
                    self._readings += orjson.loads(r)
        return self._readings

    @property
    def events(self) -> list[WireEvent]:
        if self._events is None:
            self._events = []
            for _r, e, _l in self._parts:
                if e != b"[]":
                    self._events += orjson.loads(e)
        return self._events

    def readings_json(self) -> bytes:
        """The readings as one JSON array, spliced from the chunks without parsing."""
        return _join_arrays([r for r, _e, _l in self._parts])

    def events_json(self) -> bytes:
        return _join_arrays([e for _r, e, _l in self._parts])

    def lines(self) -> bytes | None:
        """All items as line protocol, as stored; None if a chunk has none (written by a
        gateway without InfluxDB, or by an older one): the sink renders them then."""
        texts = [lines for _r, _e, lines in self._parts]
        if any(t is None for t in texts):
            return None
        return b"\n".join([t for t in texts if t])


# A chunk's readings array, events array and line protocol (None: not stored), as bytes.
Part = tuple[bytes, bytes, bytes | None]


def _join_arrays(arrays: list[bytes]) -> bytes:
    inner = [a[1:-1] for a in arrays if a != b"[]"]
    return b"[" + b",".join(inner) + b"]"


def _split_body(body: bytes) -> Part:
    """The parts of a chunk body in any of its formats."""
    if body[:1] == b"{":  # first format: {"r": [...], "e": [...]}
        chunk = orjson.loads(body)
        return orjson.dumps(chunk["r"]), orjson.dumps(chunk["e"]), None
    r, _, rest = body.partition(b"\n")
    e, stored, lines = rest.partition(b"\n")  # lines are the rest, newlines and all
    return r, e, lines if stored else None


def _body(readings: bytes, events: bytes, lines: bytes | None = None) -> bytes:
    if lines is None:
        return readings + b"\n" + events
    return readings + b"\n" + events + b"\n" + lines


# Items encoded for one append: how many, and (item count, body) of each chunk.
Chunks = tuple[int, list[tuple[int, bytes]]]
# Line protocol of wire items (gateway.sinks.line_protocol.LineProtocol.render).
Render = Callable[["list[WireReading]", "list[WireEvent]"], bytes]


def encode_chunks(
    readings: list[WireReading], events: list[WireEvent], render: Render | None = None
) -> Chunks:
    """Chunk bodies of wire items, ready for `Outbox.append_encoded`: no I/O, no lock.
    `render`: also store the items as line protocol (the InfluxDB sink's form)."""
    bodies: list[tuple[int, bytes]] = []
    for k in range(0, len(readings), CHUNK_ITEMS):
        part = readings[k : k + CHUNK_ITEMS]
        lines = render(part, []) if render is not None else None
        bodies.append((len(part), _body(orjson.dumps(part), b"[]", lines)))
    for k in range(0, len(events), CHUNK_ITEMS):
        events_part = events[k : k + CHUNK_ITEMS]
        lines = render([], events_part) if render is not None else None
        bodies.append((len(events_part), _body(b"[]", orjson.dumps(events_part), lines)))
    return len(readings) + len(events), bodies


class Outbox:
    """`writer`: this process appends (the gateway); False for a process that only reads
    and moves cursors (the sink process), which may open it while the gateway has it."""

    def __init__(
        self,
        path: Path,
        sinks: Sequence[str],
        *,
        max_pending: int = 1_000_000,
        writer: bool = True,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_pending = max_pending
        self.writer = writer
        self._lock_fd = _hold_writer_lock(path) if writer else None
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
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
        self._sinks = list(sinks)
        marks = ", ".join("?" * len(self._sinks))
        # The slowest configured sink's cursor (cursors of sinks no longer configured are
        # kept, and ignored). NULL when no sink is configured.
        self._min_sql = f"SELECT MIN(pos) FROM cursors WHERE sink IN ({marks})"
        with self._lock:
            if writer:
                self._migrate_items_locked()
            self._last = self._head_locked()
            oldest = self._oldest_locked()
            for sink in sinks:
                # A new sink starts at what is still held, not at zero of a pruned history.
                self._db.execute(
                    "INSERT OR IGNORE INTO cursors (sink, pos) VALUES (?, ?)", (sink, oldest - 1)
                )
        self._rlock = threading.Lock()
        self._rdb = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
        )
        self._rdb.execute(f"PRAGMA cache_size=-{CACHE_KIB}")

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

    def _min_cursor(self, db: sqlite3.Connection) -> int:
        (low,) = db.execute(self._min_sql, self._sinks).fetchone()
        return int(low) if low is not None else self._head(db)

    def _head(self, db: sqlite3.Connection) -> int:
        """The newest position: the writer keeps it; another process asks the file."""
        if self.writer:
            return self._last
        (upto,) = db.execute("SELECT MAX(upto) FROM chunks").fetchone()
        (cur,) = db.execute("SELECT MAX(pos) FROM cursors").fetchone()
        return max(int(upto or 0), int(cur or 0))

    def cursor(self, sink: str) -> int:
        """Position of the last item `sink` has taken."""
        with self._rlock:
            row = self._rdb.execute("SELECT pos FROM cursors WHERE sink = ?", (sink,)).fetchone()
        if row is None:
            raise KeyError(f"outbox has no sink {sink!r}")
        return int(row[0])

    # -- writing -------------------------------------------------------------------------
    def append_wire(self, readings: list[WireReading], events: list[WireEvent]) -> tuple[int, int]:
        """Store wire-encoded items in one transaction; returns their (first, last)
        positions, or (0, 0) for nothing. Raises OutboxFull at the cap, storing nothing."""
        return self.append_encoded(encode_chunks(readings, events))

    def append_encoded(self, chunks: Chunks) -> tuple[int, int]:
        """`append_wire` for items `encode_chunks` made ready (the gateway encodes the next
        batch while this one is written)."""
        n, bodies = chunks
        if not n:
            return (0, 0)
        return self._store(n, bodies)

    def _store(self, n: int, bodies: list[tuple[int, bytes]]) -> tuple[int, int]:
        if not self.writer:
            raise RuntimeError("this outbox was opened read-only (writer=False)")
        with self._lock:
            pending = self._last - self._min_cursor(self._db)
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
        cursor = self.cursor(sink)
        if self.writer and cursor >= self._last:
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
        parts: list[Part] = []
        for upto, n, body in rows:
            r, e, lines = _split_body(body)
            skip = cursor - (upto - n)  # > 0 only if the cursor stopped inside this chunk
            if skip > 0:  # (cursors move by whole chunks: only outboxes of one row per item)
                r_items, e_items = orjson.loads(r), orjson.loads(e)
                e_items = e_items[max(0, skip - len(r_items)) :]
                r_items = r_items[skip:]
                r, e, lines = orjson.dumps(r_items), orjson.dumps(e_items), None
            parts.append((r, e, lines))
        return Batch(max(cursor + 1, rows[0][0] - rows[0][1] + 1), rows[-1][0], parts)

    def commit(self, sink: str, pos: int) -> None:
        """The sink has taken everything up to `pos` (a cursor never moves back)."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "UPDATE cursors SET pos = ? WHERE sink = ? AND pos < ?", (pos, sink, pos)
            )

    def prune(self) -> int:
        """Delete the chunks every sink has passed; returns how many rows went."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            low = self._min_cursor(self._db)
            cur = self._db.execute("DELETE FROM chunks WHERE upto <= ?", (low,))
            return cur.rowcount

    def pending(self, sink: str) -> int:
        with self._rlock:
            head = self._head(self._rdb)
        return head - self.cursor(sink)

    @property
    def head(self) -> int:
        """Position of the newest item (the writer keeps it in memory: no query)."""
        if self.writer:
            return self._last
        with self._rlock:
            return self._head(self._rdb)

    def fill_ratio(self) -> float:
        with self._rlock:
            held = self._head(self._rdb) - self._min_cursor(self._rdb)
        return held / self.max_pending

    def close(self) -> None:
        with self._rlock:
            self._rdb.close()
        with self._lock:
            self._db.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # lets the next writer in
                self._lock_fd = None


def _hold_writer_lock(path: Path) -> int:
    """An exclusive flock on `<outbox>.lock`, waited for while a previous writer (a gateway
    still stopping) holds it; OutboxBusy if it is not let go. The kernel drops the lock
    when its process dies, however it dies."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + WRITER_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise OutboxBusy(
                    f"another process is writing {path} (is a second gateway using this "
                    "data folder?)"
                ) from None
            time.sleep(0.1)
