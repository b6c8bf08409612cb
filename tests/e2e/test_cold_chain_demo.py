"""The cold-chain record after a demo-like run (issue 13 acceptance), through the real parts:
simulated fridge firmware (300x physics) -> Mosquitto -> gateway (SQLite time-series store
and uplink) -> server pipeline -> cold-chain listeners. A compressor failure, a door left
ajar and a silent sensor; then the report is checked against figures computed here, from
the gateway's stored readings, the audit chain is verified and tampered with, and the PDF
is read back with pdftotext and rendered with pdftoppm (the PNG is kept under
tests/artifacts/ for a person to look at)."""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient

from core.mqtturl import parse_broker_url
from core.profiles import load_profiles
from core.site import DEFAULT_SITE_FILE, load_site
from firmware_sim.runner import SimOptions, SimRunner, send_command
from gateway.app import Gateway
from gateway.settings import GatewaySettings
from server.app import create_app
from server.settings import ServerSettings
from tests.helpers import token, wait_until

pytestmark = pytest.mark.e2e
TZ = ZoneInfo("Asia/Shanghai")
CHILLED_MAX = 8.0  # GB 31654-2021 chilled storage 0-8 °C, the compliance limit
MAX_GAP_S = 4.0  # this test's site: the simulator reports every second
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
COMPRESSOR, DOOR, SILENT = "canteen-fridge-01", "canteen-fridge-02", "canteen-fridge-03"


@dataclass
class Site:
    client: TestClient
    broker: str
    gateway_db: Path
    data_dir: Path
    sim: SimRunner


def site_file_for(tmp: Path) -> Path:
    doc = yaml.safe_load(DEFAULT_SITE_FILE.read_text())
    doc["cold_chain"]["compliance"] = [
        {"device_class": c, "max_gap": f"{MAX_GAP_S:g}s"}
        for c in ("chilled_fridge", "freezer", "sample_fridge")
    ]
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


@pytest.fixture
def running_site(mosquitto: Any, tmp_path: Path) -> Iterator[Site]:
    site_file = site_file_for(tmp_path)
    gw_settings = GatewaySettings(
        gateway_id="gw-canteen",
        data_dir=tmp_path / "gateway",
        device_broker=mosquitto.url,
        site_file=site_file,
    )
    srv_settings = ServerSettings(
        demo=True,
        data_dir=tmp_path / "server",
        broker=mosquitto.url,
        tick_seconds=1.0,
        site_file=site_file,
    )
    gateway = Gateway(gw_settings)
    profiles = load_profiles()
    site = load_site(site_file, profiles)
    sim = SimRunner(
        site,
        profiles,
        parse_broker_url(mosquitto.url),
        SimOptions(
            time_scale=300, report_every_s=1.0, tick_s=0.25, seed=11, fridge_door_openings_per_h=0
        ),
    )
    with TestClient(create_app(srv_settings)) as client:
        gateway.start()
        sim.start()
        try:
            yield Site(
                client,
                mosquitto.url,
                tmp_path / "gateway" / "timeseries.db",
                tmp_path / "server",
                sim,
            )
        finally:
            sim.stop()
            gateway.stop()


# -- what the test works out itself, from the gateway's stored readings --------------------
@dataclass
class Stored:
    at: datetime
    value: float
    seq: int | None


def stored(db: Path, device: str) -> list[Stored]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT ts, value_num, seq FROM ts_readings WHERE device_id = ? AND metric = "
            "'temperature' ORDER BY ts",
            (device,),
        ).fetchall()
    return [Stored(datetime.fromtimestamp(ts / 1000, UTC), v, s) for ts, v, s in rows]


def first_excursion(rows: list[Stored]) -> tuple[datetime, datetime, float]:
    """Start = first reading above the limit, end = first reading back in range, peak."""
    start = next(i for i, r in enumerate(rows) if r.value > CHILLED_MAX)
    end = next(i for i in range(start, len(rows)) if rows[i].value <= CHILLED_MAX)
    return rows[start].at, rows[end].at, max(r.value for r in rows[start:end])


def longest_silence(rows: list[Stored]) -> tuple[datetime, datetime]:
    a, b = max(itertools.pairwise(rows), key=lambda p: p[1].at - p[0].at)
    return a.at, b.at


def local(at: datetime, fmt: str = "%H:%M:%S") -> str:
    return at.astimezone(TZ).strftime(fmt)


# -- the run ---------------------------------------------------------------------------------
def run_faults(site: Site) -> None:
    c = site.client
    food = token(c, "food")
    broker = parse_broker_url(site.broker)

    def readings(device: str) -> int:
        today = datetime.now(TZ).date().isoformat()
        got = c.get(f"/api/cold-chain/daily?date={today}&device={device}", headers=food).json()
        return sum(int(d["readings"]) for d in got)

    def excursion(device: str) -> dict[str, Any]:
        got = c.get(f"/api/cold-chain/excursions?device={device}", headers=food).json()
        return dict(got[0]) if got else {}

    def has_readings(device: str, n: int) -> Callable[[], bool]:
        return lambda: readings(device) >= n

    def complete(device: str) -> Callable[[], bool]:
        return lambda: readings(device) == len(stored(site.gateway_db, device))

    def ended(device: str) -> Callable[[], bool]:
        return lambda: bool(excursion(device).get("ended_at"))

    for device in (COMPRESSOR, DOOR, SILENT):
        wait_until(has_readings(device, 5), 30, f"{device} readings in the record")
    send_command(broker, COMPRESSOR, "compressor_failure")
    send_command(broker, DOOR, "door_ajar")
    send_command(broker, SILENT, "sensor_offline")
    wait_until(lambda: excursion(COMPRESSOR), 60, "the compressor failure's excursion")
    wait_until(lambda: excursion(DOOR), 30, "the open door's excursion")
    wait_until(lambda: excursion(COMPRESSOR)["readings"] >= 5, 30, "a few hot readings")
    send_command(broker, DOOR, None, clear=True)
    send_command(broker, COMPRESSOR, None, clear=True)
    before = readings(SILENT)
    send_command(broker, SILENT, None, clear=True)
    for device in (COMPRESSOR, DOOR):
        wait_until(ended(device), 60, f"{device} back in range")
    wait_until(has_readings(SILENT, before + 3), 30, f"{SILENT} reporting again")
    site.sim.stop()
    # Everything the gateway stored has reached the record.
    for device in (COMPRESSOR, DOOR, SILENT):
        wait_until(complete(device), 30, f"{device}: the record holds every stored reading")


@pytest.mark.timeout(300)
def test_report_after_a_demo_run_matches_the_stored_readings(running_site: Site) -> None:
    site = running_site
    c = site.client
    food = token(c, "food")
    run_faults(site)
    today = datetime.now(TZ).date()

    hot = c.get(f"/api/cold-chain/excursions?device={COMPRESSOR}", headers=food).json()[0]
    r = c.post(
        f"/api/cold-chain/excursions/{hot['id']}/actions",
        headers=food,
        json={
            "cause": "压缩机故障 compressor failed",
            "impact": "冷藏食品超温 food above 8 ℃",
            "disposition": "moved",
            "moved_to": "canteen-fridge-04",
            "quantity": "12 kg",
            "preventive_action": "更换压缩机继电器 replace the compressor relay",
        },
    )
    assert r.status_code == 201, r.text
    for dish, grams in (("红烧肉", 150), ("番茄炒蛋", 130)):
        r = c.post(
            "/api/cold-chain/samples",
            headers=food,
            json={
                "date": today.isoformat(),
                "meal": "lunch",
                "dish": dish,
                "weight_g": grams,
                "person": "王师傅",
                "fridge": "canteen-sample-01",
            },
        )
        assert r.status_code == 201, r.text
    r = c.post(
        "/api/cold-chain/signoffs",
        headers=food,
        json={
            "building": "canteen",
            "period": "day",
            "date": today.isoformat(),
            "comment": "已审核 reviewed",
        },
    )
    assert r.status_code == 201, r.text

    q = f"from={today}&to={today}"
    pdf = c.get(f"/api/cold-chain/report?{q}&format=pdf", headers=food)
    csv_file = c.get(f"/api/cold-chain/report?{q}&format=csv", headers=food)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert csv_file.status_code == 200
    assert c.get(f"/api/cold-chain/report?{q}", headers=token(c, "dorm-a")).status_code == 403

    # Both excursions, as the stored readings say.
    rows = list(csv.reader(io.StringIO(csv_file.text)))
    by_name = {r[2]: r for r in rows if r and r[0] == "excursion"}
    expected = {}
    for device, name in ((COMPRESSOR, "1号冷藏柜"), (DOOR, "2号冷藏柜")):
        start, end, peak = first_excursion(stored(site.gateway_db, device))
        row = by_name[name]
        assert row[4] == start.astimezone(TZ).isoformat(timespec="milliseconds")
        assert row[5] == end.astimezone(TZ).isoformat(timespec="milliseconds")
        assert float(row[6]) == pytest.approx((end - start).total_seconds(), abs=0.001)
        assert float(row[7]) == peak
        expected[name] = (start, peak)
    assert "compressor failed" in by_name["1号冷藏柜"][12]
    # The silent sensor: completeness from its message counter, the silence a gap.
    silent = stored(site.gateway_db, SILENT)
    seqs = [r.seq for r in silent if r.seq is not None]
    daily = next(r for r in rows if r[0] == "daily" and r[1] == SILENT)
    assert int(daily[11]) == len(silent)
    assert int(daily[12]) == max(seqs) - min(seqs) + 1
    assert float(daily[13]) == round(100 * len(silent) / (max(seqs) - min(seqs) + 1), 2)
    gap_start, gap_end = longest_silence(silent)
    assert (gap_end - gap_start).total_seconds() > MAX_GAP_S
    api_daily = c.get(f"/api/cold-chain/daily?date={today}&device={SILENT}", headers=food).json()
    gaps = [(g["start"], g["end"]) for g in api_daily[0]["gaps"]]
    assert (gap_start.isoformat(), gap_end.isoformat()) in gaps
    assert api_daily[0]["unknown_s"] >= (gap_end - gap_start).total_seconds()

    # The PDF, read back as text.
    folder = ARTIFACTS
    folder.mkdir(exist_ok=True)
    (folder / ".gitignore").write_text("*\n")
    pdf_path = folder / "cold-chain-report.pdf"
    pdf_path.write_bytes(pdf.content)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf_path), "-"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("1号冷藏柜", "2号冷藏柜", "3号冷藏柜", "留样柜", "1号冷冻柜"):
        assert name in text
    for name, (start, peak) in expected.items():
        assert local(start) in text, f"{name} excursion start {local(start)}"
        assert f"{peak:.2f}" in text
    assert "压缩机故障" in text and "12 kg" in text
    assert "红烧肉" in text and "150 g" in text and "王师傅" in text
    assert "signed by" in text and "food" in text and "已审核" in text
    assert local(gap_start) in text, "the silent sensor's gap"
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "80",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            str(pdf_path),
            str(folder / "cold-chain-report-page"),
        ],
        check=True,
    )
    png = folder / "cold-chain-report-page-1.png"
    assert png.stat().st_size > 10_000
    print(f"report page 1: {png}")  # noqa: T201

    # Tamper evidence: untouched verifies, one changed record or byte does not.
    verify = [sys.executable, "-m", "facility.cli", "audit", "verify"]
    ok = subprocess.run(
        [*verify, "--data-dir", str(site.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    good = subprocess.run(
        [*verify, "--report", str(pdf_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    broken = bytearray(pdf.content)
    broken[len(broken) // 2] ^= 0x01
    bad_path = folder / "cold-chain-report-changed.pdf"
    bad_path.write_bytes(bytes(broken))
    bad = subprocess.run(
        [*verify, "--report", str(bad_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "changed" in bad.stderr
    with sqlite3.connect(site.data_dir / "server.db") as conn:
        conn.execute("UPDATE coldchain_excursions SET peak = peak - 1 WHERE id = ?", (hot["id"],))
    tampered = subprocess.run(
        [*verify, "--data-dir", str(site.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert tampered.returncode == 1
    assert f"excursion:{hot['id']}" in tampered.stderr and "peak" in tampered.stderr
