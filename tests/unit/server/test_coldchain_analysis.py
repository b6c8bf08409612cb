"""The cold-chain arithmetic (server/coldchain/analysis.py), worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.coldchain.analysis import Limits, Point, day_figures, excursions, expected_readings

T0 = datetime(2026, 3, 10, tzinfo=UTC)
CHILLED = Limits(0.0, 8.0, timedelta(minutes=15))


def pts(*values: float | None, every: int = 5) -> list[Point]:
    """One reading per `every` minutes; None = no reading then."""
    return [
        Point(T0 + timedelta(minutes=every * i), v, seq=i + 1)
        for i, v in enumerate(values)
        if v is not None
    ]


def test_an_excursion_runs_from_the_first_reading_out_to_the_first_back_in() -> None:
    (e,) = excursions(pts(3, 3, 9, 10.5, 9, 7, 3), CHILLED)
    assert e.kind == "high" and e.peak == 10.5 and e.readings == 3
    assert e.started_at == T0 + timedelta(minutes=10)
    assert e.ended_at == T0 + timedelta(minutes=25)
    assert e.above_s == 15 * 60 and e.unknown_s == 0


def test_an_excursion_still_going_has_no_end_and_a_low_one_its_minimum() -> None:
    (e,) = excursions(pts(3, -0.5, -2, -1), CHILLED)
    assert e.kind == "low" and e.peak == -2 and e.ended_at is None
    assert e.below_s == 10 * 60  # the last reading's time is not known yet


def test_silence_inside_an_excursion_is_unknown_not_beyond() -> None:
    (e,) = excursions(pts(9, None, None, None, None, 9, 3), CHILLED)
    assert e.unknown_s == 25 * 60 and e.above_s == 5 * 60


def test_a_day_counts_gaps_as_unknown_and_never_in_range() -> None:
    readings = pts(*([3.0] * 12), None, None, None, None, *([3.0] * 8))
    end = T0 + timedelta(hours=2)
    f = day_figures(readings, CHILLED, T0, end)
    # 00:55 -> 01:20 is 25 min apart, more than 15: the whole interval is unknown.
    assert f.unknown_s == 25 * 60
    assert [(g.start, g.end) for g in f.gaps] == [
        (T0 + timedelta(minutes=55), T0 + timedelta(minutes=80))
    ]
    # 01:55 is the last reading and 02:00 within 15 min of it: in range.
    assert f.in_range_s == 7200 - 25 * 60
    assert f.readings == 20 and f.expected == 24 and f.completeness_pct == pytest.approx(83.33)


def test_a_day_starts_unknown_until_its_first_reading() -> None:
    f = day_figures(pts(None, None, None, None, 3.0, 3.0), CHILLED, T0, T0 + timedelta(minutes=30))
    assert f.unknown_s == 20 * 60 and f.in_range_s == 10 * 60


@pytest.mark.parametrize(
    ("seqs", "expected"),
    [([1, 2, 3], 3), ([1, 2, 5], 5), ([10, 11, 1, 2], 4)],
    ids=["complete", "two missing", "counter restart"],
)
def test_expected_readings_come_from_the_message_counter(seqs: list[int], expected: int) -> None:
    readings = [Point(T0 + timedelta(minutes=i), 3.0, seq=s) for i, s in enumerate(seqs)]
    assert expected_readings(readings) == expected


def test_without_a_counter_missed_beats_are_counted() -> None:
    minutes = [0, 5, 10, 25, 30]
    readings = [Point(T0 + timedelta(minutes=m), 3.0) for m in minutes]
    assert expected_readings(readings) == 7
