"""VictoriaMetrics (single node) for the tests: InfluxDB line protocol in, export out."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.harness.process import (
    LOOPBACK,
    START_TIMEOUT,
    Process,
    ProcessHandle,
    find_program,
    free_port,
    http_ok,
    subdir,
)

__all__ = ["VictoriaMetrics", "start_victoria_metrics"]


@dataclass(frozen=True)
class VictoriaMetrics(ProcessHandle):
    """A running single-node VictoriaMetrics (Debian's 1.79) on ``host:port``.

    How it stores InfluxDB line protocol (``/write``, ``/api/v2/write``,
    ``/influx/write``): each *field* becomes its own series named
    ``{measurement}_{field}`` (``-influxMeasurementFieldSeparator``, default ``_``); the
    tags become labels; the ``db`` query parameter (v1) becomes label ``db``, and on the v2
    endpoint ``bucket`` is taken as ``db`` (``org`` is accepted and ignored). Booleans are
    stored as 1/0; string fields are dropped. Timestamps are trimmed to milliseconds, and
    samples outside the retention window are silently dropped: we start it with
    ``-retentionPeriod=100y`` so fixed past test times are kept, but samples more than about
    2 days in the future are still refused by VictoriaMetrics itself.

    Newly written samples are buffered for up to a second before search sees them;
    :meth:`flush` (``/internal/force_flush``) makes them visible, and :meth:`export` calls it.
    """

    host: str
    port: int
    url: str
    data_dir: Path
    log_path: Path
    _process: Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start it again on the same port and data folder (after ``stop()``)."""
        self._process.start()
        return self._process.wait_ready(
            lambda: http_ok(f"{self.url}/health"), "200 on /health", timeout
        )

    def write(
        self,
        lines: str | Iterable[str],
        *,
        db: str | None = None,
        precision: str = "ns",
    ) -> None:
        """POST line protocol to the v1 ``/write`` endpoint (raises on a non-2xx answer)."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        params = {"precision": precision}
        if db is not None:
            params["db"] = db
        r = httpx.post(f"{self.url}/write", params=params, content=body.encode(), timeout=10)
        r.raise_for_status()

    def flush(self) -> None:
        """Make every sample written so far searchable (``/internal/force_flush``)."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def export(
        self, match: str, *, start: str | float | None = None, end: str | float | None = None
    ) -> list[dict[str, Any]]:
        """Series matching a selector, e.g. ``'fridge_temp'`` or ``'{__name__=~"fridge_.*"}'``.

        Returns one dict per series from ``/api/v1/export``: ``{"metric": {"__name__": ...,
        labels...}, "values": [...], "timestamps": [ms, ...]}``, sorted by ``__name__`` then
        labels; flushes first so what was just written is there.
        """
        self.flush()
        params: dict[str, str] = {"match[]": match}
        if start is not None:
            params["start"] = str(start)
        if end is not None:
            params["end"] = str(end)
        r = httpx.get(f"{self.url}/api/v1/export", params=params, timeout=30)
        r.raise_for_status()
        series = [json.loads(line) for line in r.text.splitlines() if line.strip()]
        series.sort(key=lambda s: sorted(s["metric"].items()))
        return series

    def wait_for_export(
        self,
        match: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Poll :meth:`export` until ``predicate(series)`` holds; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            series = self.export(match)
            if predicate(series):
                return series
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"VictoriaMetrics export of {match!r} did not match within "
                    f"{timeout:g} s; last answer: {series!r}"
                )
            time.sleep(0.1)


def start_victoria_metrics(tmp: Path, *, timeout: float = START_TIMEOUT) -> VictoriaMetrics:
    """Start ``victoria-metrics`` on 127.0.0.1 with its data in ``tmp``; waits for /health."""
    exe = find_program("victoria-metrics", "victoria-metrics", "CFM_VICTORIA_METRICS_BIN")
    port = free_port()
    base = subdir(tmp, "victoria-metrics-")
    data_dir = base / "data"
    argv = [
        exe,
        f"-httpListenAddr={LOOPBACK}:{port}",
        f"-storageDataPath={data_dir}",
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",
        "-loggerLevel=WARN",
        "-memory.allowedPercent=10",
        # As deployed (docs/timeseries.md): samples of one series with the same millisecond
        # collapse into one, so a batch the gateway replays after a crash is not doubled.
        "-dedup.minScrapeInterval=1ms",
    ]
    process = Process("victoria-metrics", argv, base / "victoria-metrics.log", cwd=base)
    handle = VictoriaMetrics(
        host=LOOPBACK,
        port=port,
        url=f"http://{LOOPBACK}:{port}",
        data_dir=data_dir,
        log_path=process.log_path,
        _process=process,
    )
    process.start()
    process.wait_ready(lambda: http_ok(f"{handle.url}/health"), "200 on /health", timeout)
    return handle
