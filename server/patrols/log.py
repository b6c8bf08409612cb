"""What the patrol API shows: the night's log of a building (its routes' rounds with their
scans and status, and every scan of the night with the round it counted for), and the
share of rounds completed per building and ISO week (a KPI; the public page shows it
without buildings). Reads only; judged rounds come from their rows, rounds not yet due are
worked out from the scans so far."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.patrols import rounds_of_night
from core.site import PatrolRoute, SiteConfig
from server.patrols.model import PatrolRound
from server.patrols.rounds import judge
from server.patrols.service import as_scans, load_scans, night_span


def _iso(at: datetime) -> str:
    return at.isoformat()


def _name(site: SiteConfig, checkpoint: str) -> str:
    cp = site.patrols.checkpoint(checkpoint)
    return cp.name if cp is not None else checkpoint


def night_log(
    s: Session, site: SiteConfig, building: str, night: date, now: datetime
) -> dict[str, Any]:
    start, end = night_span(site, night)
    rows = load_scans(s, building, start, end)
    judged = {
        (r.route, r.starts_at): r
        for r in s.scalars(
            select(PatrolRound).where(PatrolRound.building == building, PatrolRound.night == night)
        )
    }
    counted: dict[int, tuple[str, int]] = {}
    routes = []
    for route in (r for r in site.patrols.routes if r.building == building):
        planned = rounds_of_night(site, route, night)
        results, assigned = judge(route.checkpoints, planned, as_scans(rows), now)
        counted |= {scan_id: (route.id, n) for scan_id, n in assigned.items()}
        by_id = {row.id: row for row in rows}
        rounds = []
        for res in results:
            r = res.planned
            row = judged.get((route.id, r.starts_at))
            rounds.append(
                {
                    "number": r.number,
                    "starts_at": _iso(r.starts_at),
                    "due_at": _iso(r.due_at),
                    "status": row.status if row is not None else res.status,
                    "judged": row is not None,
                    "scans": [
                        {
                            "checkpoint": sc.checkpoint,
                            "at": _iso(sc.at),
                            "by": by_id[sc.id].by,
                            "source": by_id[sc.id].source,
                        }
                        for sc in res.scans
                    ],
                    "missing": list(row.missing) if row is not None else list(res.missing),
                    "out_of_order": res.out_of_order,
                }
            )
        routes.append(_route(site, route, rounds))
    return {
        "building": building,
        "date": night.isoformat(),
        "from": _iso(start),
        "to": _iso(end),
        "routes": routes,
        "scans": [
            {
                "id": row.id,
                "checkpoint": row.checkpoint,
                "checkpoint_name": _name(site, row.checkpoint),
                "at": _iso(row.at),
                "by": row.by,
                "source": row.source,
                "route": counted[row.id][0] if row.id in counted else None,
                "round": counted[row.id][1] if row.id in counted else None,
                "off_round": row.id not in counted,
            }
            for row in rows
        ],
    }


def _route(site: SiteConfig, route: PatrolRoute, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": route.id,
        "name": route.name,
        "translations": {k: v.name for k, v in route.translations.items() if v.name},
        "checkpoints": [{"id": c, "name": _name(site, c)} for c in route.checkpoints],
        "rounds": rounds,
    }


def week_of(night: date) -> str:
    year, week, _ = night.isocalendar()
    return f"{year}-W{week:02d}"


def completion(
    s: Session, start: date | None, end: date | None, buildings: set[str] | None
) -> list[dict[str, Any]]:
    """Judged rounds per building and ISO week of their night: how many, how many complete,
    and the share (None with no rounds). `buildings` None: every building."""
    q = select(PatrolRound.building, PatrolRound.night, PatrolRound.status)
    if start is not None:
        q = q.where(PatrolRound.night >= start)
    if end is not None:
        q = q.where(PatrolRound.night <= end)
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for building, night, status in s.execute(q):
        if buildings is not None and building not in buildings:
            continue
        t = tally[(building, week_of(night))]
        t[0] += 1
        t[1] += status == "complete"
    return [
        {
            "building": b,
            "week": w,
            "rounds": n,
            "completed": done,
            "completion_rate": round(done / n, 4) if n else None,
        }
        for (b, w), (n, done) in sorted(tally.items())
    ]


def completion_by_week(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same, all buildings together: what the public page shows (no place named)."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        tally[row["week"]][0] += row["rounds"]
        tally[row["week"]][1] += row["completed"]
    return [
        {"week": w, "rounds": n, "completed": d, "completion_rate": round(d / n, 4) if n else None}
        for w, (n, d) in sorted(tally.items())
    ]
