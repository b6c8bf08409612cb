"""The outbox keeps items until every sink has taken them, survives reopening, and refuses
new data at its cap instead of deleting what it holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from core.wire import WireEvent, WireReading, wire_event, wire_reading
from gateway.outbox.outbox import (
    CHUNK_ITEMS,
    Batch,
    Outbox,
    OutboxBusy,
    OutboxFull,
    encode_chunks,
)


def items(n: int, start: int = 0) -> list[WireReading]:
    """Readings numbered by their value, from `start`."""
    return [
        wire_reading(f"d/m/{i}", "d", "m", float(i), i, i, None, None, None)
        for i in range(start, start + n)
    ]


def ids(batch: Batch | None) -> list[int]:
    assert batch is not None
    return [int(r["v"]) for r in batch.readings]


def test_each_sink_reads_in_order_from_its_own_cursor(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["tsdb", "uplink"])
    assert box.append_wire(items(3), []) == (1, 3)
    assert box.append_wire(items(2, 3), []) == (4, 5)
    got = box.read("tsdb", 3)  # whole chunks: the first append's
    assert got is not None and (got.first, got.last) == (1, 3) and ids(got) == [0, 1, 2]
    box.commit("tsdb", 3)
    assert ids(box.read("tsdb", 10)) == [3, 4]
    assert ids(box.read("uplink", 10)) == [0, 1, 2, 3, 4]  # not blocked
    assert box.pending("tsdb") == 2 and box.pending("uplink") == 5


def test_wire_items_are_stored_in_chunks_and_read_back_with_their_positions(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "o.db", ["a"])
    readings = items(CHUNK_ITEMS + 10)
    events = [wire_event("d/door_opened/1", "d", "door_opened", 1, 1, None)]
    assert box.append_wire(readings, events) == (1, CHUNK_ITEMS + 11)
    first = box.read("a", 1)
    assert first is not None and (first.first, first.last) == (1, CHUNK_ITEMS)
    box.commit("a", first.last)
    rest = box.read("a", 10_000)
    assert rest is not None and (rest.first, rest.last) == (CHUNK_ITEMS + 1, CHUNK_ITEMS + 11)
    assert ids(rest) == list(range(CHUNK_ITEMS, CHUNK_ITEMS + 10)) and rest.events == events
    assert len(rest) == 11


def test_prune_deletes_only_what_every_sink_took(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a", "b"])
    for i in range(4):
        box.append_wire(items(1, i), [])
    box.commit("a", 4)
    box.commit("b", 2)
    assert box.prune() == 2
    assert ids(box.read("b", 10)) == [2, 3]
    assert box.read("a", 10) is None


def test_contents_and_cursors_survive_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a", "b"])
    box.append_wire(items(2), [])
    box.append_wire(items(1, 2), [])
    box.commit("a", 2)
    box.close()
    again = Outbox(tmp_path / "o.db", ["a", "b"])
    assert ids(again.read("a", 10)) == [2]
    assert len(again.read("b", 10) or []) == 3
    assert again.append_wire(items(1, 3), []) == (4, 4)  # positions never reused


def test_positions_go_on_after_everything_was_delivered_and_pruned(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a"])
    box.append_wire(items(3), [])
    box.commit("a", 3)
    assert box.prune() == 1
    box.close()
    again = Outbox(tmp_path / "o.db", ["a"])
    assert again.head == 3 and again.append_wire(items(1), []) == (4, 4)


def test_cap_refuses_new_data_and_keeps_the_old(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a"], max_pending=5)
    box.append_wire(items(4), [])
    with pytest.raises(OutboxFull, match="cap is 5"):
        box.append_wire(items(2, 4), [])
    assert len(box.read("a", 10) or []) == 4
    assert box.fill_ratio() == pytest.approx(0.8)
    box.commit("a", 4)
    box.append_wire(items(2, 4), [])  # room again once the sink took its share
    got = box.read("a", 10)
    assert got is not None and (got.first, got.last) == (5, 6)


def test_a_sink_added_later_starts_at_what_is_still_held(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a"])
    box.append_wire(items(3), [])
    box.commit("a", 3)
    box.prune()
    box.close()
    box = Outbox(tmp_path / "o.db", ["a", "new"])
    assert box.read("new", 10) is None
    box.append_wire(items(1, 3), [])
    got = box.read("new", 10)
    assert got is not None and got.first == 4 and ids(got) == [3]


OLD_EVENT = wire_event("d/x/1", "d", "x", 1, 1, None)


def test_an_outbox_of_the_one_row_per_item_format_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE items (pos INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
            " body BLOB NOT NULL)"
        )
        db.execute("CREATE TABLE cursors (sink TEXT PRIMARY KEY, pos INTEGER NOT NULL)")
        db.executemany(
            "INSERT INTO items (kind, body) VALUES (?, ?)",
            [
                ("r", orjson.dumps(items(1, 0)[0])),
                ("e", orjson.dumps(OLD_EVENT)),
                ("r", orjson.dumps(items(1, 2)[0])),
            ],
        )
        db.execute("INSERT INTO cursors VALUES ('a', 1)")
    box = Outbox(path, ["a"])
    got = box.read("a", 10)
    assert got is not None and (got.first, got.last) == (2, 3)
    assert ids(got) == [2] and got.events == [OLD_EVENT]
    assert box.append_wire(items(1, 9), []) == (4, 4)


def test_chunks_keep_the_line_protocol_they_were_written_with(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["tsdb"])

    def render(readings: list[WireReading], events: list[WireEvent]) -> bytes:
        return b"\n".join(b"m v=%d" % int(r["v"]) for r in readings) + b"".join(
            b"e" for _ in events
        )

    event = wire_event("d/door_opened/1", "d", "door_opened", 1, 1, None)
    box.append_encoded(encode_chunks(items(3), [event], render))
    got = box.read("tsdb", 10)
    assert got is not None and got.lines() == b"m v=0\nm v=1\nm v=2\ne"
    assert ids(got) == [0, 1, 2] and got.events == [event]  # the JSON is there as ever
    box.commit("tsdb", got.last)
    box.append_wire(items(1, 3), [])  # a chunk without lines (no InfluxDB when written)
    later = box.read("tsdb", 10)
    assert later is not None and later.lines() is None  # the sink renders it itself


def test_a_second_writer_waits_for_the_first_and_a_reader_process_shares_the_cursors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.outbox.outbox as outbox_module

    path = tmp_path / "o.db"
    writer = Outbox(path, ["tsdb", "uplink"])
    monkeypatch.setattr(outbox_module, "WRITER_WAIT_S", 0.3)
    with pytest.raises(OutboxBusy, match="another process is writing"):
        Outbox(path, ["tsdb", "uplink"])  # a second gateway on the same data folder
    # The sink process opens it without writing, and moves the cursors the writer reads.
    sinks = Outbox(path, ["tsdb", "uplink"], writer=False)
    writer.append_wire(items(4), [])
    got = sinks.read("tsdb", 10)
    assert got is not None and ids(got) == [0, 1, 2, 3]
    assert sinks.head == writer.head == 4
    sinks.commit("tsdb", got.last)
    assert writer.pending("tsdb") == 0 and writer.pending("uplink") == 4
    sinks.commit("tsdb", 2)  # a late commit of an older batch never moves a cursor back
    assert writer.cursor("tsdb") == 4
    writer.commit("uplink", 4)
    assert sinks.prune() == 1 and writer.fill_ratio() == 0
    with pytest.raises(RuntimeError, match="read-only"):
        sinks.append_wire(items(1), [])
    writer.close()
    Outbox(path, ["tsdb", "uplink"]).close()  # once the first let go, another may write
    sinks.close()
