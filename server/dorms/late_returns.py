"""Late returns (晚归): a card entry into a dorm after its curfew is a record for the dorm
manager's and counsellor's daily list, not an alarm (shared/DOMAIN.md).

The night of day D runs from the building's curfew on D to `NIGHT_ENDS` on D+1, in the
site's time zone. Days the building is closed by the site calendar keep no list. Cards are
the gateway's pseudonyms; names are matched only by roles that need them, outside this table.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from core.readings import DeviceEvent
from core.site import SiteConfig
from server.db.base import Base, UtcDateTime
from server.events.bus import EventBus
from server.events.types import DeviceEventReceived

NIGHT_ENDS = time(5, 0)


class LateReturn(Base):
    __tablename__ = "late_returns"
    __table_args__ = (UniqueConstraint("event_id", name="uq_late_returns_event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200))  # replays record nothing twice
    device_id: Mapped[str] = mapped_column(String(64))
    building: Mapped[str] = mapped_column(String(64), index=True)
    night: Mapped[date] = mapped_column(index=True)  # the evening the night starts
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    card: Mapped[str | None] = mapped_column(String(64), nullable=True)


def night_of(site: SiteConfig, building: str, at: datetime) -> date | None:
    """The night (its evening's date) `at` falls in after curfew, or None if before curfew.

    The curfew is the building's for that night (the site calendar may change it for a
    period or some weekdays). A curfew after midnight (00:30) belongs to the night before.
    """
    local = at.astimezone(site.tz)
    t = local.time()
    night = local.date() - timedelta(days=1) if t < NIGHT_ENDS else local.date()
    curfew = site.curfew_for(building, night)
    if curfew is None:
        return None
    if curfew < NIGHT_ENDS:  # after midnight: late from the curfew until morning
        late = local.date() > night and t >= curfew
    else:  # the evening: late from the curfew, and all of the small hours
        late = local.date() > night or t >= curfew
    if not late:
        return None
    if site.is_closed(building, datetime.combine(night, time(12), site.tz)):
        return None
    return night


def record(s: Session, site: SiteConfig, building: str | None, e: DeviceEvent) -> bool:
    """Keep a late return for a granted card coming in after curfew; True if recorded."""
    if e.kind != "card_granted" or building is None or e.attrs.get("reader") == "out":
        return False
    night = night_of(site, building, e.measured_at)
    if night is None:
        return False
    exists = s.scalar(select(LateReturn.id).where(LateReturn.event_id == e.event_id))
    if exists is not None:
        return False
    card = e.attrs.get("card")
    s.add(
        LateReturn(
            event_id=e.event_id,
            device_id=e.device_id,
            building=building,
            night=night,
            at=e.measured_at,
            card=str(card) if card is not None else None,
        )
    )
    s.flush()  # a second copy of the event in the same batch now finds this one
    return True


class LateReturnRecorder:
    """Listens for card entries (DeviceEventReceived) and keeps the late ones. Runs after the
    batch's commit, in its own transaction; idempotent on the event id, as redelivery needs."""

    def __init__(self, sessions: sessionmaker[Session], site: SiteConfig) -> None:
        self.sessions = sessions
        self.site = site

    def subscribe_to(self, bus: EventBus) -> None:
        bus.subscribe(DeviceEventReceived, self.on_event, name="late_returns")

    def on_event(self, ev: DeviceEventReceived) -> None:
        if ev.event.kind != "card_granted":
            return
        with self.sessions.begin() as s:
            record(s, self.site, ev.building, ev.event)
