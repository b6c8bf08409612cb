"""The README's demo, as a user runs it: `facility demo`, then `facility sim fault|clear`."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.profiles import load_profiles
from core.site import DEFAULT_SITE_FILE, load_site
from tests.e2e.demo_process import FACILITY, running_demo
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e
FRIDGE = "canteen-fridge-01"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str]]:
    with running_demo(tmp_path) as d:
        yield d.url, d.broker


def sim(broker: str, *args: str) -> None:
    out = subprocess.run(
        [*FACILITY, "sim", *args, "--broker", broker],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def login(url: str, user: str) -> dict[str, str]:
    r = httpx.post(f"{url}/api/auth/token", data={"username": user, "password": "demo"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.mark.timeout(600)  # real-time demo physics: about 2-3 min
def test_demo_fault_and_clear(demo: tuple[str, str]) -> None:
    url, broker = demo
    # The public page speaks the site's language (zh-CN) unless the browser asks otherwise.
    assert "服务承诺" in httpx.get(f"{url}/").text
    english = httpx.get(f"{url}/", headers={"Accept-Language": "en-GB,en;q=0.8"}).text
    assert "service commitments" in english
    r = httpx.post(f"{url}/api/auth/token", data={"username": "maint", "password": "demo"})
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert httpx.get(f"{url}/api/devices").status_code == 401

    def get(path: str) -> Any:
        return httpx.get(f"{url}{path}", headers=headers, timeout=10).json()

    ids = {d["id"] for d in get("/api/devices")}
    assert {
        FRIDGE,
        "canteen-sample-01",
        "dorm-b-door-04",
        "meter-elec-01",
        "meter-water-01",
    } <= ids
    assert ids == {d.id for d in load_site(DEFAULT_SITE_FILE, load_profiles()).devices}
    wait_until(
        lambda: next(d for d in get("/api/devices") if d["id"] == FRIDGE)["online"],
        30,
        "fridge online",
    )

    # Meters on the real serial path (pty pairs): DL/T 645 and Modbus RTU, all four values.
    def device(device_id: str) -> dict[str, Any]:
        return next(d for d in get("/api/devices") if d["id"] == device_id)

    def complete(meter: str) -> bool:
        d = device(meter)
        return bool(d["online"]) and {"energy", "voltage", "current", "power"} <= set(d["values"])

    for meter in ("meter-elec-01", "meter-elec-02"):
        wait_until(
            functools.partial(complete, meter),
            60,
            f"{meter} online with energy, voltage, current and power",
        )

    bad = subprocess.run(
        [*FACILITY, "sim", "fault", FRIDGE, "melting", "--broker", broker],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 2 and "unknown fault 'melting'" in bad.stderr

    sim(broker, "fault", FRIDGE, "compressor_failure")

    def fridge_alerts() -> list[dict[str, Any]]:
        return [a for a in get("/api/alerts?state=active") if a["device_id"] == FRIDGE]

    alerts = wait_until(fridge_alerts, 180, "an active alert for the fridge")
    orders = wait_until(
        lambda: [w for w in get("/api/work-orders") if w["device_id"] == FRIDGE],
        30,
        "an automatic work order",
    )
    assert orders[0]["source"] == "auto" and orders[0]["category"] == "refrigeration"
    assert orders[0]["alert_id"] in {a["id"] for a in alerts}

    # Doors: a held-open door is seen by its building's manager only; forced is critical at once.
    sim(broker, "fault", "dorm-a-door-01", "held_open")
    sim(broker, "fault", "dorm-b-door-02", "forced_open")
    dorm_a, dorm_b = login(url, "dorm-a"), login(url, "dorm-b")

    def door_alerts(h: dict[str, str], device: str) -> list[dict[str, Any]]:
        got = httpx.get(f"{url}/api/alerts?state=active", headers=h, timeout=10).json()
        return [a for a in got if a["device_id"] == device]

    held = wait_until(lambda: door_alerts(dorm_a, "dorm-a-door-01"), 60, "held-open alert")
    assert held[0]["rule"] == "door_held_open"
    assert door_alerts(dorm_b, "dorm-a-door-01") == []
    forced = wait_until(lambda: door_alerts(dorm_b, "dorm-b-door-02"), 30, "forced-open alert")
    assert forced[0]["rule"] == "door_forced" and forced[0]["severity"] == "critical"
    assert door_alerts(dorm_a, "dorm-b-door-02") == []

    # A silent sensor gets an offline alert; its temperature alert stays open meanwhile.
    sim(broker, "fault", FRIDGE, "sensor_offline")
    sim(broker, "fault", "meter-elec-01", "comm_loss")
    sim(broker, "fault", "meter-elec-02", "overload")
    wait_until(
        lambda: any(a["rule"] == "sensor_offline" for a in fridge_alerts()),
        150,
        "an offline alert for the silent fridge",
    )
    still = {a["rule"]: a for a in fridge_alerts()}
    assert {a["rule"] for a in alerts} <= set(still), "temperature alert closed by silence"
    assert all(still[a["rule"]]["condition_unknown"] for a in alerts)

    # One meter silent on its bus, the other keeps updating (and its overload is dorm A's).
    wait_until(lambda: not device("meter-elec-01")["online"], 90, "meter-elec-01 offline")
    seen = device("meter-elec-02")["last_seen"]
    wait_until(lambda: device("meter-elec-02")["last_seen"] > seen, 40, "meter-elec-02 updating")
    assert device("meter-elec-02")["online"]
    over = wait_until(
        lambda: door_alerts(dorm_a, "meter-elec-02"), 60, "overload alert for dorm A's manager"
    )
    assert over[0]["rule"] == "power_over_limit"

    sim(broker, "clear", FRIDGE)
    wait_until(lambda: not fridge_alerts(), 240, "the alerts resolved once back under clear")
    mine = [a for a in get("/api/alerts?state=resolved") if a["device_id"] == FRIDGE]
    assert mine and all(a["resolved_by"] == "system" for a in mine)
