"""Round times from the site's schedule (core/patrols.py) and judging rounds from scans
(server/patrols/rounds.py): pure, on event time."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.patrols import rounds_of_night
from core.profiles import load_profiles
from core.site import DEFAULT_SITE_FILE, PatrolRoute, SiteConfig, load_site
from server.patrols.rounds import Scan, judge

SITE = load_site(DEFAULT_SITE_FILE, load_profiles())
TZ = ZoneInfo("Asia/Shanghai")
ROUTE = SITE.patrols.routes[0]
CPS = ROUTE.checkpoints


def local(day: int, hhmm: str) -> datetime:
    h, m = (int(p) for p in hhmm.split(":"))
    return datetime(2026, 11, day, h, m, tzinfo=TZ)


def test_demo_route_rounds_every_30_min_until_23_then_every_2_h() -> None:
    rounds = rounds_of_night(SITE, ROUTE, date(2026, 11, 24))
    assert [(r.number, r.starts_at.strftime("%d %H:%M")) for r in rounds] == [
        (1, "24 22:30"),
        (2, "24 23:00"),
        (3, "25 01:00"),
        (4, "25 03:00"),
        (5, "25 05:00"),
    ]
    assert all(r.due_at - r.starts_at == timedelta(minutes=40) for r in rounds)


def test_no_rounds_on_a_night_the_calendar_closes_the_building() -> None:
    assert rounds_of_night(SITE, ROUTE, date(2026, 10, 2)) == []  # National Day
    holding = PatrolRoute.model_validate({**ROUTE.model_dump(by_alias=True), "closed_days": "hold"})
    assert len(rounds_of_night(SITE, holding, date(2026, 10, 2))) == 5


def test_overlapping_rounds_share_no_scan_and_order_is_flagged() -> None:
    rounds = rounds_of_night(SITE, ROUTE, date(2026, 11, 24))[:2]  # 22:30-23:10, 23:00-23:40
    scans = [
        Scan(1, CPS[0], local(24, "22:31")),
        Scan(2, CPS[2], local(24, "22:35")),  # the electrical room before the corridors
        Scan(3, CPS[1], local(24, "22:40")),
        Scan(4, CPS[0], local(24, "23:05")),  # in both rounds' time: round 1 has cp-01
        Scan(5, "elsewhere", local(24, "23:06")),
    ]
    results, counted = judge(CPS, rounds, scans, local(25, "00:00"))
    assert [(r.status, r.scanned, r.out_of_order) for r in results] == [
        ("complete", (CPS[0], CPS[2], CPS[1]), True),
        ("incomplete", (CPS[0],), False),
    ]
    assert counted == {1: 1, 2: 1, 3: 1, 4: 2}


def test_rounds_not_yet_over_are_open_or_upcoming() -> None:
    rounds = rounds_of_night(SITE, ROUTE, date(2026, 11, 24))
    results, _ = judge(CPS, rounds, [], local(24, "23:20"))
    assert [r.status for r in results] == ["missed", "open", "upcoming", "upcoming", "upcoming"]


def test_site_refuses_a_route_through_an_unknown_checkpoint() -> None:
    doc = SITE.model_dump(by_alias=True)
    doc["patrols"]["routes"][0]["checkpoints"] = ("dorm-a-cp-01", "dorm-a-cp-09")
    with pytest.raises(ValueError, match="route 'dorm-a-night' names unknown checkpoint"):
        SiteConfig.model_validate(doc)
