"""The notification policy on a manual clock, without an app, a database or threads:
the hourly budget, flapping, digests, escalation steps, reminders and retry rounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.clock import ManualClock
from core.rules_spec import Severity
from server.notifications import policy
from server.notifications.policy import EscalationStep, LastRaise

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


# -- throttle ------------------------------------------------------------------------------


def test_the_budget_holds_only_what_goes_beyond_max_per_hour() -> None:
    # `used` counts the message being decided: the 30th of 30 goes, the 31st is held.
    assert not policy.over_budget(used=30, max_per_hour=30)
    assert policy.over_budget(used=31, max_per_hour=30)


def test_the_budget_counts_the_last_hour_only(clock: ManualClock) -> None:
    sent = [T0, T0 + 10 * MIN, T0 + 59 * MIN]

    def used() -> int:
        return sum(1 for at in sent if at > policy.budget_since(clock.now()))

    clock.set(T0 + 59 * MIN)
    assert used() == 3
    clock.set(T0 + 60 * MIN)  # the first message is an hour old: its slot is free again
    assert used() == 2
    clock.set(T0 + 69 * MIN)  # the second is 59 minutes old: still counted
    assert used() == 2
    clock.advance(MIN)
    assert used() == 1


def test_a_digest_needs_a_free_slot_of_its_own() -> None:
    assert policy.digest_has_room(used=29, max_per_hour=30)
    assert not policy.digest_has_room(used=30, max_per_hour=30)


# -- flapping ------------------------------------------------------------------------------


def test_another_alert_of_the_same_device_and_rule_within_the_window_is_a_flap(
    clock: ManualClock,
) -> None:
    window = 30 * MIN
    last = LastRaise("alert:1", clock.now())
    clock.advance(29 * MIN)
    assert policy.flapping(subject="alert:2", last=last, now=clock.now(), window=window)
    clock.advance(MIN)  # exactly the window later: a new incident, told again
    assert not policy.flapping(subject="alert:2", last=last, now=clock.now(), window=window)


def test_the_first_raise_and_the_same_alert_are_never_a_flap(clock: ManualClock) -> None:
    window = 30 * MIN
    assert not policy.flapping(subject="alert:1", last=None, now=clock.now(), window=window)
    last = LastRaise("alert:1", clock.now())
    clock.advance(MIN)
    assert not policy.flapping(subject="alert:1", last=last, now=clock.now(), window=window)


def test_the_flap_window_slides_while_the_door_keeps_flapping(clock: ManualClock) -> None:
    # Raised every 20 minutes with a 30-minute window: each raise is within the window of
    # the one before, so only the first pages, though the last is an hour after it.
    window, last, paged = 30 * MIN, None, []
    for n in range(1, 5):
        subject = f"alert:{n}"
        if not policy.flapping(subject=subject, last=last, now=clock.now(), window=window):
            paged.append(subject)
        last = LastRaise(subject, clock.now())  # every raise moves the window, held or not
        clock.advance(20 * MIN)
    assert paged == ["alert:1"]


def test_a_follow_up_goes_where_its_raise_went() -> None:
    assert policy.follow_up_held("digest")
    assert policy.follow_up_held("digested")
    assert not policy.follow_up_held("sent")
    assert not policy.follow_up_held("failed")
    assert not policy.follow_up_held(None)


def hold(
    clock: ManualClock,
    *,
    event: str = "raised",
    subject: str = "alert:2",
    last_raise: LastRaise | None = None,
    raise_status: str | None = None,
    used: int = 1,
) -> str | None:
    return policy.hold_reason(
        event=event,
        subject=subject,
        last_raise=last_raise,
        raise_status=raise_status,
        used=used,
        now=clock.now(),
        flap_window=30 * MIN,
        max_per_hour=30,
    )


def test_hold_reason_names_why_a_message_waits_for_the_digest(clock: ManualClock) -> None:
    recent = LastRaise("alert:1", clock.now() - 5 * MIN)
    assert hold(clock) is None
    assert hold(clock, last_raise=recent) == "flapping"
    assert hold(clock, event="resolved", raise_status="digest") == "its raise was held"
    assert hold(clock, event="resolved", raise_status="sent") is None
    assert hold(clock, event="reminder-1", raise_status="digest") is None  # not a follow-up
    assert hold(clock, used=31) == "over the hourly budget"
    # A work order has no device|rule, so no flap facts; but it has a budget too.
    assert hold(clock, subject="wo:1", event="opened") is None
    assert hold(clock, subject="wo:1", event="opened", used=31) == "over the hourly budget"
    # Only a raise is judged a flap; an escalation of the same alert is not.
    assert hold(clock, event="escalated-1", last_raise=recent) is None


# -- digests -------------------------------------------------------------------------------


def test_the_first_digest_waits_digest_every_after_the_oldest_held_message(
    clock: ManualClock,
) -> None:
    oldest = clock.now()
    every = 30 * MIN

    def due() -> bool:
        return policy.digest_due(last_digest=None, oldest_held=oldest, now=clock.now(), every=every)

    clock.advance(29 * MIN)
    assert not due()
    clock.advance(MIN)
    assert due()


def test_later_digests_wait_digest_every_after_the_last_one(clock: ManualClock) -> None:
    last, every = clock.now(), 30 * MIN
    oldest = last - 2 * every  # held long ago, but a digest went out just now

    def due() -> bool:
        return policy.digest_due(last_digest=last, oldest_held=oldest, now=clock.now(), every=every)

    assert not due()
    clock.advance(every)
    assert due()


def test_a_digest_with_nothing_to_date_it_is_due() -> None:
    assert policy.digest_due(last_digest=None, oldest_held=None, now=T0, every=30 * MIN)


# -- escalation ----------------------------------------------------------------------------


def test_unacknowledged_counts_from_when_people_were_first_told() -> None:
    # A burst replayed after an outage: raised at event time, told an hour later.
    assert policy.unacknowledged_since(T0, [T0 + 60 * MIN, T0 + 61 * MIN]) == T0 + 60 * MIN
    assert policy.unacknowledged_since(T0, [T0 - MIN]) == T0
    assert policy.unacknowledged_since(T0, []) == T0


def test_each_severity_has_its_own_step_time() -> None:
    after = {Severity.CRITICAL: 10 * MIN, Severity.WARNING: 30 * MIN}
    assert policy.escalation_after(after, "critical") == 10 * MIN
    assert policy.escalation_after(after, "warning") == 30 * MIN
    assert policy.escalation_after(after, "info") is None  # never escalates
    assert policy.escalation_after(after, "apocalyptic") is None


def test_escalation_steps_come_due_one_per_step_time_along_the_chain(
    clock: ManualClock,
) -> None:
    chain, after, since = ("security", "admin"), 10 * MIN, clock.now()
    done = 0
    seen: list[EscalationStep] = []
    for _minute in range(45):
        steps = policy.escalations_due(age=clock.now() - since, after=after, chain=chain, done=done)
        seen += steps
        done += len(steps)
        clock.advance(MIN)
    # Step 1 at 10 min to security, step 2 at 20 min to admin; the chain ends there.
    assert seen == [
        EscalationStep(1, "security", 10 * MIN),
        EscalationStep(2, "admin", 20 * MIN),
    ]


def test_missed_escalation_steps_are_all_due_after_downtime() -> None:
    steps = policy.escalations_due(age=35 * MIN, after=10 * MIN, chain=("a", "b", "c"), done=1)
    assert [(s.step, s.role) for s in steps] == [(2, "b"), (3, "c")]


def test_an_alert_without_a_step_time_never_escalates() -> None:
    assert policy.escalations_due(age=24 * 60 * MIN, after=None, chain=("admin",), done=0) == []


# -- reminders -----------------------------------------------------------------------------


def test_reminders_come_every_period_up_to_the_limit(clock: ManualClock) -> None:
    since, every = clock.now(), 30 * MIN
    due: list[int | None] = []
    for _ in range(5):
        clock.advance(every)
        age = clock.now() - since
        due.append(policy.reminder_due(age=age, every=every, max_reminders=2))
    assert due == [1, 2, None, None, None]
    assert policy.reminder_due(age=29 * MIN, every=every, max_reminders=None) is None
    assert policy.reminder_due(age=300 * MIN, every=every, max_reminders=None) == 10


def test_reminders_switched_off_never_come() -> None:
    assert policy.reminder_due(age=300 * MIN, every=timedelta(0), max_reminders=None) is None


def test_a_reminder_goes_to_everyone_told_who_has_not_had_it() -> None:
    logged = {
        ("dorm-a", "raised"),
        ("security", "escalated-1"),
        ("admin", "escalated-2"),
        ("admin", "reminder-1"),  # reminded already (a tick before the restart)
    }
    assert policy.reminder_channels(logged, "reminder-1") == ["dorm-a", "security"]
    assert policy.reminder_channels(logged, "reminder-2") == ["admin", "dorm-a", "security"]


# -- retries -------------------------------------------------------------------------------


def test_a_failed_message_is_retried_after_the_pause_while_attempts_last(
    clock: ManualClock,
) -> None:
    failed_at = clock.now()

    def due(status: str = "failed", attempts: int = 3) -> bool:
        return policy.retry_due(status=status, attempts=attempts, at=failed_at, now=clock.now())

    clock.advance(policy.RETRY_AFTER - MIN)
    assert not due()  # too soon: the mail server is still restarting
    clock.advance(MIN)
    assert due()
    assert due("pending", 0)  # a restart cut it off mid-send
    assert not due("sent")
    assert not due("digest", 0)  # held for the digest: the digest sends it
    assert not due(attempts=policy.MAX_ATTEMPTS)  # every round used


def test_attempts_within_a_round_wait_longer_each_time() -> None:
    pauses = [policy.retry_pause(n) for n in range(1, policy.RETRIES)]
    assert pauses == sorted(pauses) and pauses[0] > 0
