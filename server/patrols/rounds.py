"""Judging a night's rounds from its scans: pure, on event time.

Each scan at one of the route's checkpoints counts for the earliest round whose time
([start, start + within + grace)) holds it and which has no scan of that checkpoint yet, so
rounds whose times overlap share no scan. A round whose time is up is `complete` (every
checkpoint scanned), `incomplete` (some) or `missed` (none); before that it is `open`, or
`upcoming` before its start. A round is `out_of_order` when its checkpoints were scanned in
another order than the route's. A scan that counts for no round is off-round (flagged in
the log).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from core.patrols import PlannedRound

DONE = ("complete", "incomplete", "missed")


@dataclass(frozen=True, slots=True)
class Scan:
    id: int
    checkpoint: str
    at: datetime


@dataclass(slots=True)
class RoundResult:
    planned: PlannedRound
    scans: list[Scan] = field(default_factory=list)  # the ones counted, in time order
    status: str = "upcoming"
    missing: tuple[str, ...] = ()
    out_of_order: bool = False

    @property
    def scanned(self) -> tuple[str, ...]:
        return tuple(s.checkpoint for s in self.scans)


def judge(
    checkpoints: tuple[str, ...], rounds: list[PlannedRound], scans: Iterable[Scan], now: datetime
) -> tuple[list[RoundResult], dict[int, int]]:
    """Each round's result at `now`, and scan id -> the number of the round it counts for."""
    results = [RoundResult(r) for r in rounds]
    counted: dict[int, int] = {}
    for scan in sorted(scans, key=lambda s: (s.at, s.id)):
        if scan.checkpoint not in checkpoints:
            continue
        for res in results:
            r = res.planned
            if r.starts_at <= scan.at < r.due_at and scan.checkpoint not in res.scanned:
                res.scans.append(scan)
                counted[scan.id] = r.number
                break
    for res in results:
        _settle(res, checkpoints, now)
    return results, counted


def _settle(res: RoundResult, checkpoints: tuple[str, ...], now: datetime) -> None:
    r = res.planned
    res.missing = tuple(c for c in checkpoints if c not in res.scanned)
    walked = [c for c in checkpoints if c in res.scanned]
    res.out_of_order = list(res.scanned) != walked
    if now < r.starts_at:
        res.status = "upcoming"
    elif now < r.due_at:
        res.status = "open"
    elif not res.missing:
        res.status = "complete"
    else:
        res.status = "incomplete" if res.scans else "missed"
