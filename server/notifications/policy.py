"""When to tell, hold back or tell again: the notification policy as pure functions over
plain values and an injected `now`.

- throttle: at most `max_per_hour` messages per channel in any hour; the rest is held;
- flapping: the same device|rule raised again on a channel within `flap_window` of its
  previous raise (the window slides while it flaps) is held, and so are the
  acknowledgement and resolution of a raise that was held;
- what is held goes out as one digest per channel, at most every `digest_every`;
- escalation: step k of an unacknowledged alert is due k x `after[severity]` after people
  were first told; reminders every `remind_every`, only the one due now;
- retries: a failed (or cut-off) message is tried again in rounds, `RETRY_AFTER` apart.

No database, clock, threads or sending here: log_store.py reads the facts these functions
take, dispatch.py and notifier.py act on their answers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.rules_spec import Severity

BUDGET_WINDOW = timedelta(hours=1)
# Log rows that took (or are taking) a slot of the channel's hourly budget.
BUDGET_STATUSES = ("pending", "sent")
HELD_STATUSES = ("digest", "digested")  # held for a digest, then sent in one
FOLLOW_UPS = ("acknowledged", "resolved")  # told to every channel told about the alert
RETRIES = 3  # attempts per round, a second or two apart
RETRY_ROUNDS = 4  # rounds in all: the first, then again on later ticks
MAX_ATTEMPTS = RETRIES * RETRY_ROUNDS
RETRY_AFTER = timedelta(minutes=5)  # between rounds: a mail server restart, a proxy blip
# Failed ones; ones queued for a retry round; and ones a restart left queued or half sent
# (a send takes seconds, so one still pending after the pause was cut off).
RETRYABLE_STATUSES = ("failed", "retrying", "pending")


@dataclass(frozen=True, slots=True)
class LastRaise:
    """The previous "raised" message of a device|rule on a channel."""

    subject: str
    at: datetime


@dataclass(frozen=True, slots=True)
class EscalationStep:
    step: int  # 1-based
    role: str  # who this step tells
    waited: timedelta  # unacknowledged this long when the step became due


# -- throttle and flapping -----------------------------------------------------------------


def budget_since(now: datetime) -> datetime:
    """Rows at or before this no longer count against a channel's hour."""
    return now - BUDGET_WINDOW


def over_budget(*, used: int, max_per_hour: int) -> bool:
    """`used` includes the message being decided (its row is claimed first)."""
    return used > max_per_hour


def flapping(*, subject: str, last: LastRaise | None, now: datetime, window: timedelta) -> bool:
    """A raise is a flap when a different alert of the same device|rule was raised on the
    channel less than `window` ago (a door held open, closed, held open again)."""
    return last is not None and last.subject != subject and now - last.at < window


def follow_up_held(raise_status: str | None) -> bool:
    """An acknowledgement or resolution follows its raise into the digest."""
    return raise_status in HELD_STATUSES


def hold_reason(
    *,
    event: str,
    subject: str,
    last_raise: LastRaise | None,
    raise_status: str | None,
    used: int,
    now: datetime,
    flap_window: timedelta,
    max_per_hour: int,
) -> str | None:
    """Why a claimed message is held for the digest instead of sent, or None to send it.
    `last_raise` matters for a raise, `raise_status` (of the subject's raise on this
    channel) for a follow-up; both are None for what has no device|rule (work orders)."""
    if event == "raised" and flapping(
        subject=subject, last=last_raise, now=now, window=flap_window
    ):
        return "flapping"
    if event in FOLLOW_UPS and follow_up_held(raise_status):
        return "its raise was held"
    if over_budget(used=used, max_per_hour=max_per_hour):
        return "over the hourly budget"
    return None


# -- digests -------------------------------------------------------------------------------


def digest_due(
    *,
    last_digest: datetime | None,
    oldest_held: datetime | None,
    now: datetime,
    every: timedelta,
) -> bool:
    """`every` after the channel's last digest, or after its oldest held message if there
    was none: repeats are collected for a while, not sent one by one."""
    since = last_digest if last_digest is not None else oldest_held
    return since is None or now - since >= every


def digest_has_room(*, used: int, max_per_hour: int) -> bool:
    """A digest takes a slot too; without one free it waits for a later tick."""
    return not over_budget(used=used + 1, max_per_hour=max_per_hour)


# -- escalation and reminders --------------------------------------------------------------


def unacknowledged_since(raised_at: datetime, told_at: Iterable[datetime]) -> datetime:
    """Since people were first told: an alert raised at event time in a burst replayed
    after an outage was news only when it arrived."""
    first = min(told_at, default=None)
    return raised_at if first is None else max(raised_at, first)


def escalation_after(after: Mapping[Severity, timedelta], severity: str) -> timedelta | None:
    """Time per escalation step for a severity; None: it never escalates."""
    try:
        return after.get(Severity(severity))
    except ValueError:  # a severity this version does not know
        return None


def escalations_due(
    *, age: timedelta, after: timedelta | None, chain: tuple[str, ...], done: int
) -> list[EscalationStep]:
    """Steps after the `done` ones that `age` has made due; after downtime, every missed
    step at once (each tells another role), up to the end of the chain."""
    if after is None:
        return []
    due = min(int(age / after), len(chain))
    return [
        EscalationStep(step, chain[step - 1], after * step) for step in range(done + 1, due + 1)
    ]


def reminder_due(*, age: timedelta, every: timedelta, max_reminders: int | None) -> int | None:
    """The number of the reminder due at `age`, if any. Only the one due now: after
    downtime, one reminder, not every one missed."""
    if every <= timedelta(0):
        return None
    n = int(age / every)
    if n < 1 or (max_reminders is not None and n > max_reminders):
        return None
    return n


def reminder_channels(logged: Collection[tuple[str, str]], event: str) -> list[str]:
    """Channels to remind: every one told anything about the alert, less those that already
    had this reminder. `logged`: the subject's (channel, event) log rows."""
    told = {ch for ch, _ in logged}
    return sorted(told - {ch for ch, ev in logged if ev == event})


# -- retries -------------------------------------------------------------------------------


def retry_due(*, status: str, attempts: int, at: datetime, now: datetime) -> bool:
    """A new round for a message that failed, or that a restart cut off, once the pause
    since its last round has passed and it has attempts left."""
    return status in RETRYABLE_STATUSES and attempts < MAX_ATTEMPTS and at <= now - RETRY_AFTER


def retry_pause(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` of a round, before the next one."""
    return 0.5 * attempt
