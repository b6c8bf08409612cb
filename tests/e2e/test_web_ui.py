"""The web UI in a real headless Chromium against a live in-process server.

Data reaches the server through its own ingest pipeline (the path the MQTT consumer takes),
so no broker is needed: a warm chilled fridge, a door held open in dormitory A and a forced
door in dormitory B. Every check reads what a person would see on the page, and where the page
changes something, the REST API confirms it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from core.readings import DeviceEvent, Reading
from tests.e2e.browser import Browser
from tests.helpers import batch, event, reading
from tests.live_server import LiveServer, start_server

pytestmark = pytest.mark.e2e

SCREENSHOT = Path("/tmp/cfm-dashboard.png")
ALL_DEVICES = {
    *(f"canteen-fridge-0{i}" for i in range(1, 5)),
    "canteen-freezer-01",
    "canteen-freezer-02",
    "canteen-sample-01",
    *(f"dorm-a-door-0{i}" for i in range(1, 5)),
    *(f"dorm-b-door-0{i}" for i in range(1, 5)),
    "meter-elec-01",
    "meter-elec-02",
    "meter-water-01",
}
DORM_A_DEVICES = {*(f"dorm-a-door-0{i}" for i in range(1, 5)), "meter-elec-02"}


@dataclass
class Seeded:
    server: LiveServer
    fridge_critical: int  # alert ids
    door_held: int
    door_forced: int


def _alert_id(server: LiveServer, device_id: str, rule: str) -> int:
    found = [a["id"] for a in server.get(f"/api/alerts?device_id={device_id}") if a["rule"] == rule]
    assert len(found) == 1, f"expected one {rule} alert on {device_id}, API has {found}"
    return int(found[0])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    server = start_server(tmp_path_factory.mktemp("e2e") / "server")
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        readings: list[Reading] = []
        # canteen-fridge-01 at 9.5 °C for 40 min: above the 8 °C critical limit long enough.
        for i, minutes in enumerate(range(40, -1, -2)):
            readings.append(
                reading(
                    "canteen-fridge-01",
                    "temperature",
                    9.5,
                    now - timedelta(minutes=minutes),
                    seq=100 + i,
                )
            )
        # Healthy cold storage beside it, so the table shows normal values too.
        for device_id, temp in (
            ("canteen-fridge-02", 3.4),
            ("canteen-fridge-03", 2.9),
            ("canteen-fridge-04", 4.1),
            ("canteen-freezer-01", -19.2),
            ("canteen-freezer-02", -18.6),
            ("canteen-sample-01", 2.2),
        ):
            readings.append(reading(device_id, "temperature", temp, now, seq=1))
        server.ctx.pipeline.handle_batch(batch(readings))
        # Dorm A door held open, later a forced door in dorm B (a separate batch).
        server.ctx.pipeline.handle_batch(
            batch([], [event("dorm-a-door-01", "door_held_open", now - timedelta(minutes=5))])
        )
        server.ctx.pipeline.handle_batch(
            batch([], [event("dorm-b-door-02", "door_forced", now - timedelta(minutes=2))])
        )
        yield Seeded(
            server=server,
            fridge_critical=_alert_id(server, "canteen-fridge-01", "temp_high_critical"),
            door_held=_alert_id(server, "dorm-a-door-01", "door_held_open"),
            door_forced=_alert_id(server, "dorm-b-door-02", "door_forced"),
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(seeded: Seeded) -> Iterator[Browser]:
    # Depends on the server so it closes first: open event streams end before shutdown.
    b = Browser()
    try:
        yield b
    finally:
        b.quit()


def test_public_page_shows_commitments_and_takes_a_fault_report(
    seeded: Seeded, browser: Browser
) -> None:
    server, b = seeded.server, browser
    b.driver.get(f"{server.url}/")
    rows = b.wait_for(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#commitments tbody tr"),
        "the service commitments table",
    )
    first_cells = [r.find_element(By.TAG_NAME, "td").text for r in rows]
    assert [c.split()[0] for c in first_cells] == ["P1", "P2", "P3"], first_cells
    assert "10 min" in rows[0].text, rows[0].text  # P1 respond time
    assert "working days" in rows[2].text, rows[2].text
    assert "Demo Campus" in b.text("#site")

    location = f"Dorm A, room 302, bathroom tap ({uuid.uuid4().hex[:8]})"
    form = b.driver.find_element(By.ID, "report")
    assert form.is_displayed()
    form.find_element(By.NAME, "location").send_keys(location)
    form.find_element(By.NAME, "description").send_keys("The tap drips all night long.")
    form.find_element(By.NAME, "contact").send_keys("room 302")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    result = b.wait_for(
        lambda d: re.search(
            r"Received as work order #(\d+)", d.find_element(By.ID, "report-result").text
        ),
        "the fault report's receipt",
    )
    wo_id = int(result.group(1))
    assert form.find_element(By.NAME, "location").get_attribute("value") == ""  # form reset

    orders = {w["id"]: w for w in server.get("/api/work-orders")}
    assert wo_id in orders, f"work order #{wo_id} not in the API's list"
    wo = orders[wo_id]
    assert wo["source"] == "manual" and wo["location"] == location, wo
    assert wo["priority"] == "P3" and wo["status"] == "open", wo


def test_maintenance_dashboard_lists_everything_and_acknowledges(
    seeded: Seeded, browser: Browser
) -> None:
    server, b = seeded.server, browser
    b.login(server.url, "maint")
    assert "(maintenance)" in b.text("#who")
    assert not b.driver.find_element(By.ID, "login-box").is_displayed()

    assert b.row_ids("#devices") == {f"dev-{d}" for d in ALL_DEVICES}
    fridge = b.cells("dev-canteen-fridge-01")
    assert fridge[1] == "chilled fridge" and "online" in fridge[3], fridge
    assert "temperature 9.5 °C" in fridge[4], fridge
    assert "temp high critical" in fridge[6], fridge
    assert "no data yet" in b.cells("dev-meter-water-01")[3]

    alert_row = f"alert-{seeded.fridge_critical}"
    b.wait_for(lambda d: d.find_elements(By.ID, alert_row), "the fridge's critical alert row")
    cells = b.cells(alert_row)
    assert cells[1] == "canteen-fridge-01" and cells[2] == "temp high critical", cells
    assert cells[3] == "critical" and cells[4] == "active", cells
    for other in (seeded.door_held, seeded.door_forced):
        assert b.driver.find_elements(By.ID, f"alert-{other}"), f"alert {other} not shown"

    # The warning opened the fridge's work order; the critical alert escalated it to P1.
    autos = [
        w for w in server.get("/api/work-orders", "maint") if w["device_id"] == "canteen-fridge-01"
    ]
    assert len(autos) == 1 and autos[0]["source"] == "auto", autos
    wo_id = autos[0]["id"]
    assert server.get(f"/api/alerts/{seeded.fridge_critical}")["work_order_id"] == wo_id
    wo_cells = b.cells(f"wo-{wo_id}")
    assert wo_cells[:5] == [f"#{wo_id}", "auto", "P1", "refrigeration", "open"], wo_cells
    assert wo_cells[5] == "canteen-fridge-01: temp high critical", wo_cells

    SCREENSHOT.unlink(missing_ok=True)
    b.screenshot_full_page(SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000

    b.driver.find_element(By.CSS_SELECTOR, f"#{alert_row} button").click()
    b.wait_for(
        lambda _d: b.cells(alert_row)[4:5] == ["acknowledged"],
        "the alert row to show 'acknowledged'",
    )
    assert not b.driver.find_elements(By.CSS_SELECTOR, f"#{alert_row} button")
    api = server.get(f"/api/alerts/{seeded.fridge_critical}")
    assert api["state"] == "acknowledged" and api["acknowledged_by"] == "maint", api
    assert any(h["actor"] == "maint" for h in api["history"]), api["history"]


def test_dorm_manager_sees_only_their_building(seeded: Seeded, browser: Browser) -> None:
    server, b = seeded.server, browser
    b.login(server.url, "dorm-a")
    assert "Dormitory A manager" in b.text("#who")
    shown = b.row_ids("#alerts")
    assert f"alert-{seeded.door_held}" in shown
    assert f"alert-{seeded.door_forced}" not in shown
    assert f"alert-{seeded.fridge_critical}" not in shown
    alerts_text = b.text("#alerts tbody")
    assert "dorm-b" not in alerts_text and "canteen" not in alerts_text, alerts_text

    expected = {d.id for d in server.ctx.site.devices if d.building == "dorm-a"}
    assert expected == DORM_A_DEVICES
    assert b.row_ids("#devices") == {f"dev-{d}" for d in expected}
    assert "canteen" not in b.text("#wos tbody")  # the fridge's work orders are not theirs


def test_wrong_password_shows_error_and_no_dashboard(seeded: Seeded, browser: Browser) -> None:
    server, b = seeded.server, browser
    b.submit_login(server.url, "maint", "not-the-password")
    b.wait_for(lambda d: d.find_element(By.ID, "login-error").text, "the login error text")
    assert b.text("#login-error") == "Wrong username or password"
    assert not b.driver.find_element(By.ID, "dash").is_displayed()
    assert b.driver.find_element(By.ID, "login-box").is_displayed()
    assert b.text("#who") == ""
    assert b.driver.execute_script("return sessionStorage.getItem('token')") is None


def test_new_alert_appears_live_without_reload(seeded: Seeded, browser: Browser) -> None:
    server, b = seeded.server, browser
    live = server.ctx.live
    # Earlier pages' event streams must be gone, so the count below is this page's stream.
    b.driver.get("about:blank")
    b.wait_for(lambda _d: live.subscribers == 0, "earlier event streams to close")
    b.login(server.url, "maint")
    b.wait_for(lambda _d: live.subscribers == 1, "the page's /api/stream connection")
    b.driver.execute_script("window.__noReload = 'still here'")
    before = b.row_ids("#alerts")

    at = datetime.now(UTC)
    forced: DeviceEvent = event("dorm-a-door-03", "door_forced", at, n=7)
    server.ctx.pipeline.handle_batch(batch([], [forced]))
    new_id = _alert_id(server, "dorm-a-door-03", "door_forced")
    assert f"alert-{new_id}" not in before

    b.wait_for(
        lambda d: d.find_elements(By.ID, f"alert-{new_id}"),
        f"alert-{new_id} to appear live (SSE)",
        timeout=5,
    )
    assert b.cells(f"alert-{new_id}")[1:5] == [
        "dorm-a-door-03",
        "door forced",
        "critical",
        "active",
    ]
    assert b.driver.execute_script("return window.__noReload") == "still here"
    assert b.text("#alert-count") == str(len(before) + 1)
