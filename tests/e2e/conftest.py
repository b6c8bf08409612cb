"""Browser-test artifacts: screenshots kept in tests/e2e/artifacts/ (ignored by git); the
ones this run wrote are listed at its end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ARTIFACTS.is_dir():
        return
    fresh = sorted(p for p in ARTIFACTS.rglob("*.png") if p.stat().st_mtime >= _STARTED)
    if fresh:
        terminalreporter.section("web UI screenshots")
        for path in fresh:
            terminalreporter.write_line(str(path))
