"""Time-series stores for real, beyond the contract every sink keeps (test_sink_contract.py):
the InfluxDB schema as VictoriaMetrics stores it (its export API shows exactly what was
stored), InfluxQL history reads against Debian's InfluxDB 1.6, the SQL schema, retention and
query plan, and the whole gateway path from a device's MQTT message into the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.profiles import load_profiles
from core.site import load_site
from core.wire import WireReading
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from gateway.sinks.influx import InfluxSink
from server.app import create_app
from server.history.influxql import InfluxQLHistory
from server.settings import ServerSettings
from tests.harness import InfluxDB1, VictoriaMetrics
from tests.helpers import token, wait_until
from tests.integration.test_gateway_mqtt import TOPIC, publish, publisher
from tests.integration.test_sink_contract import T0, door_event, outbox_items

pytestmark = pytest.mark.integration
SITE = Path(__file__).resolve().parents[2] / "sites" / "demo" / "site.yaml"


def sink_for(url: str) -> InfluxSink:
    profiles = load_profiles()
    site = load_site(SITE, profiles)
    return InfluxSink(url, "test-token", "campus", "facility", site, profiles, "gw-canteen")


def test_influx_schema_in_victoria_metrics(victoria_metrics: VictoriaMetrics) -> None:
    sink = sink_for(victoria_metrics.url)
    try:
        sink.write(outbox_items(5), [], 1, 10)
    finally:
        sink.close()
    series = victoria_metrics.export('{__name__=~"chilled_fridge_.*"}', start="0")
    by_name = {s["metric"]["__name__"]: s for s in series}
    assert set(by_name) == {
        "chilled_fridge_temperature",
        "chilled_fridge_door_open",
        "chilled_fridge_seq",
    }
    temp = by_name["chilled_fridge_temperature"]
    assert temp["metric"] == {
        "__name__": "chilled_fridge_temperature",
        "device": "canteen-fridge-01",
        "site": "demo",
        "building": "canteen",
        "gateway": "gw-canteen",
    }
    assert temp["timestamps"] == [T0 + i * 60_000 for i in range(5)]
    assert temp["values"] == pytest.approx([3.0, 3.1, 3.2, 3.3, 3.4])
    assert by_name["chilled_fridge_door_open"]["values"] == [1, 0, 1, 0, 1]


def test_gateway_writes_device_messages_to_victoria_metrics(
    mosquitto: Any, victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    settings = GatewaySettings(
        gateway_id="gw-canteen",
        data_dir=tmp_path / "gw",
        device_broker=mosquitto.url,
        tsdb="influx",
        influx_url=victoria_metrics.url,
        influx_bucket="facility",
    )
    gw = Gateway(settings)
    gw.start()
    wait_until(lambda: gw.source.connected, 10, "gateway subscribed")
    dev = publisher(mosquitto.url)
    try:
        now = int(datetime.now(UTC).timestamp() * 1000)
        for i in range(1, 11):
            body = b'{"seq": %d, "ts": %d, "t": %.1f, "door": false, "bat": 90}' % (
                i,
                now - (10 - i) * 1000,
                3 + i / 10,
            )
            publish(dev, TOPIC.format("canteen-fridge-02"), body)
        series = victoria_metrics.wait_for_export(
            'chilled_fridge_temperature{device="canteen-fridge-02"}',
            lambda s: bool(s) and len(s[0]["values"]) == 10,
            timeout=20,
        )
        assert series[0]["values"] == pytest.approx([3 + i / 10 for i in range(1, 11)])
        seq = victoria_metrics.export('chilled_fridge_seq{device="canteen-fridge-02"}')
        assert seq[0]["values"] == list(range(1, 11))
    finally:
        dev.loop_stop()
        gw.stop()


def test_influxql_history_reads_what_the_sink_schema_holds(
    influxdb1: InfluxDB1, tmp_path: Path
) -> None:
    influxdb1.create_database("facility")
    sink = sink_for("http://127.0.0.1:1")  # only builds points; 1.6 has no v2 write API
    lines = sink.lines(outbox_items(6), [])
    sink.close()
    influxdb1.write("facility", lines, precision="ms")

    profiles = load_profiles()
    reader = InfluxQLHistory(influxdb1.url, "facility", load_site(SITE, profiles), profiles)
    start = datetime.fromtimestamp(T0 / 1000, tz=UTC)
    points = reader.read("canteen-fridge-01", "temperature", start, start + timedelta(hours=1), 100)
    assert [p.value for p in points] == pytest.approx([3.0, 3.1, 3.2, 3.3, 3.4, 3.5])
    assert points[0].ts == start and points[0].unit == "°C"
    every = reader.read("canteen-fridge-01", None, start, start + timedelta(seconds=90), 100)
    assert sorted((p.metric, p.ts.minute) for p in every) == [
        ("door_open", 0),
        ("door_open", 1),
        ("temperature", 0),
        ("temperature", 1),
    ]

    # The same through the API, with the server configured for InfluxDB.
    app = create_app(
        ServerSettings(
            demo=True,
            data_dir=tmp_path / "srv",
            broker="mqtt://127.0.0.1:1",
            tsdb="influx",
            influx_url=influxdb1.url,
            influx_database="facility",
        ),
        consume=False,
    )
    with TestClient(app) as client:
        r = client.get(
            "/api/devices/canteen-fridge-01/readings",
            params={
                "metric": "temperature",
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
            },
            headers=token(client, "food"),
        )
        assert r.status_code == 200, r.text
        assert [p["value"] for p in r.json()["points"]] == pytest.approx(
            [3.0, 3.1, 3.2, 3.3, 3.4, 3.5]
        )
        # A store that is down is a clear 503, not a crash or an empty list.
        influxdb1.stop()
        r = client.get(
            "/api/devices/canteen-fridge-01/readings",
            params={"metric": "temperature"},
            headers=token(client, "food"),
        )
        assert r.status_code == 503 and "unavailable" in r.json()["detail"]


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ts.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_sql_schema_keeps_unit_seq_and_event_attributes(sql_url: str) -> None:
    from sqlalchemy import create_engine, text

    from gateway.sinks.sql_ts import SqlTimeSeriesSink

    sink = SqlTimeSeriesSink(sql_url, "gw-canteen")
    try:
        sink.write(outbox_items(3), [door_event(0)], 1, 7)
    finally:
        sink.close()
    engine = create_engine(sql_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT metric, seq, value_num, unit, quality, received_ts, gateway_id "
                "FROM ts_readings ORDER BY metric, seq"
            )
        ).all()
        event = conn.execute(text("SELECT kind, attrs FROM ts_events")).one()
    engine.dispose()
    temps = [r for r in rows if r.metric == "temperature"]
    assert [(r.seq, r.value_num, r.unit) for r in temps] == [
        (0, 3.0, "°C"),
        (1, 3.1, "°C"),
        (2, 3.2, "°C"),
    ]
    assert [r.value_num for r in rows if r.metric == "door_open"] == [1.0, 0.0, 1.0]
    assert {(r.quality, r.gateway_id) for r in rows} == {("good", "gw-canteen")}
    assert temps[0].received_ts == T0 + 40
    attrs = event.attrs if isinstance(event.attrs, dict) else json.loads(event.attrs)
    assert (event.kind, attrs) == ("door_forced", {"reader": "main"})


def test_sql_retention_rolls_old_readings_up_hourly(sql_url: str) -> None:
    from sqlalchemy import create_engine, text

    from gateway.sinks.sql_ts import SqlTimeSeriesSink
    from server.history.reader import SqlHistory

    sink = SqlTimeSeriesSink(sql_url, "gw-canteen")
    items = outbox_items(150)  # one fridge message a minute for 2.5 hours from T0
    recent_t = T0 + 10 * 86_400_000
    recent: list[WireReading] = [
        {**i, "id": f"recent/{i['id']}", "t": recent_t + n * 60_000}
        for n, i in enumerate(items[:4])
    ]
    try:
        sink.write(items + recent, [], 1, 304)
        now = T0 + 10 * 86_400_000 + 3_600_000
        assert sink.apply_retention(7, now) == (6, 300)  # 3 hours x 2 metrics; 300 raw rows
        assert sink.apply_retention(7, now) == (0, 0)  # nothing left to roll up
    finally:
        sink.close()
    engine = create_engine(sql_url)
    with engine.connect() as conn:
        hourly = conn.execute(
            text(
                "SELECT hour, n, min, max, mean FROM ts_readings_hourly "
                "WHERE metric = 'temperature' ORDER BY hour"
            )
        ).all()
        raw = conn.execute(text("SELECT count(*) FROM ts_readings")).scalar_one()
    assert raw == 4  # the recent readings stay raw
    temps = [3.0 + i / 10 for i in range(150)]
    for k, row in enumerate(hourly):
        chunk = temps[k * 60 : (k + 1) * 60]
        assert row.hour == T0 + k * 3_600_000 and row.n == len(chunk)
        assert (row.min, row.max) == (pytest.approx(min(chunk)), pytest.approx(max(chunk)))
        assert row.mean == pytest.approx(sum(chunk) / len(chunk))
    assert len(hourly) == 3

    start = datetime.fromtimestamp(T0 / 1000, tz=UTC)
    points = SqlHistory(engine).read(
        "canteen-fridge-01", "temperature", start, start + timedelta(days=11), 1000
    )
    assert [p.value for p in points[:3]] == pytest.approx(
        [sum(temps[0:60]) / 60, sum(temps[60:120]) / 60, sum(temps[120:150]) / 30]
    )
    assert len(points) == 3 + 2  # three hourly means, then the two recent raw temperatures
    engine.dispose()


def test_sql_sink_runs_its_retention_from_the_sink_loop_on_its_schedule(tmp_path: Path) -> None:
    import sqlite3

    from gateway.sinks.sql_ts import SqlTimeSeriesSink

    path = tmp_path / "ts.db"
    sink = SqlTimeSeriesSink(f"sqlite:///{path}", "gw-canteen", retention_days=7)

    def raw_rows() -> int:
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT count(*) FROM ts_readings").fetchone()[0])

    later = T0 + 10 * 86_400_000  # every reading written here is past its 7 days by then
    try:
        sink.write(outbox_items(150), [], 1, 300)
        sink.maintain(later)  # the sink loop's call after its first write: due in a minute
        sink.maintain(later + 59_000)
        assert raw_rows() == 300
        sink.maintain(later + 60_000)  # due: rolled up hourly, raw rows deleted
        assert raw_rows() == 0
        sink.write(outbox_items(2, start=300), [], 301, 304)
        sink.maintain(later + 120_000)  # within the hour: not run again
        assert raw_rows() == 4
        sink.maintain(later + 60_000 + 3_600_000)
        assert raw_rows() == 0
    finally:
        sink.close()


def test_a_devices_time_range_is_read_through_the_key_not_a_scan(tmp_path: Path) -> None:
    """The history query (one device, a time range, with or without a metric) is a range
    search of the table's key on SQLite, never a scan or a sort."""
    from sqlalchemy import text
    from sqlalchemy.dialects import sqlite

    from gateway.sinks.sql_ts import SqlTimeSeriesSink, make_engine
    from server.history.reader import history_query

    url = f"sqlite:///{tmp_path / 'ts.db'}"
    SqlTimeSeriesSink(url, "gw-canteen").close()
    engine = make_engine(url)
    start = datetime.fromtimestamp(T0 / 1000, tz=UTC)
    with engine.connect() as conn:
        for metric in ("temperature", None):
            q = history_query("canteen-fridge-01", metric, start, start + timedelta(days=1), 100)
            compiled = q.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
            plan = " ".join(
                str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            )
            assert "SEARCH ts_readings USING PRIMARY KEY (device_id=? AND ts>? AND ts<?)" in plan
            assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    engine.dispose()
