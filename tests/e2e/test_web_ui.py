"""The web UI in Debian's headless Chromium against `facility demo`, as each person uses it.

One demo process (started as a user starts it) serves every flow; faults come from
`facility sim fault`, so alerts and work orders arise through the real path (simulated
firmware -> MQTT -> gateway -> server). Each role's flow runs four times: desktop and 360 px
phone width, in zh-CN (the browser's language) and in English (chosen with the page's
switch). Every page is checked for strings missing from the message catalogues, and in
Chinese for English words outside data (ids, units, what people typed). Screenshots go to
tests/e2e/artifacts/ (listed at the end of the run).
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.e2e.browser import Browser
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.demo_process import DemoProcess, running_demo
from tests.helpers import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
SITE_TZ = ZoneInfo("Asia/Shanghai")
COLD_CLASSES = {"chilled_fridge", "freezer", "sample_fridge"}


@dataclass(frozen=True)
class Variant:
    index: int
    lang: str  # zh-CN | en
    phone: bool

    @property
    def name(self) -> str:
        return f"{self.lang}-{'phone' if self.phone else 'desktop'}"


VARIANTS = [
    Variant(0, "zh-CN", False),
    Variant(1, "zh-CN", True),
    Variant(2, "en", False),
    Variant(3, "en", True),
]
BY_VARIANT = pytest.mark.parametrize("v", VARIANTS, ids=[v.name for v in VARIANTS])

# Text nodes a person sees that are not data ([data-raw]) and hold a Latin word: in the
# Chinese UI these are strings that missed the catalogue. File formats and units are written
# in Latin letters in Chinese too.
LATIN_WORDS_JS = """
const terms = /\\b(JPEG|PNG|MB|PDF|CSV|PM2\\.5|PM10|VOC)\\b/g;
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const el = n.parentElement;
  if (!el || el.closest('[data-raw], script, style, [hidden], dialog:not([open])')) continue;
  const text = n.textContent;
  if (/[A-Za-z]{2,}/.test(text.replace(terms, ''))) out.push(text.trim().slice(0, 80));
}
return out;
"""


@dataclass
class Demo:
    url: str
    broker: str
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        if user not in self.tokens:
            r = httpx.post(
                f"{self.url}/api/auth/token",
                data={"username": user, "password": "demo"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            self.tokens[user] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path: str, user: str = "admin") -> Any:
        r = httpx.get(f"{self.url}{path}", headers=self.headers(user), timeout=15)
        assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
        return r.json()

    def post(self, path: str, body: dict[str, Any], user: str = "admin") -> Any:
        r = httpx.post(f"{self.url}{path}", json=body, headers=self.headers(user), timeout=15)
        assert r.status_code in (200, 201), f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    def log_tail(self, lines: int = 60) -> str:
        return "\n--- demo log ---\n" + "\n".join(self.log.read_text().splitlines()[-lines:])

    def devices(self, keep: Any = lambda d: True) -> set[str]:
        """Ids of the site file's devices (as the admin sees them) that `keep` accepts."""
        return {d["id"] for d in self.get("/api/ui/site")["devices"] if keep(d)}

    def sim(self, *args: str) -> None:
        DemoProcess(self.url, self.broker, self.log).sim(*args)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`facility demo` as a user starts it, once for every flow in this module."""
    with running_demo(tmp_path_factory.mktemp("web-ui-demo")) as process:
        d = Demo(process.url, process.broker, process.log)
        watched = d.devices(lambda x: x["device_class"] in COLD_CLASSES | {"dorm_door"})
        wait_until(
            lambda: all(x["online"] for x in d.get("/api/devices") if x["id"] in watched),
            60,
            "the demo's fridges, freezers and doors online",
        )
        yield d


class UI:
    """The browser as a person uses it: a language, a screen, pages to check and keep."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.b = browser
        self.d = browser.driver
        self.url = url

    def screen(self, v: Variant) -> None:
        if v.phone:
            self.d.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": 360, "height": 780, "deviceScaleFactor": 1, "mobile": True},
            )
        else:
            self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def open(self, v: Variant, path: str) -> None:
        """A fresh page in the variant's language: Chinese from the browser's own language,
        English through the page's language switch."""
        self.screen(v)
        self.d.get("about:blank")
        self.d.get(f"{self.url}{path}")
        self.ready()
        lang = self.d.execute_script("return document.documentElement.lang")
        if lang != v.lang:
            switch = self.d.find_element(By.CSS_SELECTOR, f".lang-switch[data-lang='{v.lang}']")
            assert switch.is_displayed(), "the language switch is not shown"
            self.d.execute_script("arguments[0].click()", switch)
            self.b.wait_for(
                lambda d: d.execute_script("return document.documentElement.lang") == v.lang,
                f"the page in {v.lang} after the switch",
            )
            self.ready()
        assert self.d.execute_script("return document.documentElement.lang") == v.lang

    def ready(self) -> None:
        self.b.wait_for(
            lambda d: d.execute_script("return document.body.dataset.ready === 'true'"),
            "the page's scripts to start",
        )

    def login(self, v: Variant, user: str) -> None:
        self.d.get("about:blank")
        self.d.get(f"{self.url}/app")
        self.d.execute_script("sessionStorage.clear()")
        self.open(v, "/app")
        form = self.d.find_element(By.ID, "login")
        form.find_element(By.NAME, "username").send_keys(user)
        form.find_element(By.NAME, "password").send_keys("demo")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.b.wait_for(
            lambda d: (
                d.find_element(By.ID, "dash").is_displayed()
                and d.execute_script("return document.body.dataset.page")
            ),
            f"{user}'s home screen",
        )

    def go(self, route: str, ready_css: str) -> None:
        self.d.execute_script("location.hash = arguments[0]", route)
        self.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, ready_css), ready_css)

    def wait_css(self, selector: str, what: str = "", timeout: float = 10) -> list[WebElement]:
        found: list[WebElement] = self.b.wait_for(
            lambda d: d.find_elements(By.CSS_SELECTOR, selector), what or selector, timeout
        )
        return found

    def click(self, selector: str) -> None:
        """Click the first match, again if the page re-drew it meanwhile (live updates)."""

        def attempt(d: Any) -> bool:
            found = d.find_elements(By.CSS_SELECTOR, selector)
            if not found:
                return False
            try:
                found[0].click()
            except StaleElementReferenceException:
                return False
            return True

        self.b.wait_for(attempt, f"a click on {selector}")

    def css(self, selector: str) -> list[WebElement]:
        return self.d.find_elements(By.CSS_SELECTOR, selector)

    def ids(self, selector: str) -> set[str]:
        got: list[str] = self.d.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.id)", selector
        )
        return set(got)

    def text(self, selector: str) -> str:
        found = self.css(selector)
        return found[0].text if found else ""

    def check(self, v: Variant, what: str) -> Path:
        """Every string from a catalogue, no script or CSP error; then a screenshot."""
        missing = self.d.execute_script("return [...(window.__i18nMissing || [])]")
        assert missing == [], f"{what} ({v.name}): strings missing from the catalogue: {missing}"
        if v.lang == "zh-CN":
            latin = self.d.execute_script(LATIN_WORDS_JS)
            assert latin == [], f"{what} ({v.name}): English left in the Chinese UI: {latin}"
        errors = [
            e["message"]
            for e in self.console()
            if e["level"] == "SEVERE" and ("Uncaught" in e["message"] or "Refused" in e["message"])
        ]
        assert errors == [], f"{what} ({v.name}): script errors: {errors}"
        if v.phone:
            width = self.d.execute_script("return document.documentElement.scrollWidth")
            assert width <= 360, f"{what} ({v.name}): the page is {width} px wide at 360 px"
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{what}-{v.name}.png"
        self.b.screenshot_full_page(path)
        assert path.stat().st_size > 5_000
        return path

    def console(self) -> list[dict[str, Any]]:
        """The page's console since the last call (Chromium's driver keeps it)."""
        entries: list[dict[str, Any]] = self.d.execute("getLog", {"type": "browser"})["value"]
        return entries

    def fetch_status(self, path: str) -> int:
        """The status of a GET from the page itself, with the page's own login."""
        status: int = self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {headers: {Authorization: 'Bearer ' +"
            " sessionStorage.getItem('token')}}).then(r => done(r.status), () => done(-1));",
            path,
        )
        return status

    def fetch_json(self, path: str) -> Any:
        return self.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {headers: {Authorization: 'Bearer ' +"
            " sessionStorage.getItem('token')}}).then(r => r.json()).then(done, () => done(null));",
            path,
        )


@pytest.fixture(scope="module")
def ui(demo: Demo) -> Iterator[UI]:
    # Depends on the demo so it closes first: open event streams end before shutdown.
    browser = Browser(accept_language="zh-CN,zh;q=0.9")
    browser.driver.set_script_timeout(15)
    try:
        yield UI(browser, demo.url)
    finally:
        browser.quit()


def names(demo: Demo) -> dict[str, dict[str, str]]:
    """Device names as the site file gives them, by language."""
    site = demo.get("/api/ui/site")
    out: dict[str, dict[str, str]] = {}
    for dev in site["devices"]:
        out[dev["id"]] = {
            "zh-CN": dev["name"],
            "en": dev["translations"].get("en", {}).get("name", dev["name"]),
        }
    return out


def png(path: Path) -> Path:
    """A small real PNG (a phone's photo stands in)."""
    width, height = 64, 48
    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 120)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def alert_of(demo: Demo, user: str, device: str, rule: str) -> dict[str, Any] | None:
    found = [
        a
        for a in demo.get(f"/api/alerts?device_id={device}", user)
        if a["rule"] == rule and a["state"] != "resolved"
    ]
    return found[0] if found else None


# -- maintenance ------------------------------------------------------------------------------


@BY_VARIANT
def test_maintenance_board_live_and_work_order(
    v: Variant, demo: Demo, ui: UI, tmp_path: Path
) -> None:
    ui.login(v, "maint")
    assert ui.d.execute_script("return document.body.dataset.page") == "board"
    assert ui.ids(".dev") == {f"dev-{x}" for x in demo.devices()}
    # Names from the site file, in the page's language.
    name = names(demo)["canteen-fridge-01"][v.lang]
    assert name in ui.text("#dev-canteen-fridge-01"), ui.text("#dev-canteen-fridge-01")
    assert ui.css("#dev-canteen-fridge-01 .val .v"), "no latest value on the fridge's card"
    summary = ui.css("#board-summary .chip")
    assert len(summary) == 4
    ui.check(v, "maintenance-board")

    # Live: a door forced open turns its card to alarm without a reload.
    door = f"dorm-b-door-0{v.index + 1}"
    assert ui.css(f"#dev-{door}")[0].get_attribute("data-status") != "alarm"
    ui.d.execute_script("window.__noReload = 'still here'")
    demo.sim("fault", door, "forced_open")
    ui.b.wait_for(
        lambda _d: ui.css(f"#dev-{door}")[0].get_attribute("data-status") == "alarm",
        f"{door}'s card to turn to alarm (live)",
        timeout=20,
    )
    assert ui.d.execute_script("return window.__noReload") == "still here"
    ui.b.wait_for(
        lambda _d: int(ui.css("#board-summary .chip.alarm")[0].get_attribute("data-count") or 0),
        "the alarm count above the board",
    )

    # The work-order board: claim, start, resolve with a note and a photo.
    order = demo.post(
        "/api/work-orders",
        {
            "title": f"Leaking tap, utility room ({v.name})",
            "category": "plumbing",
            "priority": "P3",
            "location": "设备间 / utility room",
            "building": "utility",
        },
    )
    ui.go("#/orders", f"#wo-{order['id']}")
    card = f"#wo-{order['id']}"
    assert ui.css(f"#lane-todo {card}"), "a new order is in the to-do lane"
    for move, lane in (("assigned", "doing"), ("in_progress", "doing")):
        ui.click(f"{card} .move-{move}")
        ui.b.wait_for(
            lambda _d, m=move: demo.get(f"/api/work-orders/{order['id']}")["status"] == m,
            f"the order {move}",
        )
        ui.b.wait_for(
            lambda d, ln=lane: d.find_elements(By.CSS_SELECTOR, f"#lane-{ln} {card}"), lane
        )
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, f"{card} .move-resolved"), "resolve")
    ui.click(f"{card} .move-resolved")
    dialog = ui.b.wait_for(lambda d: d.find_elements(By.ID, "resolve-dialog"), "the dialog")[0]
    note = f"Replaced the washer ({v.name})"
    dialog.find_element(By.NAME, "comment").send_keys(note)
    dialog.find_element(By.NAME, "photo").send_keys(str(png(tmp_path / "repair.png")))
    ui.check(v, "maintenance-resolve-dialog")
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(
        lambda: demo.get(f"/api/work-orders/{order['id']}")["status"] == "resolved",
        10,
        "the order resolved",
    )
    detail = demo.get(f"/api/work-orders/{order['id']}")
    assert detail["history"][-1]["comment"] == note and detail["history"][-1]["actor"] == "maint"
    photo = httpx.get(
        f"{demo.url}/api/work-orders/{order['id']}/resolution-photo",
        headers=demo.headers("maint"),
        timeout=10,
    )
    assert photo.status_code == 200 and photo.content.startswith(b"\x89PNG"), photo.status_code
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, f"#lane-check {card}"), "check lane")
    assert not ui.css(f"{card} .move-verified"), "maintenance is offered to verify its own work"
    ui.check(v, "maintenance-orders")

    # The order's page: its history with the note, and the repair photo.
    ui.go(f"#/orders/{order['id']}", "#wo-history li")
    assert note in ui.text("#wo-history")
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "img.photo"), "the repair photo")
    ui.check(v, "maintenance-order-page")


# -- dorm manager -------------------------------------------------------------------------------


@BY_VARIANT
def test_dorm_manager_own_buildings_live_alert_and_ack(v: Variant, demo: Demo, ui: UI) -> None:
    ui.login(v, "dorm-a")
    assert ui.d.execute_script("return document.body.dataset.page") == "dorm"
    dorm_a = demo.devices(lambda x: x["building"] == "dorm-a")
    assert "dorm-a-door-01" in dorm_a and "meter-elec-02" in dorm_a, dorm_a
    assert ui.ids(".dev") == {f"dev-{d}" for d in dorm_a}
    assert "dorm-b" not in (ui.d.find_element(By.ID, "view").get_attribute("innerHTML") or "")
    assert ui.css("#late-returns"), "no late-returns section"

    # A door forced open in building A: the alert arrives live, acknowledged with one tap.
    door = f"dorm-a-door-0{v.index + 1}"
    ui.d.execute_script("window.__noReload = 'still here'")
    demo.sim("fault", door, "forced_open")
    found = wait_until(lambda: alert_of(demo, "dorm-a", door, "door_forced"), 20, "the alert")
    assert found is not None
    alert: dict[str, Any] = found
    row = f"#alert-{alert['id']}"
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, row), f"{row} live", timeout=20)
    assert ui.d.execute_script("return window.__noReload") == "still here"
    ui.check(v, "dorm-manager-home")
    comment = f"Checked on site, door closed ({v.name})"
    ui.css(f"{row} input[name=comment]")[0].send_keys(comment)
    ui.click(f"{row} .ack-button")
    wait_until(
        lambda: demo.get(f"/api/alerts/{alert['id']}", "dorm-a")["state"] == "acknowledged",
        10,
        "the alert acknowledged",
    )
    acked = demo.get(f"/api/alerts/{alert['id']}", "dorm-a")
    assert acked["acknowledged_by"] == "dorm-a"
    assert any(h["comment"] == comment for h in acked["history"]), acked["history"]
    ui.b.wait_for(
        lambda _d: ui.css(row) and ui.css(row)[0].get_attribute("data-state") == "acknowledged",
        "the alert shown as acknowledged",
    )

    # Their own door's page: its chart with the alert period drawn.
    ui.go(f"#/device/{door}", "#device-chart svg")
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#device-chart rect.band"), "band")
    assert ui.css(f"#dev-alert-{alert['id']}"), "the alert is not in the device's history"
    ui.check(v, "dorm-manager-device")

    # Another building's devices: not in the UI, not through the API with this session.
    ui.go("#/device/dorm-b-door-01", "#device-missing")
    for path in (
        "/api/devices/dorm-b-door-01",
        "/api/devices/dorm-b-door-01/readings",
        "/api/rules?device_id=dorm-b-door-01",
    ):
        assert ui.fetch_status(path) == 404, path
    listed = {x["id"] for x in ui.fetch_json("/api/devices")}
    assert listed == dorm_a, listed
    assert ui.fetch_json("/api/alerts?device_id=dorm-b-door-01") == []
    site_devices = {x["id"] for x in ui.fetch_json("/api/ui/site")["devices"]}
    assert site_devices == dorm_a, site_devices


# -- a role the site declares ---------------------------------------------------------------


@BY_VARIANT
def test_site_declared_cleaning_role_sees_the_bins_only(v: Variant, demo: Demo, ui: UI) -> None:
    ui.login(v, "cleaning")
    # It acts as maintenance: maintenance's home screen, scoped to the site's bins.
    assert ui.d.execute_script("return document.body.dataset.page") == "board"
    bins = demo.devices(lambda x: x["device_class"] == "waste_bin")
    assert bins and ui.ids(".dev") == {f"dev-{d}" for d in bins}
    assert ("保洁" if v.lang == "zh-CN" else "Cleaning") in ui.text("#who")
    assert {x["device_class"] for x in ui.fetch_json("/api/devices")} == {"waste_bin"}
    ui.check(v, "cleaning-home")


# -- food-safety officer --------------------------------------------------------------------


@BY_VARIANT
def test_food_safety_cold_board_and_fridge_chart(v: Variant, demo: Demo, ui: UI) -> None:
    ui.login(v, "food")
    assert ui.d.execute_script("return document.body.dataset.page") == "cold"
    cold = demo.devices(lambda x: x["device_class"] in COLD_CLASSES)
    assert len(cold) >= 7, cold
    assert ui.ids(".dev") == {f"dev-{d}" for d in cold}
    fridge = names(demo)["canteen-sample-01"][v.lang]
    assert fridge in ui.text("#dev-canteen-sample-01")
    big = ui.text("#dev-canteen-fridge-01 .big-temp")
    assert re.fullmatch(r"-?\d+(\.\d)?", big), big
    ui.check(v, "food-safety-cold-board")

    ui.go("#/device/canteen-fridge-01", "#device-chart svg path.series")
    limits = ui.css("#device-chart line.threshold")
    assert len(limits) >= 3, "the fridge's limits (5, 8 and 0 °C) are not all drawn"
    listed = ui.text("#chart-limits")
    for limit in ("5", "8", "0"):
        assert re.search(rf"[<>] {limit}\b", listed), listed
    ui.check(v, "food-safety-fridge")

    # The cold-chain record's pages (docs/cold-chain.md), each in the page's language.
    for tab in ("excursions", "daily", "signoff", "samples", "calibration", "report"):
        ui.go(f"#/coldchain/{tab}", f"#cc-{tab}[data-loaded]")
        assert not ui.css(f"#cc-{tab} .error"), ui.text(f"#cc-{tab}")
        ui.check(v, f"food-safety-coldchain-{tab}")
    # A calibration entered on the register's form.
    ui.go("#/coldchain/calibration", "#cc-calibration[data-loaded] #calibration-form")
    reference = f"Reference thermometer ({v.name})"
    form = ui.d.find_element(By.ID, "calibration-form")
    ui.d.execute_script(
        "arguments[0].device_id.value = 'canteen-fridge-02'; arguments[0].offset_c.value = '0.3'",
        form,
    )
    form.find_element(By.NAME, "reference").send_keys(reference)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    entered = wait_until(
        lambda: [
            c
            for c in demo.get("/api/cold-chain/calibrations?device=canteen-fridge-02", "food")
            if c["reference"] == reference
        ],
        10,
        "the calibration in the register",
    )
    assert entered[0]["offset_c"] == pytest.approx(0.3) and entered[0]["by"] == "food", entered
    if v.index == 2:  # the signed report, downloaded from the page
        ui.go("#/coldchain/report", "#report-pdf")
        ui.click("#report-pdf")
        ui.wait_css("#report-file-pdf", "the report's file", 60)


# -- logistics admin --------------------------------------------------------------------------


@BY_VARIANT
def test_admin_kpis_rules_dry_run_maintenance_and_verify(v: Variant, demo: Demo, ui: UI) -> None:
    # A repaired order for the KPIs and, at the end, to verify.
    order = demo.post(
        "/api/work-orders",
        {"title": f"Broken light ({v.name})", "category": "electrical", "location": "设备间"},
    )
    for body in (
        {"to": "assigned", "assignee": "maint"},
        {"to": "in_progress"},
        {"to": "resolved", "comment": "new tube"},
    ):
        demo.post(f"/api/work-orders/{order['id']}/transitions", body, "maint")
    ui.login(v, "admin")
    assert ui.d.execute_script("return document.body.dataset.page") == "kpis"
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#kpi-charts svg"), "KPI charts")
    assert len(ui.css("#kpi-tiles .tile")) == 6
    assert len(ui.css("#kpi-charts svg")) == 4
    ui.click("#kpi-by a[data-by=category]")
    ui.b.wait_for(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#kpi-table tr[id^=kpi-category-]"), ""
    )
    ui.check(v, "admin-kpis")

    # Rules in force, and a dry run of a lower limit against the last hour's readings.
    ui.go("#/rules", "#dry-run")
    assert len(ui.css("section[id^=rules-] table")) >= 4
    ui.d.execute_script(
        "const f = document.getElementById('dry-run');"
        "f.device.value = 'canteen-fridge-01'; f.rule.value = 'temp_high_warning';"
        "f.value.value = 'above=1, clear_below=0.5';"
    )
    ui.click("#dry-run button[type=submit]")
    ui.wait_css("#dry-summary, #dry-result .error", "the dry run's result", 60)
    assert ui.css("#dry-summary"), ui.text("#dry-result") + demo.log_tail()
    warning = demo.get("/api/ui/site")["rule_names"]
    rule_name = (warning.get(v.lang) or warning[""])["temp_high_warning"]
    assert rule_name in ui.text("#dry-would"), ui.text("#dry-result")
    ui.check(v, "admin-rules")

    # Users (the security engineer's API) and maintenance windows.
    ui.go("#/users", "#user-maint")
    assert {"user-admin", "user-maint", "user-dorm-a", "user-food"} <= ui.ids("#users .item")
    ui.check(v, "admin-users")
    ui.go("#/maintenance", "#maint-form")
    ui.d.execute_script("document.getElementById('maint-device').value = 'meter-water-01'")
    ui.click("#maint-form button[type=submit]")
    window = wait_until(
        lambda: [w for w in demo.get("/api/maintenance-windows") if w["active"]], 10, "window"
    )[0]
    ui.b.wait_for(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#mw-{window['id']} #end-maintenance"), ""
    )
    ui.check(v, "admin-maintenance")
    ui.click(f"#mw-{window['id']} #end-maintenance")
    wait_until(
        lambda: not [w for w in demo.get("/api/maintenance-windows") if w["active"]], 10, "ended"
    )

    # Verifying a repair asks for a rating (no more "always 5").
    ui.go("#/orders", f"#wo-{order['id']} .move-verified")
    ui.click(f"#wo-{order['id']} .move-verified")
    dialog = ui.b.wait_for(lambda d: d.find_elements(By.ID, "verify-dialog"), "the dialog")[0]
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # no rating yet
    assert dialog.find_element(By.CSS_SELECTOR, "[role=alert]").text, "verified without a rating"
    rating = 2 + v.index
    dialog.find_elements(By.CSS_SELECTOR, ".stars label")[rating - 1].click()
    ui.check(v, "admin-verify-dialog")
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(
        lambda: demo.get(f"/api/work-orders/{order['id']}")["status"] == "verified", 10, "verified"
    )
    assert demo.get(f"/api/work-orders/{order['id']}")["satisfaction"] == rating


# -- teachers and students (no login) ----------------------------------------------------------


@BY_VARIANT
def test_public_report_receipt_and_rating(v: Variant, demo: Demo, ui: UI) -> None:
    ui.open(v, "/")
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#commitments .commitment"), "")
    ui.check(v, "public-home")
    location = f"Dorm A, room 302 ({uuid.uuid4().hex[:6]})"
    form = ui.d.find_element(By.ID, "report")
    form.find_element(By.NAME, "location").send_keys(location)
    form.find_element(By.NAME, "description").send_keys("The tap drips all night long.")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    link = ui.b.wait_for(lambda d: d.find_elements(By.ID, "receipt-link"), "the receipt", 15)[0]
    url = link.get_attribute("href")
    assert url and "/receipt#" in url, url
    ui.check(v, "public-receipt-box")
    order = next(w for w in demo.get("/api/work-orders") if w["location"] == location)
    assert order["source"] == "manual" and order["status"] == "open", order

    def receipt_status() -> str:
        ui.d.get("about:blank")
        ui.d.get(url)
        ui.ready()
        ui.b.wait_for(lambda d: d.find_elements(By.ID, "receipt-status"), "the receipt's status")
        return str(ui.css("#receipt-status")[0].get_attribute("data-status"))

    assert receipt_status() == "open"
    assert not ui.d.find_element(By.ID, "confirm-box").is_displayed()
    ui.check(v, "public-receipt-open")

    def repair(note: str) -> None:
        for body in (
            {"to": "assigned", "assignee": "maint"},
            {"to": "in_progress"},
            {"to": "resolved", "comment": note},
        ):
            demo.post(f"/api/work-orders/{order['id']}/transitions", body, "maint")

    repair("Replaced the washer")
    if v.index == 3:  # this reporter finds it still dripping once: the order goes back
        assert receipt_status() == "resolved"
        ui.d.find_element(By.ID, "confirm-not-fixed").click()
        ui.b.wait_for(
            lambda d: (
                d.find_element(By.ID, "receipt-status").get_attribute("data-status") == "reopened"
            ),
            "the order reopened",
        )
        repair("Replaced the whole tap")
    assert receipt_status() == "resolved"
    assert ui.d.find_element(By.ID, "confirm-box").is_displayed()
    ui.d.find_element(By.ID, "confirm-fixed").click()  # no rating chosen: refused on the page
    assert ui.text("#confirm-result"), "confirmed without a rating"
    rating = (5, 4, 3, 5)[v.index]
    ui.css("#stars label")[rating - 1].click()
    ui.check(v, "public-receipt-confirm")
    ui.d.find_element(By.ID, "confirm-fixed").click()
    ui.b.wait_for(
        lambda d: (
            d.find_element(By.ID, "receipt-status").get_attribute("data-status") == "verified"
        ),
        "the receipt to show the repair confirmed",
    )
    assert ui.css("#receipt-rating")
    done = demo.get(f"/api/work-orders/{order['id']}")
    assert done["status"] == "verified" and done["satisfaction"] == rating, done
    assert done["reopen_count"] == (1 if v.index == 3 else 0)
    assert done["history"][-1]["actor"] == "reporter"
    ui.check(v, "public-receipt-done")

    # The rating is in the public satisfaction figure.
    ratings = [
        w["satisfaction"] for w in demo.get("/api/work-orders") if w["satisfaction"] is not None
    ]
    ui.open(v, "/")
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#kpi-satisfaction"), "")
    tile = ui.css("#kpi-satisfaction .figure")[0]
    share = sum(1 for r in ratings if r >= 4) / len(ratings)
    assert float(tile.get_attribute("data-v") or "nan") == pytest.approx(share, abs=1e-4)
    assert re.search(rf"\b{len(ratings)}\b", ui.text("#kpi-satisfaction")), ui.text(
        "#kpi-satisfaction"
    )


def _percent(rate: float | None) -> str:
    """As the page writes it (Intl percent, at most one decimal)."""
    if rate is None:
        return "–"
    return f"{round(rate * 100, 1):g}%"


def _figures(orders: list[dict[str, Any]]) -> dict[str, Any]:
    def at(s: str | None) -> datetime | None:
        return datetime.fromisoformat(s) if s else None

    resolved = [o for o in orders if o["resolved_at"]]
    on_time = [o for o in resolved if at(o["resolved_at"]) <= at(o["due_at"])]  # type: ignore[operator]
    verified = [o for o in orders if o["status"] == "verified"]
    first = [o for o in verified if o["reopen_count"] == 0]
    ratings = [o["satisfaction"] for o in orders if o["satisfaction"] is not None]

    def rate(a: int, b: int) -> float | None:
        return a / b if b else None

    return {
        "orders": len(orders),
        "on_time_rate": rate(len(on_time), len(resolved)),
        "pass_rate": rate(len(first), len(verified)),
        "satisfaction_4_or_5": rate(sum(1 for r in ratings if r >= 4), len(ratings)),
    }


@pytest.mark.parametrize("v", [VARIANTS[0], VARIANTS[3]], ids=["zh-CN-desktop", "en-phone"])
def test_public_kpis_equal_figures_computed_from_the_orders(v: Variant, demo: Demo, ui: UI) -> None:
    orders: list[dict[str, Any]] = demo.get("/api/work-orders?limit=1000")
    assert any(o["satisfaction"] for o in orders), "the flows above left no rated order"
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {
        "month": defaultdict(list),
        "cat": defaultdict(list),
    }
    for o in orders:
        opened = datetime.fromisoformat(o["created_at"]).astimezone(SITE_TZ)
        groups["month"][opened.strftime("%Y-%m")].append(o)
        groups["cat"][o["category"]].append(o)
    ui.open(v, "/")
    ui.b.wait_for(lambda d: d.find_elements(By.CSS_SELECTOR, "#kpi-month tbody tr[id]"), "")
    ui.check(v, "public-kpis")

    def shown(row: str) -> dict[str, str]:
        cells: dict[str, str] = ui.d.execute_script(
            "const r = document.getElementById(arguments[0]); if (!r) return null;"
            "return Object.fromEntries([...r.querySelectorAll('td[data-k]')]"
            ".map(c => [c.dataset.k, c.innerText.trim()]));",
            row,
        )
        assert cells, f"no row {row} on the page"
        return cells

    overall = _figures(orders)
    for tile, key in (
        ("kpi-on-time", "on_time_rate"),
        ("kpi-pass", "pass_rate"),
        ("kpi-satisfaction", "satisfaction_4_or_5"),
    ):
        assert ui.text(f"#{tile} .figure") == _percent(overall[key]), (tile, overall)
    for kind, prefix in (("month", "kpi-month"), ("cat", "kpi-cat")):
        page_rows = ui.ids(f"#{prefix} tbody tr[id]")
        assert page_rows == {f"{prefix}-{k}" for k in groups[kind]}, page_rows
        for key, members in groups[kind].items():
            expected = _figures(members)
            got = shown(f"{prefix}-{key}")
            assert got["orders"] == str(expected["orders"]), (key, got, expected)
            for field_ in ("on_time_rate", "pass_rate", "satisfaction_4_or_5"):
                assert got[field_] == _percent(expected[field_]), (key, field_, got, expected)


def test_screenshots_are_kept() -> None:
    kept = sorted(ARTIFACTS.glob("*.png"))
    for name in ("maintenance-board", "dorm-manager-home", "food-safety-cold-board", "admin-kpis"):
        for variant in VARIANTS:
            path = ARTIFACTS / f"{name}-{variant.name}.png"
            assert path in kept, f"no screenshot {path}"
