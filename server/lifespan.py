"""Run a part's background work (a ticker) for exactly the app's lifetime, inside the
lifespan app.py built, so parts can be installed with one call each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from server.notifications.delivery import Ticker


def run_with_app(app: FastAPI, start: Callable[[], None], stop: Callable[[], None]) -> None:
    """`start` once the app's own start-up is done, `stop` before its shut-down runs."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            start()
            try:
                yield state
            finally:
                stop()

    app.router.lifespan_context = lifespan


def tick_with_app(app: FastAPI, tick: Callable[[], None], every_s: float | None) -> None:
    """Call `tick` every `every_s` seconds on its own thread while the app runs (None: never;
    tests call the tick themselves on their clock)."""
    if not every_s:
        return
    ticker = Ticker(tick, every_s)
    run_with_app(app, ticker.start, ticker.stop)
