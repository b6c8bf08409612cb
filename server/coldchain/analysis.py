"""The cold-chain arithmetic, pure: readings and limits in, excursions and a day's figures
out. No database, clock or configuration loading here (callers pass `end`, the limits).

A reading holds from its time until the next reading when that comes within `max_gap`;
otherwise the whole interval between them is unknown: never in range (shared/DOMAIN.md).
An excursion starts at the first out-of-range reading and ends at the first reading back
in range.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

IN, HIGH, LOW, UNKNOWN = "in", "high", "low", "unknown"


@dataclass(frozen=True, slots=True)
class Limits:
    min: float | None
    max: float | None
    max_gap: timedelta

    def state(self, value: float) -> str:
        if self.max is not None and value > self.max:
            return HIGH
        if self.min is not None and value < self.min:
            return LOW
        return IN


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    value: float
    seq: int | None = None
    late: bool = False


@dataclass(frozen=True, slots=True)
class Span:
    start: datetime
    end: datetime
    state: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def spans(points: Sequence[Point], limits: Limits, start: datetime, end: datetime) -> list[Span]:
    """The window [start, end) cut into in/high/low/unknown spans. `points` are sorted and may
    include the reading before `start` and the one after `end` (they decide the edges)."""
    out: list[Span] = []

    def add(a: datetime, b: datetime, state: str) -> None:
        a, b = max(a, start), min(b, end)
        if b <= a:
            return
        if out and out[-1].state == state and out[-1].end == a:
            out[-1] = Span(out[-1].start, b, state)
        else:
            out.append(Span(a, b, state))

    if not points or points[0].at > start:
        add(start, points[0].at if points else end, UNKNOWN)
    for i, p in enumerate(points):
        nxt = points[i + 1].at if i + 1 < len(points) else None
        stop = nxt if nxt is not None else end
        if stop - p.at > limits.max_gap:
            add(p.at, stop, UNKNOWN)
        else:
            add(p.at, stop, limits.state(p.value))
    return out


@dataclass
class ExcursionFacts:
    kind: str
    started_at: datetime
    ended_at: datetime | None
    last_out_at: datetime
    peak: float
    readings: int = 0
    above_s: float = 0.0
    below_s: float = 0.0
    unknown_s: float = 0.0


def excursions(points: Sequence[Point], limits: Limits) -> list[ExcursionFacts]:
    """Every out-of-range run in `points` (sorted); the last one may still be open."""
    out: list[ExcursionFacts] = []
    cur: ExcursionFacts | None = None
    for i, p in enumerate(points):
        state = limits.state(p.value)
        if cur is not None and state == IN:
            cur.ended_at = p.at
            cur = None
        elif state != IN:
            if cur is None:
                cur = ExcursionFacts(state, p.at, None, p.at, p.value)
                out.append(cur)
            cur.readings += 1
            cur.last_out_at = p.at
            cur.peak = max(cur.peak, p.value) if cur.kind == HIGH else min(cur.peak, p.value)
        if cur is not None and i + 1 < len(points):
            dt = (points[i + 1].at - p.at).total_seconds()
            if dt > limits.max_gap.total_seconds():
                cur.unknown_s += dt
            elif state == HIGH:
                cur.above_s += dt
            elif state == LOW:
                cur.below_s += dt
    return out


@dataclass
class Gap:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class DayFigures:
    readings: int = 0
    expected: int | None = None
    late: int = 0
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    in_range_s: float = 0.0
    above_s: float = 0.0
    below_s: float = 0.0
    unknown_s: float = 0.0
    day_s: float = 0.0
    gaps: list[Gap] = field(default_factory=list)
    limit_min: float | None = None
    limit_max: float | None = None
    digest: str = ""

    @property
    def out_of_range_s(self) -> float:
        return self.above_s + self.below_s

    @property
    def completeness_pct(self) -> float | None:
        if not self.expected:
            return None
        return round(100.0 * self.readings / self.expected, 2)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gaps"] = [[g.start.isoformat(), g.end.isoformat()] for g in self.gaps]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DayFigures:
        fields = {k: v for k, v in d.items() if k != "gaps"}
        gaps = [Gap(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in d["gaps"]]
        return cls(**fields, gaps=gaps)


def day_figures(
    points: Sequence[Point],
    limits: Limits,
    start: datetime,
    end: datetime,
    digest: str = "",
) -> DayFigures:
    """The figures of [start, end). `points` may hold the reading before `start` and the
    one after `end`; only those inside count as the day's readings."""
    inside = [p for p in points if start <= p.at < end]
    f = DayFigures(limit_min=limits.min, limit_max=limits.max, digest=digest)
    f.day_s = (end - start).total_seconds()
    for sp in spans(points, limits, start, end):
        if sp.state == IN:
            f.in_range_s += sp.seconds
        elif sp.state == HIGH:
            f.above_s += sp.seconds
        elif sp.state == LOW:
            f.below_s += sp.seconds
        else:
            f.unknown_s += sp.seconds
            f.gaps.append(Gap(sp.start, sp.end))
    if inside:
        values = [p.value for p in inside]
        f.readings = len(inside)
        f.min, f.max = min(values), max(values)
        f.mean = round(statistics.fmean(values), 3)
        f.late = sum(1 for p in inside if p.late)
        before = [p for p in points if p.at < start]
        expected = expected_readings([*before[-1:], *inside])
        if expected is not None and before:
            expected -= 1  # the reading before the day is not the day's
        f.expected = expected
    return f


def expected_readings(points: Sequence[Point]) -> int | None:
    """Readings the device should have sent: every skipped message number is a missing one
    (a lower number is a counter restart, not a gap); without numbers, missed beats of the
    median interval."""
    if not points:
        return None
    if all(p.seq is not None for p in points):
        total = 1
        for a, b in itertools.pairwise(points):
            assert a.seq is not None and b.seq is not None
            total += b.seq - a.seq if b.seq > a.seq else 1
        return total
    if len(points) < 3:
        return len(points)
    intervals = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(points)]
    beat = statistics.median(intervals)
    if beat <= 0:
        return len(points)
    return 1 + sum(max(1, round(dt / beat)) for dt in intervals)
