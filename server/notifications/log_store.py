"""Reads and writes of the notification log: the claim (one unique row per subject, channel
and event, written before sending), status updates, and the facts the policy decides on
(hourly budget used, the last raise of a device|rule, what is held, what failed). The log
is durable, so these facts survive a restart. No decisions here: policy.py takes the facts.

Functions taking a Session run in the caller's transaction (tick() makes one of its reads
and writes); those taking the sessionmaker (`claim`, `record`, `mark_digested`) open their
own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.notifications import policy
from server.notifications.model import NotificationLog


def claim(
    sessions: sessionmaker[Session],
    *,
    subject: str,
    channel: str,
    event: str,
    title: str,
    flap_key: str | None,
    now: datetime,
) -> int | None:
    """The new row's id; None if the row exists already (sent or held once: not again)."""
    try:
        with sessions.begin() as s:
            row = NotificationLog(
                subject=subject,
                channel=channel,
                event=event,
                at=now,
                claimed_at=now,
                status="pending",
                attempts=0,
                title=title,
                error="",
                flap_key=flap_key,
            )
            s.add(row)
            s.flush()
            return row.id
    except IntegrityError:
        return None


def record(
    sessions: sessionmaker[Session], row_id: int, status: str, attempts: int, error: str = ""
) -> None:
    """The outcome of a delivery round (or `digest` for a held message)."""
    with sessions.begin() as s:
        row = s.get(NotificationLog, row_id)
        if row is not None:
            row.status, row.error = status, error[:500]
            row.attempts += attempts


def used_in_hour(s: Session, channel: str, now: datetime) -> int:
    """The channel's messages of the last hour (so a restart does not hand out a fresh
    hour)."""
    used = s.scalar(
        select(func.count(NotificationLog.id)).where(
            NotificationLog.channel == channel,
            NotificationLog.status.in_(policy.BUDGET_STATUSES),
            NotificationLog.at > policy.budget_since(now),
        )
    )
    return used or 0


def last_raise(
    s: Session, *, channel: str, flap_key: str, other_than: int
) -> policy.LastRaise | None:
    """The latest "raised" row of a device|rule on a channel, other than the one deciding."""
    row = s.execute(
        select(NotificationLog.subject, NotificationLog.claimed_at)
        .where(
            NotificationLog.channel == channel,
            NotificationLog.flap_key == flap_key,
            NotificationLog.event == "raised",
            NotificationLog.id != other_than,
        )
        .order_by(NotificationLog.claimed_at.desc(), NotificationLog.id.desc())
        .limit(1)
    ).first()
    return None if row is None else policy.LastRaise(row.subject, row.claimed_at)


def raise_status(s: Session, *, subject: str, channel: str) -> str | None:
    return s.scalar(
        select(NotificationLog.status).where(
            NotificationLog.subject == subject,
            NotificationLog.channel == channel,
            NotificationLog.event == "raised",
        )
    )


def told_channels(s: Session, subject: str) -> list[str]:
    """Every channel with a row for the subject (sent, held or failed), sorted."""
    rows = s.scalars(
        select(NotificationLog.channel).where(NotificationLog.subject == subject).distinct()
    ).all()
    return sorted(rows)


def subject_log(s: Session, subject: str) -> list[tuple[str, str, datetime]]:
    """(channel, event, at) of every row of the subject."""
    rows = s.execute(
        select(NotificationLog.channel, NotificationLog.event, NotificationLog.at).where(
            NotificationLog.subject == subject
        )
    ).all()
    return [(r.channel, r.event, r.at) for r in rows]


def channels_holding(s: Session) -> list[str]:
    """Channels with messages held for a digest."""
    return list(
        s.scalars(
            select(NotificationLog.channel).where(NotificationLog.status == "digest").distinct()
        ).all()
    )


def digest_times(s: Session, channel: str) -> tuple[datetime | None, datetime | None]:
    """(the channel's last digest, its oldest held message)."""
    last = s.scalar(
        select(func.max(NotificationLog.at)).where(
            NotificationLog.channel == channel, NotificationLog.event == "digest"
        )
    )
    oldest = s.scalar(
        select(func.min(NotificationLog.at)).where(
            NotificationLog.channel == channel, NotificationLog.status == "digest"
        )
    )
    return last, oldest


def held(s: Session, channel: str) -> list[tuple[int, str]]:
    """(id, title) of the channel's held messages, oldest first."""
    rows = s.execute(
        select(NotificationLog.id, NotificationLog.title)
        .where(NotificationLog.channel == channel, NotificationLog.status == "digest")
        .order_by(NotificationLog.id)
    ).all()
    return [(r.id, r.title) for r in rows]


def mark_digested(sessions: sessionmaker[Session], ids: Sequence[int]) -> None:
    with sessions.begin() as s:
        for row in s.scalars(select(NotificationLog).where(NotificationLog.id.in_(ids))):
            row.status = "digested"


def take_due_retries(s: Session, now: datetime) -> list[int]:
    """Ids of the rows due for another round, marked `retrying` so that the next tick does
    not queue them again. The query narrows by the policy's statuses and attempt limit;
    `policy.retry_due` decides."""
    rows = s.scalars(
        select(NotificationLog).where(
            NotificationLog.status.in_(policy.RETRYABLE_STATUSES),
            NotificationLog.attempts < policy.MAX_ATTEMPTS,
        )
    ).all()
    due = [
        r for r in rows if policy.retry_due(status=r.status, attempts=r.attempts, at=r.at, now=now)
    ]
    for row in due:
        row.status = "retrying"
    return [row.id for row in due]


def retrying(s: Session, row_id: int) -> NotificationLog | None:
    """The row if it is still waiting for its retry round (queued twice by a slow worker:
    the first one took it)."""
    row = s.get(NotificationLog, row_id)
    return row if row is not None and row.status == "retrying" else None


def start_round(row: NotificationLog, now: datetime) -> None:
    row.status, row.at = "pending", now  # takes a slot of the hour again


def give_up(row: NotificationLog) -> None:
    """Nothing left to retry with (its channel or its subject is gone)."""
    row.status, row.attempts = "failed", policy.MAX_ATTEMPTS
