"""The Sink contract (gateway/sinks/base.py), one suite over every time-series sink: the SQL
sink on SQLite and on PostgreSQL, and the InfluxDB v2 sink against VictoriaMetrics. Each takes
a batch whole, stores an item written twice once (the outbox replays after a crash), keeps
what it stores readable in time order, and reports a store it cannot write to as SinkError
(the outbox then keeps the batch and retries).

Each store is read back its own way (SQL rows and the server's history query;
VictoriaMetrics's export), reduced to the samples every store holds: device, metric, time,
numeric value. What only one store keeps (units, sequence numbers as columns, tags) is tested
in test_timeseries_stores.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.profiles import load_profiles
from core.site import DEFAULT_SITE_FILE, load_site
from core.wire import WireEvent, WireReading, wire_event, wire_reading
from gateway.sinks.base import Sink, SinkError
from server.history.reader import history_query
from tests.harness import VictoriaMetrics

pytestmark = pytest.mark.integration

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z, ms
FRIDGE = "canteen-fridge-01"
DOOR = "dorm-a-door-01"

Sample = tuple[str, str, int, float]  # device, metric, time (ms), value
EventSample = tuple[str, str, int]  # device, kind, time (ms)


def outbox_items(n: int, device: str = FRIDGE, start: int = 0) -> list[WireReading]:
    """What the outbox hands a sink: one fridge message a minute from T0 + start minutes,
    each temperature + door, with the device's sequence number."""
    out: list[WireReading] = []
    for i in range(start, start + n):
        t = T0 + i * 60_000
        for metric, value, unit in (
            ("temperature", 3.0 + i / 10, "°C"),
            ("door_open", i % 2 == 0, None),
        ):
            out.append(
                wire_reading(
                    f"{device}/{metric}/{t}/{i}", device, metric, value, t, t + 40, unit, i, None
                )
            )
    return out


def door_event(minute: int) -> WireEvent:
    t = T0 + minute * 60_000
    return wire_event(f"{DOOR}/door_forced/{t}", DOOR, "door_forced", t, t + 5, {"reader": "main"})


def samples(readings: list[WireReading]) -> list[Sample]:
    return sorted((r["d"], r["m"], r["t"], float(r["v"])) for r in readings)


def event_samples(events: list[WireEvent]) -> list[EventSample]:
    return sorted((e["d"], e["k"], e["t"]) for e in events)


@dataclass
class Store:
    """A sink with its store, read back the store's own way."""

    sink: Sink
    read: Callable[[], list[Sample]]
    read_events: Callable[[], list[EventSample]]
    series: Callable[[str, str], list[tuple[int, float]]]  # one metric, in the store's order
    fail: Callable[[], None]  # make the store refuse the next write


def sql_store(url: str) -> Iterator[Store]:
    from gateway.sinks.sql_ts import SqlTimeSeriesSink

    sink = SqlTimeSeriesSink(url, "gw-canteen")
    engine = create_engine(url)

    def read() -> list[Sample]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT device_id, metric, ts, value_num FROM ts_readings")
            ).all()
        return sorted((d, m, int(t), float(v)) for d, m, t, v in rows)

    def read_events() -> list[EventSample]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT device_id, kind, ts FROM ts_events")).all()
        return sorted((d, k, int(t)) for d, k, t in rows)

    def series(device: str, metric: str) -> list[tuple[int, float]]:
        # The server's own history query, as charts and cold-chain reports read the store.
        start, end = datetime.fromtimestamp(0, tz=UTC), datetime.now(UTC)
        with engine.connect() as conn:
            rows = conn.execute(history_query(device, metric, start, end, 1000)).all()
        return [(int(r.ts), float(r.value_num)) for r in rows]

    def fail() -> None:
        # The store loses its tables (a restore gone wrong): inserts have nowhere to go.
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE ts_readings"))
            conn.execute(text("DROP TABLE ts_events"))

    yield Store(sink, read, read_events, series, fail)
    sink.close()
    engine.dispose()


def influx_store(vm: VictoriaMetrics) -> Iterator[Store]:
    from gateway.sinks.influx import InfluxSink

    profiles = load_profiles()
    site = load_site(DEFAULT_SITE_FILE, profiles)
    sink = InfluxSink(vm.url, "test-token", "campus", "facility", site, profiles, "gw-canteen")
    classes = {
        d.id: (d.device_class or profiles[d.profile].device_class).value for d in site.devices
    }

    def read() -> list[Sample]:
        # One series per field, named measurement_field; seq is a field too, not a reading.
        out: list[Sample] = []
        for s in vm.export('{__name__!~"device_event_.*|.*_seq"}', start="0"):
            device = s["metric"]["device"]
            metric = s["metric"]["__name__"].removeprefix(classes[device] + "_")
            out += [
                (device, metric, t, float(v))
                for t, v in zip(s["timestamps"], s["values"], strict=True)
            ]
        return sorted(out)

    def read_events() -> list[EventSample]:
        return sorted(
            (s["metric"]["device"], s["metric"]["kind"], t)
            for s in vm.export("device_event_count", start="0")
            for t in s["timestamps"]
        )

    def series(device: str, metric: str) -> list[tuple[int, float]]:
        found = vm.export(f'{classes[device]}_{metric}{{device="{device}"}}', start="0")
        assert len(found) == 1
        return list(zip(found[0]["timestamps"], map(float, found[0]["values"]), strict=True))

    yield Store(sink, read, read_events, series, vm.stop)
    sink.close()


@pytest.fixture(params=["sqlite", "postgresql", "influx-v2-victoria-metrics"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        yield from sql_store(f"sqlite:///{tmp_path / 'ts.db'}")
    elif request.param == "postgresql":
        yield from sql_store(request.getfixturevalue("postgres_url"))
    else:
        yield from influx_store(request.getfixturevalue("victoria_metrics"))


def test_a_batch_is_stored_as_written(store: Store) -> None:
    readings = outbox_items(5) + outbox_items(3, device="canteen-fridge-02")
    events = [door_event(0), door_event(2)]
    store.sink.write(readings, events, 1, len(readings) + len(events))
    store.sink.write([], [], 0, 0)  # nothing to take: nothing happens
    assert store.read() == samples(readings)
    assert store.read_events() == event_samples(events)


def test_a_replayed_batch_is_stored_once(store: Store) -> None:
    items = outbox_items(20)
    events = [door_event(1)]
    store.sink.write(items[:30], events, 1, 31)
    # A crash after the write and before the cursor moved: the outbox sends it again,
    # overlapping the next batch, and then all of it.
    store.sink.write(items[10:], events, 11, 41)
    store.sink.write(items, events, 1, 41)
    assert store.read() == samples(items)
    assert store.read_events() == event_samples(events)


def test_late_readings_are_kept_and_read_back_in_time_order(store: Store) -> None:
    # A device that buffered while offline sends its backlog after newer readings went in.
    newer, older = outbox_items(5, start=10), outbox_items(5, start=0)
    store.sink.write(newer, [], 1, 10)
    store.sink.write(older, [], 11, 20)
    assert store.read() == samples(older + newer)
    assert store.series(FRIDGE, "temperature") == [
        (r["t"], r["v"]) for r in older + newer if r["m"] == "temperature"
    ]


def test_a_store_that_cannot_take_the_batch_raises_the_sinks_error(store: Store) -> None:
    store.sink.write(outbox_items(2), [], 1, 4)
    store.fail()
    with pytest.raises(SinkError):
        store.sink.write(outbox_items(2, start=2), [door_event(3)], 5, 9)
