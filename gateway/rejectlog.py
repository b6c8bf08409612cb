"""Logging of rejected input, bounded: a device flooding bad payloads is counted in full
(gateway/metrics.py) but cannot flood the log or slow the ingest thread with log writes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.readings import Rejection


@dataclass(slots=True)
class _Window:
    started: float
    logged: int = 0
    suppressed: int = 0


class RejectionLog:
    """Logs the first `burst` rejections per (reason, source) in each `window_s`; the rest
    of the window is summarised in one line when the next one of that kind arrives."""

    def __init__(
        self,
        logger: logging.Logger,
        burst: int = 5,
        window_s: float = 60.0,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._burst = burst
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}
        self._lock = threading.Lock()  # the ingest thread and every serial bus log here

    def log(self, rej: Rejection, exc_info: BaseException | None = None) -> bool:
        """Log `rej` unless its kind is over budget; True if a line was written for it."""
        now = self._clock()
        with self._lock:
            key = self._key(rej, now)
            window = self._windows.get(key)
            summary = 0
            if window is None or now - window.started >= self._window_s:
                summary = window.suppressed if window is not None else 0
                window = self._windows[key] = _Window(started=now)
            write = window.logged < self._burst
            if write:
                window.logged += 1
            else:
                window.suppressed += 1
        if summary:
            self._log.warning(
                "%d more %s rejections from %s were not logged in the last %.0f s",
                summary,
                rej.reason.value,
                key[1],
                self._window_s,
            )
        if write:
            self._log.warning(
                "rejected %s from %s: %s",
                rej.reason.value,
                rej.source,
                rej.detail,
                exc_info=exc_info,
            )
        return write

    def _key(self, rej: Rejection, now: float) -> tuple[str, str]:
        key = (rej.reason.value, rej.source)
        if key in self._windows or len(self._windows) < self._max_keys:
            return key
        # Many distinct sources (random topics): drop closed windows, then share one budget.
        for old in [k for k, w in self._windows.items() if now - w.started >= self._window_s]:
            if self._windows[old].suppressed == 0:
                del self._windows[old]
        if len(self._windows) < self._max_keys:
            return key
        return (rej.reason.value, "(many sources)")
