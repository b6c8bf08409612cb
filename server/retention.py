"""Periodic clean-up, once at start and then hourly: sessions and stream tickets that ended,
and the personal data of reported work orders past their retention (the reporter's photo,
the technician's resolution photo and the contact, `report_retention` after verification).
Its own thread; nothing else waits on it."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, utcnow
from server.auth import sessions as auth_sessions
from server.work_orders import photos
from server.work_orders.model import WorkOrder

log = logging.getLogger(__name__)


def photo_folders(data_dir: Path) -> list[Path]:
    """Where the reporter's and the technician's photos are kept (one file per order)."""
    return [data_dir / "photos", data_dir / "photos" / "resolution"]


def expire_reports(
    sessions: sessionmaker[Session], data_dir: Path, now: datetime, retention: timedelta
) -> int:
    """Delete photos and contact of orders verified before now - retention; returns how
    many orders were cleaned."""
    cleaned = 0
    with sessions.begin() as s:
        orders = s.scalars(
            select(WorkOrder).where(
                WorkOrder.verified_at.is_not(None), WorkOrder.verified_at < now - retention
            )
        )
        for wo in orders:
            found = [photos.find(folder, wo.id) for folder in photo_folders(data_dir)]
            files = [f[0] for f in found if f is not None]
            if not files and wo.contact is None:
                continue
            for path in files:
                path.unlink(missing_ok=True)
            wo.contact = None
            cleaned += 1
    if cleaned:
        log.info("retention: personal data of %d verified orders deleted", cleaned)
    return cleaned


class Housekeeping:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        data_dir: Path,
        clock: Clock,
        retention: timedelta,
        every_s: float = 3600.0,
    ) -> None:
        self.sessions = sessions
        self.data_dir = data_dir
        self.clock = clock
        self.retention = retention
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        with self.sessions.begin() as s:
            auth_sessions.purge(s, utcnow())
        expire_reports(self.sessions, self.data_dir, self.clock.now(), self.retention)

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:
                log.exception("housekeeping failed; next try in %.0f s", self.every_s)
            if self._stop.wait(self.every_s):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="server-housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
