"""The cold-chain record on SQLite and PostgreSQL, through the real ingest pipeline on a
manual clock: a hand-worked day (excursion 10:00-10:45, a silent hour), day close and the
signed chain head, late readings from a gateway buffer that split an excursion after the
day was signed (shown as corrections, never silent), tampering found by the verifier, and
the record surviving the pruning of raw readings."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text

from core.clock import ManualClock
from core.readings import Reading
from server.app import create_app
from server.coldchain.service import ColdChainService
from server.context import ServerContext
from server.settings import ServerSettings
from tests.helpers import batch, production_site, reading, token

pytestmark = pytest.mark.integration
D0 = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # 2026-03-10 00:00 in Asia/Shanghai
DAY = "2026-03-10"


def site_file(tmp: Path) -> Path:
    """Production rule delays and the class files' compliance limits (15 min gap tolerance:
    the demo's is shortened for its 5 s reports)."""
    doc = yaml.safe_load(production_site(tmp).read_text())
    doc["cold_chain"].pop("compliance", None)
    path = tmp / "site-cold.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


def at(h: int, m: int = 0) -> datetime:
    return D0 + timedelta(hours=h, minutes=m)


@dataclass
class Server:
    client: TestClient
    clock: ManualClock
    url: str

    @property
    def ctx(self) -> ServerContext:
        ctx: ServerContext = self.client.app.state.ctx  # type: ignore[attr-defined]
        return ctx

    @property
    def svc(self) -> ColdChainService:
        svc: ColdChainService = self.client.app.state.cold_chain  # type: ignore[attr-defined]
        return svc

    def feed(self, readings: list[Reading], arrive: datetime) -> None:
        self.clock.set(arrive)
        self.ctx.pipeline.handle_batch(batch(readings))

    def get(self, path: str) -> Any:
        r = self.client.get(path, headers=token(self.client, "food"))
        assert r.status_code == 200, r.text
        return r.json()

    def sql(self, statement: str) -> None:
        engine = create_engine(self.url)
        with engine.begin() as conn:
            conn.execute(text(statement))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    url = (
        f"sqlite:///{tmp_path / 'srv' / 'server.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    clock = ManualClock(at(0))
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "srv",
        broker="mqtt://127.0.0.1:1",
        site_file=site_file(tmp_path),
        database_url=url,
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        yield Server(client, clock, url)


def day_of_readings() -> list[Reading]:
    """Fridge 1 at 3.0 °C every 5 min, 9.0-9.8 °C from 10:00 to 10:40 (back at 10:45);
    fridge 3 silent from 02:00 to 02:55 (its counter keeps counting)."""
    out = []
    for i in range(24 * 12):
        t = at(0, 5 * i)
        hot = at(10) <= t < at(10, 45)
        out.append(
            reading(
                "canteen-fridge-01",
                "temperature",
                9.0 + 0.1 * (i - 120) if hot else 3.0,
                t,
                seq=i + 1,
            )
        )
        if not at(2) <= t < at(3):
            out.append(reading("canteen-fridge-03", "temperature", 3.5, t, seq=i + 1))
    return out


def feed_day(srv: Server) -> None:
    """As it happens: each 5-minute report reaches the server within seconds."""
    by_time: dict[datetime, list[Reading]] = {}
    for r in day_of_readings():
        by_time.setdefault(r.measured_at, []).append(r)
    for t, part in sorted(by_time.items()):
        srv.feed(part, t + timedelta(seconds=5))


def test_a_recorded_day_its_corrections_and_its_tampering(server: Server) -> None:
    feed_day(server)
    server.svc.tick(at(25, 30))  # 01:30 the next day: the day is closed and signed

    ex = server.get(f"/api/cold-chain/excursions?from={DAY}&to={DAY}")
    assert [(e["device_id"], e["started_at"], e["ended_at"]) for e in ex] == [
        ("canteen-fridge-01", at(10).isoformat(), at(10, 45).isoformat())
    ]
    assert ex[0]["duration_s"] == 45 * 60 and ex[0]["peak"] == pytest.approx(9.8)
    assert ex[0]["above_s"] == 45 * 60 and ex[0]["status"] == "open"
    fridge1, fridge3 = (
        server.get(f"/api/cold-chain/daily?date={DAY}&device=canteen-fridge-0{n}")[0]
        for n in (1, 3)
    )
    assert fridge1["status"] == "recorded" and fridge1["completeness_pct"] == 100.0
    assert fridge1["out_of_range_s"] == 45 * 60 and fridge1["unknown_s"] == 0
    assert fridge1["max"] == pytest.approx(9.8) and fridge1["late"] == 0
    # 01:55 -> 03:00 is longer than the 15 min gap tolerance: all of it unknown.
    assert fridge3["gaps"] == [
        {"start": at(1, 55).isoformat(), "end": at(3).isoformat(), "duration_s": 65 * 60.0}
    ]
    assert fridge3["unknown_s"] == 65 * 60 and fridge3["in_range_s"] == 86400 - 65 * 60
    assert fridge3["readings"] == 276 and fridge3["expected"] == 288
    heads = server.get("/api/cold-chain/audit/verify")
    assert heads["ok"] and [h["day"] for h in heads["heads"]] == [DAY]

    food = token(server.client, "food")
    r = server.client.post(
        "/api/cold-chain/signoffs",
        headers=food,
        json={"building": "canteen", "period": "day", "date": DAY},
    )
    assert r.status_code == 201 and r.json()["intact"], r.text

    # The gateway's buffer delivers a reading from 10:20 (in range) hours late: the
    # excursion splits in two, the day is recomputed, all of it after the signature.
    late = reading("canteen-fridge-01", "temperature", 6.0, at(10, 22), seq=9999)
    server.feed([late], at(26))
    server.svc.tick(at(26, 1))
    ex = server.get(f"/api/cold-chain/excursions?from={DAY}&to={DAY}")
    assert [(e["started_at"], e["ended_at"]) for e in ex] == [
        (at(10).isoformat(), at(10, 22).isoformat()),
        (at(10, 25).isoformat(), at(10, 45).isoformat()),
    ]
    fridge1 = server.get(f"/api/cold-chain/daily?date={DAY}&device=canteen-fridge-01")[0]
    assert fridge1["late"] == 1 and fridge1["readings"] == 289
    sign = server.get(f"/api/cold-chain/signoffs?from={DAY}&to={DAY}")[0]
    assert not sign["intact"]
    corrected = {c["ref"].split(":")[0] for c in sign["corrections"]}
    assert {"excursion", "daily"} <= corrected
    assert all(c["after_signoff_id"] == sign["id"] for c in sign["corrections"])
    assert server.get("/api/cold-chain/audit/verify")["ok"]

    cli = [sys.executable, "-m", "facility.cli", "audit", "verify", "--database", server.url]
    ok = subprocess.run(
        [*cli, "--from", DAY, "--to", DAY], capture_output=True, text=True, timeout=60, check=False
    )
    assert ok.returncode == 0, ok.stderr

    # One stored reading changed behind the record's back.
    server.sql(
        "UPDATE coldchain_readings SET value = 3.9 WHERE device_id = 'canteen-fridge-03' "
        "AND seq = 100"
    )
    bad = server.get("/api/cold-chain/audit/verify")
    assert not bad["ok"] and bad["first_bad"]["ref"].startswith("daily:")
    assert "canteen-fridge-03" in bad["first_bad"]["problem"]
    failed = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 1 and bad["first_bad"]["ref"] in failed.stderr, failed.stderr


def test_the_record_outlives_its_raw_readings(server: Server) -> None:
    feed_day(server)
    server.svc.tick(at(25, 30))
    before = server.get(f"/api/cold-chain/daily?date={DAY}&device=canteen-fridge-01")[0]
    # Raw readings are kept 731 days; two and a half years later they are gone.
    later = at(24 * 900)
    server.clock.set(later)
    server.svc.tick(later)
    after = server.get(f"/api/cold-chain/daily?date={DAY}&device=canteen-fridge-01")[0]
    assert after == before
    ex = server.get(f"/api/cold-chain/excursions?from={DAY}&to={DAY}")
    assert len(ex) == 1 and ex[0]["peak"] == pytest.approx(9.8)
    detail = server.get(f"/api/cold-chain/excursions/{ex[0]['id']}")
    assert detail["readings"] == []  # the raw readings went; the record stayed
    assert server.get("/api/cold-chain/audit/verify")["ok"]
    report = server.client.get(
        f"/api/cold-chain/report?from={DAY}&to={DAY}&format=csv",
        headers=token(server.client, "food"),
    )
    assert report.status_code == 200 and "1号冷藏柜" in report.text


def test_late_from_the_gateway_buffer_is_counted(tmp_path: Path) -> None:
    """received_at is the gateway's; the server's own arrival time counts too."""
    clock = ManualClock(at(0))
    settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "srv",
        broker="mqtt://127.0.0.1:1",
        site_file=site_file(tmp_path),
    )
    with TestClient(create_app(settings, clock=clock, consume=False)) as client:
        ctx: ServerContext = client.app.state.ctx  # type: ignore[attr-defined]
        live = [
            reading("canteen-fridge-02", "temperature", 3.0, at(0, 5 * i), seq=i + 1)
            for i in range(6)
        ]
        for r in live:
            clock.set(r.measured_at + timedelta(seconds=3))
            ctx.pipeline.handle_batch(batch([r]))
        buffered = Reading(
            reading_id="canteen-fridge-02/temperature/late/7",
            device_id="canteen-fridge-02",
            metric="temperature",
            value=3.1,
            unit="°C",
            measured_at=at(0, 30),
            received_at=at(0, 30),
            seq=7,
        )
        clock.set(at(3))  # the uplink was down for hours
        ctx.pipeline.handle_batch(batch([buffered]))
        got = client.get(
            f"/api/cold-chain/daily?date={DAY}&device=canteen-fridge-02",
            headers=token(client, "food"),
        ).json()[0]
        assert got["readings"] == 7 and got["late"] == 1
    conn = sqlite3.connect(tmp_path / "srv" / "server.db")
    assert conn.execute("SELECT count(*) FROM coldchain_readings").fetchone() == (7,)


def test_a_tick_before_the_day_ends_asks_nothing_per_device(server: Server) -> None:
    """The tick keeps each fridge's next day to close: until it closes, no per-device query
    (5,000 fridges asked at every tick took a third of a core); once it does, the day is
    recorded once, also when another worker's tick recorded it first."""
    feed_day(server)
    server.svc.tick(at(12))  # the first tick learns each fridge's first open day
    engine = server.ctx.sessions.kw["bind"]
    fed = {r.device_id for r in day_of_readings()}
    asked: list[str] = []  # the fed fridges a query asked about (the others never reported)

    def count(*args: Any) -> None:
        statement, params = str(args[2]).lower(), args[3]
        values = params.values() if isinstance(params, dict) else params
        if "coldchain_daily" in statement and "max(" in statement:
            asked.extend(v for v in values if v in fed)

    event.listen(engine, "before_cursor_execute", count)
    try:
        server.svc.tick(at(13))
        server.svc.tick(at(23, 59))
        assert asked == []
        other = ColdChainService(server.ctx)  # another worker, clock leader for a while
        other.tick(at(25, 30))
        assert asked  # it had no next days: it asked
        server.svc.tick(at(25, 31))  # its next day has closed: asks again, finds it recorded
    finally:
        event.remove(engine, "before_cursor_execute", count)
    daily = server.get(f"/api/cold-chain/daily?date={DAY}")
    mine = [d for d in daily if d["device_id"] in fed]
    assert sorted(d["device_id"] for d in mine) == sorted(fed)  # once each
    assert all(d["status"] == "recorded" for d in mine)
    assert server.get("/api/cold-chain/audit/verify")["ok"]
