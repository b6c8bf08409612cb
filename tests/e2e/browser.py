"""Helpers for the browser tests: a live in-process server and Debian's headless Chromium.

The browser is the system's own Chromium driven through its chromedriver (Debian packages
`chromium` and `chromium-driver`, installed by scripts/install-system-deps.sh); nothing here
downloads a browser. A missing browser fails the tests, it never skips them.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "run scripts/install-system-deps.sh, or: DEBIAN_FRONTEND=noninteractive apt-get install "
    "-y --no-install-recommends chromium chromium-driver"
)
# Flags that let Chromium run headless as root on a closed network.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"headless browser missing: {', '.join(missing)} not found; {INSTALL_HINT}",
            pytrace=False,
        )


class Browser:
    """One Chromium for a test module, with a fresh profile in a temporary directory."""

    def __init__(self, accept_language: str = "en-US,en") -> None:
        require_browser()
        self.profile = Path(tempfile.mkdtemp(prefix="cfm-e2e-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # The browser's language (Accept-Language and navigator.languages), as a person's is.
        options.add_argument(f"--lang={accept_language.split(',')[0]}")
        options.add_experimental_option("prefs", {"intl.accept_languages": accept_language})
        try:
            self.driver: WebDriver = webdriver.Chrome(
                options=options, service=Service(executable_path=str(CHROMEDRIVER))
            )
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(20)

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- page helpers ----------------------------------------------------------------------
    def wait(self, timeout: float = 10) -> WebDriverWait[WebDriver]:
        return WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )

    def wait_for(self, predicate: Any, what: str, timeout: float = 10) -> Any:
        """Wait until predicate(driver) is truthy; fail naming what never showed."""
        try:
            return self.wait(timeout).until(predicate)
        except Exception as exc:  # TimeoutException, or a stale element mid-render
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}; page text:\n"
                f"{self.text('body')[:3000]}"
            ) from exc

    def text(self, css: str) -> str:
        els = self.driver.find_elements(By.CSS_SELECTOR, css)
        return els[0].text if els else ""

    def row_ids(self, table: str) -> set[str]:
        """Ids of a table's body rows, read in one go (the page re-renders whole tables)."""
        ids: list[str] = self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' tbody tr')].map(r => r.id)",
            table,
        )
        return set(ids)

    def cells(self, row_id: str) -> list[str]:
        """The visible text of one table row's cells, read in one go; [] if no such row."""
        texts: list[str] = self.driver.execute_script(
            "const r = document.getElementById(arguments[0]);"
            "return r ? [...r.cells].map(c => c.innerText.trim()) : []",
            row_id,
        )
        return texts

    def fresh_app(self, url: str) -> None:
        """Open /app with no stored login."""
        self.driver.get(f"{url}/app")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(f"{url}/app")

    def submit_login(self, url: str, username: str, password: str) -> None:
        self.fresh_app(url)
        form = self.driver.find_element(By.ID, "login")
        form.find_element(By.NAME, "username").send_keys(username)
        form.find_element(By.NAME, "password").send_keys(password)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def login(self, url: str, username: str, password: str = "demo") -> None:
        """Log in through the form and wait until the dashboard has loaded its tables."""
        self.submit_login(url, username, password)
        self.wait_for(
            lambda d: (
                d.find_element(By.ID, "dash").is_displayed()
                and d.find_elements(By.CSS_SELECTOR, "#devices tbody tr")
            ),
            f"the dashboard of {username}",
        )

    def screenshot_full_page(self, path: Path) -> None:
        """The whole page, not only the window (Chrome DevTools' beyond-viewport capture)."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))
