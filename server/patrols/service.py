"""Patrols as one part of the server: scans recorded (a reader's `patrol_scan` event, or a
QR code through the API), rounds judged once their time is up (a PatrolRoundMissed event
for each missed or incomplete one, which the notifier routes to the route's roles), on a
ticker of its own.

Judging is on the clock: a route's rounds due since it was last judged are judged at the
next tick, once (the route's `judged_until` and the rounds' unique start make a restart or
a second server judge nothing twice). Rounds due before a route was first seen are not
judged: the record begins then. A scan arriving after its round was judged (a reader's
buffer) is kept in the log but does not change the judged round.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.patrols import PlannedRound, rounds_of_night
from core.site import PatrolRoute, SiteConfig
from server.events.bus import EventBus
from server.events.types import (
    DeviceEventReceived,
    DomainEvent,
    PatrolRoundMissed,
    PatrolScanned,
)
from server.patrols.model import PatrolRound, PatrolRouteState, PatrolScan
from server.patrols.rounds import Scan, judge

log = logging.getLogger(__name__)
SCAN_EVENT = "patrol_scan"  # the device event a checkpoint reader sends (its profile's map)
MAX_NIGHTS_BACK = 31  # after a long outage, rounds older than this are not judged


def night_span(site: SiteConfig, night: date) -> tuple[datetime, datetime]:
    """A night's log holds the scans from noon of its evening to noon the next day."""
    noon = datetime.combine(night, time(12), site.tz)
    return noon, noon + timedelta(days=1)


def load_scans(s: Session, building: str, start: datetime, end: datetime) -> list[PatrolScan]:
    return list(
        s.scalars(
            select(PatrolScan)
            .where(PatrolScan.building == building, PatrolScan.at >= start, PatrolScan.at < end)
            .order_by(PatrolScan.at, PatrolScan.id)
        )
    )


def as_scans(rows: list[PatrolScan]) -> list[Scan]:
    return [Scan(r.id, r.checkpoint, r.at) for r in rows]


class PatrolService:
    def __init__(
        self, sessions: sessionmaker[Session], site: SiteConfig, bus: EventBus, clock: Clock
    ) -> None:
        self.sessions = sessions
        self.site = site
        self.bus = bus
        self.clock = clock
        self.by_device = {c.device: c for c in site.patrols.checkpoints if c.device is not None}

    # -- scans ---------------------------------------------------------------------------
    def record(
        self,
        *,
        checkpoint: str,
        at: datetime,
        by: str,
        source: str,
        event_id: str | None = None,
    ) -> PatrolScan | None:
        """Keep a scan (None: a reader's event already kept). Publishes PatrolScanned."""
        cp = self.site.patrols.checkpoint(checkpoint)
        if cp is None:
            raise KeyError(checkpoint)
        with self.sessions.begin() as s:
            if event_id is not None and s.scalar(
                select(PatrolScan.id).where(PatrolScan.event_id == event_id)
            ):
                return None
            scan = PatrolScan(
                event_id=event_id,
                building=cp.building,
                checkpoint=cp.id,
                at=at,
                by=by[:128],
                source=source,
                recorded_at=self.clock.now(),
            )
            s.add(scan)
            s.flush()
        self.bus.publish(
            PatrolScanned(
                at=at,
                scan_id=scan.id,
                building=cp.building,
                checkpoint=cp.id,
                by=scan.by,
                source=source,
            )
        )
        return scan

    def subscribe_to(self, bus: EventBus) -> None:
        bus.subscribe(DeviceEventReceived, self.on_device_event, name="patrols.scans")

    def on_device_event(self, ev: DeviceEventReceived) -> None:
        e = ev.event
        cp = self.by_device.get(e.device_id)
        if e.kind != SCAN_EVENT or cp is None:
            return
        card = e.attrs.get("card")
        by = f"card:{card}" if card is not None else "card:unknown"
        self.record(checkpoint=cp.id, at=e.measured_at, by=by, source="reader", event_id=e.event_id)

    # -- judging -------------------------------------------------------------------------
    def tick(self, now: datetime | None = None) -> None:
        now = now or self.clock.now()
        events: list[DomainEvent] = []
        with self.sessions.begin() as s:
            for route in self.site.patrols.routes:
                self._judge_route(s, route, now, events)
        self.bus.publish_all(events)

    def _judge_route(
        self, s: Session, route: PatrolRoute, now: datetime, events: list[DomainEvent]
    ) -> None:
        state = s.get(PatrolRouteState, route.id)
        if state is None:  # the record of this route begins now
            s.add(PatrolRouteState(route=route.id, judged_until=now))
            return
        since = state.judged_until
        if now <= since:
            return
        for night in self._nights(since, now):
            planned = rounds_of_night(self.site, route, night)
            due = [r for r in planned if since < r.due_at <= now]
            if due:
                self._judge_night(s, route, planned, due, now, events)
        state.judged_until = now

    def _nights(self, since: datetime, now: datetime) -> Iterator[date]:
        first = since.astimezone(self.site.tz).date() - timedelta(days=1)
        last = now.astimezone(self.site.tz).date()
        first = max(first, last - timedelta(days=MAX_NIGHTS_BACK))
        while first <= last:
            yield first
            first += timedelta(days=1)

    def _judge_night(
        self,
        s: Session,
        route: PatrolRoute,
        planned: list[PlannedRound],
        due: list[PlannedRound],
        now: datetime,
        events: list[DomainEvent],
    ) -> None:
        rows = load_scans(s, route.building, planned[0].starts_at, planned[-1].due_at)
        results, _ = judge(route.checkpoints, planned, as_scans(rows), now)
        for res in results:
            r = res.planned
            if r not in due or s.scalar(
                select(PatrolRound.id).where(
                    PatrolRound.route == route.id, PatrolRound.starts_at == r.starts_at
                )
            ):
                continue
            row = PatrolRound(
                route=route.id,
                building=route.building,
                night=r.night,
                number=r.number,
                starts_at=r.starts_at,
                due_at=r.due_at,
                status=res.status,
                scanned=list(res.scanned),
                missing=list(res.missing),
                out_of_order=res.out_of_order,
                judged_at=now,
            )
            s.add(row)
            s.flush()
            log.info("patrol round %s #%d of %s: %s", route.id, r.number, r.night, res.status)
            if res.status in ("missed", "incomplete"):
                events.append(
                    PatrolRoundMissed(
                        at=r.due_at,
                        round_id=row.id,
                        route=route.id,
                        route_name=route.name,
                        building=route.building,
                        night=r.night,
                        number=r.number,
                        starts_at=r.starts_at,
                        due_at=r.due_at,
                        status=res.status,
                        missing=res.missing,
                        notify=route.notify,
                    )
                )
