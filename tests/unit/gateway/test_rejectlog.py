"""Rejections are all counted elsewhere; their log lines are bounded per kind and source."""

from __future__ import annotations

import logging

import pytest

from core.readings import Rejection, RejectReason
from gateway.rejectlog import RejectionLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rej(source: str = "zigbee2mqtt/x", reason: RejectReason = RejectReason.NOT_JSON) -> Rejection:
    return Rejection(reason=reason, detail="d: bad", source=source)


def test_a_flood_is_logged_up_to_the_burst_then_summarised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = RejectionLog(logging.getLogger("t"), burst=3, window_s=60, clock=clock)
    with caplog.at_level(logging.WARNING, "t"):
        written = [log.log(rej()) for _ in range(1000)]
        assert written == [True] * 3 + [False] * 997
        assert log.log(rej(reason=RejectReason.WRONG_TYPE))  # another kind has its own budget
        clock.now = 61
        assert log.log(rej())
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6
    assert lines[-2] == (
        "997 more not_json rejections from zigbee2mqtt/x were not logged in the last 60 s"
    )
    assert lines[-1] == "rejected not_json from zigbee2mqtt/x: d: bad"


def test_many_sources_share_one_budget_past_the_key_limit() -> None:
    clock = Clock()
    log = RejectionLog(logging.getLogger("t"), burst=2, max_keys=10, clock=clock)
    written = [log.log(rej(f"campus/s/random/{i}")) for i in range(1000)]
    # 10 sources with their own budget, then every other source shares one.
    assert sum(written) == 10 + 2
    clock.now = 120  # closed windows make room again
    assert log.log(rej("campus/s/random/late"))
