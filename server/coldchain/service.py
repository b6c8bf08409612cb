"""The cold-chain record as one part of the server: its listeners on the domain events,
the tick (days closed, findings, signed day heads, pruning), and the officer's notices.

`install(app, ctx)` is the only thing server/app.py calls: it subscribes the listeners,
mounts the API and runs the tick and the notice worker for the app's lifetime.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import delete, select

from server.audit import heads
from server.audit.keys import load_or_create
from server.coldchain import daily, findings, store
from server.coldchain.devices import cold_devices
from server.coldchain.model import ColdReading
from server.coldchain.recorder import Recorder
from server.coldchain.records_model import Finding
from server.context import ServerContext
from server.notifications.delivery import Ticker, Worker
from server.notifications.dispatch import Message
from server.notifications.render import Text

log = logging.getLogger(__name__)
SEVERITY = {"action_overdue": "major", "samples_at_risk": "critical"}


class ColdChainService:
    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.site = ctx.site
        self.cfg = ctx.site.cold_chain
        self.tz = ctx.site.tz
        self.devices = cold_devices(ctx.site, ctx.profiles, ctx.class_rules)
        self.recorder = Recorder(ctx.sessions, self.devices, self.tz, ctx.clock)
        self.key = load_or_create(ctx.settings.data_dir)
        self._notices: Worker[Message] = Worker(ctx.notifier.dispatcher.handle, "coldchain")
        self._ticker: Ticker | None = None
        self._pruned: datetime | None = None
        # Each device's first open day as of the last tick that committed (daily.close_due).
        self._next_day: dict[str, date] = {}

    def start(self, every_s: float | None) -> None:
        """Its notice worker, and its own ticker unless a cluster's clock leader ticks it."""
        self._notices.start()
        if self._ticker is None and every_s:
            self._ticker = Ticker(self.tick, every_s)
            self._ticker.start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self._notices.stop()

    def drain(self) -> None:
        self._notices.drain()

    def now(self) -> datetime:
        return self.ctx.clock.now()

    # -- the tick ----------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> None:
        now = now or self.now()
        next_day: dict[str, date] = {}

        def close(s: Any) -> None:
            next_day.clear()  # from the committed state at every try of the transaction
            next_day.update(self._next_day)
            self._close(s, now, next_day)

        store.write(self.ctx.sessions, close)
        self._next_day = next_day  # kept only once the tick's records are committed
        store.write(
            self.ctx.sessions, lambda s: findings.due_checks(s, self.site, self.devices, now)
        )
        store.write(self.ctx.sessions, lambda s: heads.sign_due(s, self.key, self.tz, now))
        if self._pruned is None or now - self._pruned > timedelta(hours=6):
            store.write(self.ctx.sessions, lambda s: self._prune(s, now))
            self._pruned = now
        self.notify_pending(now)

    def _close(self, s: Any, now: datetime, next_day: dict[str, date]) -> None:
        for rec in daily.close_due(s, self.devices, self.tz, self.cfg, now, next_day):
            for start, end in rec.figures.get("gaps", []):
                dev = self.devices.get(rec.device_id)
                name = dev.name if dev else rec.device_id
                findings.add(
                    s,
                    key=f"gap:{rec.device_id}:{start}",
                    kind="gap",
                    day=rec.day,
                    at=now,
                    building=rec.building,
                    device_id=rec.device_id,
                    detail=f"{name}: no data from {start} to {end} (unknown, not in range)",
                    notify=False,
                )

    def _prune(self, s: Any, now: datetime) -> None:
        cut = now - self.cfg.keep_readings
        s.execute(delete(ColdReading).where(ColdReading.measured_at < cut))

    def notify_pending(self, now: datetime | None = None) -> None:
        """Queue one notice per finding not told yet (the log keeps it once per channel)."""
        now = now or self.now()

        def pending(s: Any) -> list[Finding]:
            rows = list(
                s.scalars(
                    select(Finding).where(Finding.notify.is_(True), Finding.notified_at.is_(None))
                )
            )
            for r in rows:
                r.notified_at = now
            return rows

        for f in store.write(self.ctx.sessions, pending):
            self.notice(f)

    def notice(self, f: Finding) -> None:
        severity = SEVERITY.get(f.kind, "warning")
        routing = self.ctx.notifier.routing
        text = Text(
            f"[cold chain] {f.kind.replace('_', ' ')}: {f.detail}"[:180],
            f"{self.site.name}: {f.detail}\nfinding #{f.id}, {f.day}; "
            "record an action or a correction in the cold-chain log.",
        )
        for ch in routing.channels(("food_safety",), f.building, severity):
            self._notices.put(Message(f"coldchain:{f.id}", "finding", ch, text))


def install(app: FastAPI, ctx: ServerContext, *, own_ticker: bool = True) -> ColdChainService:
    """Listeners, API routes and the tick of the cold-chain record (one call from app.py).
    In a cluster (`own_ticker=False`) the worker leading the clock runs `tick` instead."""
    from server.api.routes import cold_chain, cold_chain_records

    service = ColdChainService(ctx)
    service.recorder.subscribe_to(ctx.bus)
    app.state.cold_chain = service
    app.include_router(cold_chain.router)
    app.include_router(cold_chain_records.router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            service.start(max(ctx.settings.tick_seconds, 1.0) if own_ticker else None)
            try:
                yield state
            finally:
                service.stop()

    app.router.lifespan_context = lifespan
    return service
