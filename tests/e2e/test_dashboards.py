"""Every Grafana dashboard query, run against a store the real gateway filled.

`facility demo` runs with its gateway writing to the store under test (the settings come
from FACILITY_GATEWAY_* as on a gateway host): PostgreSQL through the SQL sink, InfluxDB
through the v2 write API. Debian's InfluxDB is 1.6, which has no /api/v2/write, so a small
forwarder hands the gateway's writes to its /write (InfluxDB 1.8+ has the same compatibility
endpoint built in); the dashboards then read with InfluxQL on /query, as Grafana does.
Doors are forced and held open and the meters polled over the demo's serial lines, so every
panel has something to show. Each query runs with Grafana's macros and variables expanded:
a query naming a measurement, field, tag, table or column the gateway does not write fails.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.e2e.demo_process import DemoProcess, running_demo
from tests.harness import InfluxDB1
from tests.helpers import wait_until
from tests.live_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "json"
BUCKET = "facility"
RANGE_H = 24


def _panels(board: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in board["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target


@contextmanager
def demo_writing_to(env: dict[str, str], tmp: Path) -> Iterator[DemoProcess]:
    """`facility demo` whose gateway writes where `env` says, with a door forced open and
    another held open."""
    with running_demo(tmp, env) as demo:
        demo.sim("fault", "dorm-a-door-01", "forced_open")
        demo.sim("fault", "dorm-b-door-02", "held_open")
        yield demo


# -- PostgreSQL --------------------------------------------------------------------------------


def _pg_expand(sql: str, variables: dict[str, list[str]]) -> str:
    sql = sql.replace("$__unixEpochFrom()", f"(extract(epoch FROM now()) - {RANGE_H * 3600})")
    sql = sql.replace("$__unixEpochTo()", "extract(epoch FROM now())")
    for name, values in variables.items():
        quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values)
        sql = re.sub(rf"\${name}\b", quoted, sql)
    assert "$" not in sql, f"a macro or variable this test does not know: {sql}"
    return sql


def test_postgres_dashboards_against_the_gateways_sql_store(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(postgres_url)

    def count(where: str) -> int:
        with engine.connect() as c:
            try:
                return int(c.execute(text(f"SELECT count(*) FROM {where}")).scalar_one())
            except Exception:  # the gateway has not made its tables yet
                return 0

    env = {"FACILITY_GATEWAY_TSDB": "sql", "FACILITY_GATEWAY_TSDB_URL": postgres_url}
    with demo_writing_to(env, tmp_path):
        for what, where in (
            ("fridge temperatures", "ts_readings WHERE metric = 'temperature'"),
            ("meter power and energy", "ts_readings WHERE metric IN ('power', 'energy')"),
            ("water flow", "ts_readings WHERE metric = 'flow'"),
            ("a forced door", "ts_events WHERE kind = 'door_forced'"),
            ("a door held open", "ts_events WHERE kind = 'door_held_open'"),
        ):
            wait_until(functools.partial(count, where), 120, f"{what} in PostgreSQL", interval=1)
    boards = sorted((DASHBOARDS / "postgres").glob("*.json"))
    assert {b.stem for b in boards} == {
        "cold-storage",
        "dorm-doors",
        "utilities",
        "equipment-status",
    }
    checked = 0
    with engine.connect() as c:
        for path in boards:
            board = json.loads(path.read_text("utf-8"))
            variables: dict[str, list[str]] = {}
            for var in board["templating"]["list"]:
                values = [str(r[0]) for r in c.execute(text(var["query"]))]
                assert values, f"{path.name}: variable {var['name']} has no values"
                variables[var["name"]] = values
            for title, target in _panels(board):
                assert target["datasource"]["uid"] == "facility-pg", (path.name, title)
                rows = c.execute(text(_pg_expand(target["rawSql"], variables))).mappings().all()
                assert rows, f"{path.name}: {title!r} returned nothing"
                if target["format"] == "time_series":
                    assert {"time", "value"} <= set(rows[0]), (path.name, title, rows[0])
                    assert any(r["value"] is not None for r in rows), (path.name, title)
                checked += 1
    engine.dispose()
    assert checked >= 12


# -- InfluxDB (InfluxQL) -----------------------------------------------------------------------


class _V2WriteForwarder(BaseHTTPRequestHandler):
    """POST /api/v2/write?bucket=B&precision=P -> InfluxDB 1.x POST /write?db=B&precision=P."""

    target = ""

    def do_POST(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if url.path != "/api/v2/write":
            self.send_response(404)
            self.end_headers()
            return
        r = httpx.post(
            f"{self.target}/write",
            params={"db": query["bucket"][0], "precision": query.get("precision", ["ns"])[0]},
            content=body,
            timeout=30,
        )
        self.send_response(r.status_code)
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def v2_write(influxdb1: InfluxDB1) -> Iterator[str]:
    handler = type("Forwarder", (_V2WriteForwarder,), {"target": influxdb1.url})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _influx_expand(q: str, variables: dict[str, list[str]]) -> str:
    q = q.replace("$timeFilter", f"time > now() - {RANGE_H}h")
    q = q.replace("$__interval", "1m")
    for name, values in variables.items():
        alternatives = "|".join(re.escape(v).replace("/", r"\/") for v in values)
        q = re.sub(rf"\${name}\b", f"({alternatives})", q)
    assert "$" not in q.replace("$/", ""), f"a macro or variable this test does not know: {q}"
    return q


def _series(influx: InfluxDB1, q: str) -> list[dict[str, Any]]:
    answer = influx.query(q, db=BUCKET)
    return [s for r in answer.get("results", []) for s in r.get("series", [])]


def test_influxql_dashboards_against_what_the_gateway_wrote(
    influxdb1: InfluxDB1, v2_write: str, tmp_path: Path
) -> None:
    influxdb1.create_database(BUCKET)
    env = {
        "FACILITY_GATEWAY_TSDB": "influx",
        "FACILITY_GATEWAY_INFLUX_URL": v2_write,
        "FACILITY_GATEWAY_INFLUX_BUCKET": BUCKET,
        "FACILITY_GATEWAY_INFLUX_ORG": "campus",
        "FACILITY_GATEWAY_INFLUX_TOKEN": "test-token",
    }
    with demo_writing_to(env, tmp_path):
        for what, q in (
            ("fridge temperatures", 'SELECT count("temperature") FROM "chilled_fridge"'),
            ("meter power", 'SELECT count("power") FROM "electricity_meter"'),
            ("water flow", 'SELECT count("flow") FROM "water_meter"'),
            (
                "a forced door",
                'SELECT count("count") FROM "device_event" WHERE "kind" = \'door_forced\'',
            ),
            (
                "a door held open",
                'SELECT count("count") FROM "device_event" WHERE "kind" = \'door_held_open\'',
            ),
        ):
            found = functools.partial(_series, influxdb1, q)
            wait_until(found, 120, f"{what} in InfluxDB", interval=1)
    boards = sorted((DASHBOARDS / "influxql").glob("*.json"))
    assert {b.stem for b in boards} == {
        "cold-storage",
        "dorm-doors",
        "utilities",
        "equipment-status",
    }
    checked = 0
    for path in boards:
        board = json.loads(path.read_text("utf-8"))
        variables: dict[str, list[str]] = {}
        for var in board["templating"]["list"]:
            values = sorted(
                {str(v[1]) for s in _series(influxdb1, var["query"]) for v in s["values"]}
            )
            assert values, f"{path.name}: variable {var['name']} has no values"
            variables[var["name"]] = values
        for title, target in _panels(board):
            assert target["datasource"]["uid"] == "facility-influx", (path.name, title)
            series = _series(influxdb1, _influx_expand(target["query"], variables))
            assert series, f"{path.name}: {title!r} returned nothing"
            values = [v for s in series for row in s["values"] for v in row[1:]]
            assert any(v is not None for v in values), f"{path.name}: {title!r} only nulls"
            checked += 1
    assert checked >= 12
