"""The outbox keeps items until every sink has taken them, survives reopening, and refuses
new data at its cap instead of deleting what it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.outbox.outbox import Outbox, OutboxFull


def items(n: int, start: int = 0) -> list[tuple[str, bytes]]:
    return [("r", b'{"i": %d}' % i) for i in range(start, start + n)]


def test_each_sink_reads_in_order_from_its_own_cursor(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["tsdb", "uplink"])
    assert box.append(items(5)) == (1, 5)
    got = box.read("tsdb", 3)
    assert [i.pos for i in got] == [1, 2, 3]
    box.commit("tsdb", 3)
    assert [i.pos for i in box.read("tsdb", 10)] == [4, 5]
    assert [i.pos for i in box.read("uplink", 10)] == [1, 2, 3, 4, 5]  # not blocked
    assert box.pending("tsdb") == 2 and box.pending("uplink") == 5


def test_prune_deletes_only_what_every_sink_took(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a", "b"])
    box.append(items(4))
    box.commit("a", 4)
    box.commit("b", 2)
    assert box.prune() == 2
    assert [i.pos for i in box.read("b", 10)] == [3, 4]
    assert box.read("a", 10) == []


def test_contents_and_cursors_survive_reopen(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a", "b"])
    box.append(items(3))
    box.commit("a", 2)
    box.close()
    again = Outbox(tmp_path / "o.db", ["a", "b"])
    assert [i.body for i in again.read("a", 10)] == [b'{"i": 2}']
    assert len(again.read("b", 10)) == 3
    assert again.append(items(1, 3)) == (4, 4)  # positions never reused


def test_cap_refuses_new_data_and_keeps_the_old(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a"], max_pending=5)
    box.append(items(4))
    with pytest.raises(OutboxFull, match="cap is 5"):
        box.append(items(2, 4))
    assert len(box.read("a", 10)) == 4
    assert box.fill_ratio() == pytest.approx(0.8)
    box.commit("a", 4)
    box.append(items(2, 4))  # room again once the sink took its share
    assert [i.pos for i in box.read("a", 10)] == [5, 6]


def test_a_sink_added_later_starts_at_what_is_still_held(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", ["a"])
    box.append(items(3))
    box.commit("a", 3)
    box.prune()
    box.close()
    box = Outbox(tmp_path / "o.db", ["a", "new"])
    assert box.read("new", 10) == []
    box.append(items(1, 3))
    assert [i.pos for i in box.read("new", 10)] == [4]
