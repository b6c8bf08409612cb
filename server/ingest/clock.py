"""The clock jobs of a cluster (devices going offline, rule delays, escalations, SLA notices,
patrol rounds), run by one worker at a time: the one holding a PostgreSQL advisory lock on a
connection of its own. The lock goes with the connection, so when the holder dies (even by
kill -9) PostgreSQL releases it and the next worker to try takes over within one period.
On SQLite there is one server, which always leads.

The jobs are idempotent against the database (a delay that ran out raised its alert; a
notice once sent is recorded), so a new leader repeating a period does no harm; two leaders
at once cannot happen while the lock is held.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from core.clock import Clock

log = logging.getLogger(__name__)
LOCK_KEY = 0x0CF3_C10C  # pg_try_advisory_lock key of "the clock"

Job = Callable[[datetime], None]


class ClockLeader:
    def __init__(
        self,
        engine: Engine,
        jobs: Sequence[tuple[str, Job]],
        clock: Clock,
        every_s: float,
        registry: CollectorRegistry,
    ) -> None:
        self._engine = engine
        self._jobs = jobs
        self._clock = clock
        self._every = every_s
        self._stop = threading.Event()
        self._conn: Connection | None = None
        self._thread = threading.Thread(target=self._run, name="server-clock", daemon=True)
        self.leading = False
        self.gauge = Gauge(
            "server_clock_leader", "1 while this worker runs the clock jobs", registry=registry
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._release()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            if not self._lead():
                continue
            now = self._clock.now()
            for name, job in self._jobs:
                try:
                    job(now)
                except Exception:
                    log.exception("clock job %s failed", name)

    def _lead(self) -> bool:
        if self._engine.dialect.name != "postgresql":
            return True
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                self.leading = False
            if self.leading:
                self._conn.execute(text("SELECT 1"))  # still ours while the connection lives
            else:
                got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY})
                self.leading = bool(got.scalar())
                if self.leading:
                    log.info("this worker now runs the clock jobs")
        except Exception:
            log.warning("clock lock connection lost; another worker may lead now")
            self._release()
        self.gauge.set(1 if self.leading else 0)
        return self.leading

    def _release(self) -> None:
        self.leading = False
        if self._conn is not None:
            try:
                self._conn.close()  # the lock ends with the session
            except Exception:
                log.debug("closing the clock lock connection failed", exc_info=True)
            self._conn = None
