"""The jobs the notifier queues, and what the delivery worker does with each: claim the
message's log row (once), ask the policy whether to hold it for the digest, else send it
and record the outcome; tell follow-ups to every channel told before; send due digests;
run retry rounds. Runs on the worker thread only; who and what text were decided when the
job was made."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.site import NotificationChannel, Notifications
from server.events.types import AlertSnapshot
from server.notifications import log_store, policy, subjects
from server.notifications.delivery import Counters, Sender
from server.notifications.render import (
    Text,
    alert_text,
    digest_text,
    overdue_text,
    work_order_text,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    subject: str  # "alert:12" | "wo:5" | "digest:..."
    event: str  # raised | acknowledged | resolved | escalated-N | reminder-N | opened
    channel: NotificationChannel
    text: Text
    key: str | None = None  # "device|rule": what a flapping alert repeats


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A state change told to every channel that was told about the subject."""

    subject: str
    event: str
    text: Text
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    channel: str


@dataclass(frozen=True, slots=True)
class Retry:
    row_id: int


Job = Message | FollowUp | Digest | Retry


class Dispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: Notifications,
        site_name: str,
        sender: Sender,
        counters: Counters,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.site_name = site_name
        self.sender = sender
        self.counters = counters
        self.clock = clock
        self._channels = {ch.id: ch for ch in config.channels}

    def handle(self, job: Job) -> None:
        if isinstance(job, Message):
            self._deliver(job)
        elif isinstance(job, FollowUp):
            for ch in self._told(job.subject):
                self._deliver(Message(job.subject, job.event, ch, job.text, job.key))
        elif isinstance(job, Digest):
            self._digest(job.channel)
        else:
            self._retry(job.row_id)

    def _told(self, subject: str) -> list[NotificationChannel]:
        with self.sessions() as s:
            told = log_store.told_channels(s, subject)
        # A channel since removed from the site file is not told again.
        return [self._channels[ch] for ch in told if ch in self._channels]

    def _deliver(self, msg: Message) -> None:
        now = self.clock.now()
        row_id = log_store.claim(
            self.sessions,
            subject=msg.subject,
            channel=msg.channel.id,
            event=msg.event,
            title=msg.text.title,
            flap_key=msg.key,
            now=now,
        )
        if row_id is None:
            return  # already sent (or held) once: deduplicated
        ch, key = msg.channel.id, msg.key
        with self.sessions() as s:
            reason = policy.hold_reason(
                event=msg.event,
                subject=msg.subject,
                last_raise=(
                    log_store.last_raise(s, channel=ch, flap_key=key, other_than=row_id)
                    if key is not None and msg.event == "raised"
                    else None
                ),
                raise_status=(
                    log_store.raise_status(s, subject=msg.subject, channel=ch)
                    if key is not None and msg.event in policy.FOLLOW_UPS
                    else None
                ),
                used=log_store.used_in_hour(s, ch, now),  # the claimed row counts already
                now=now,
                flap_window=self.config.flap_window,
                max_per_hour=self.config.max_per_hour,
            )
        if reason is not None:
            self.counters.held.labels(ch).inc()
            log_store.record(self.sessions, row_id, "digest", 0)
            log.debug("%s %s to channel %s held: %s", msg.subject, msg.event, ch, reason)
            return
        out = self.sender.send(msg.channel, msg.text.title, msg.text.body)
        log_store.record(self.sessions, row_id, out.status, out.attempts, out.error)

    def _digest(self, channel_id: str) -> None:
        channel = self._channels.get(channel_id)
        now = self.clock.now()
        with self.sessions() as s:
            rows = log_store.held(s, channel_id)
            last, oldest = log_store.digest_times(s, channel_id)
            due = policy.digest_due(
                last_digest=last, oldest_held=oldest, now=now, every=self.config.digest_every
            )
            room = policy.digest_has_room(
                used=log_store.used_in_hour(s, channel_id, now),
                max_per_hour=self.config.max_per_hour,
            )
        if not rows or channel is None or not due or not room:
            return  # nothing held, or not yet: a later tick asks again
        ids = [row_id for row_id, _ in rows]
        text = digest_text([title for _, title in rows], self.config.max_per_hour)
        row_id = log_store.claim(
            self.sessions,
            subject=f"digest:{ids[0]}-{ids[-1]}:{int(now.timestamp())}",
            channel=channel_id,
            event="digest",
            title=text.title,
            flap_key=None,
            now=now,
        )
        if row_id is None:
            return
        out = self.sender.send(channel, text.title, text.body)
        log_store.record(self.sessions, row_id, out.status, out.attempts, out.error)
        if out.status == "sent":
            self.counters.digests.labels(channel_id).inc()
            log_store.mark_digested(self.sessions, ids)
        log.info("digest of %d to channel %s: %s", len(ids), channel_id, out.status)

    def _retry(self, row_id: int) -> None:
        with self.sessions.begin() as s:
            row = log_store.retrying(s, row_id)
            if row is None:
                return
            channel = self._channels.get(row.channel)
            text = self._render(s, row.subject, row.event)
            if channel is None or text is None:
                log_store.give_up(row)
                return
            log_store.start_round(row, self.clock.now())
        out = self.sender.send(channel, text.title, text.body)
        log_store.record(self.sessions, row_id, out.status, out.attempts, out.error)

    def _render(self, s: Session, subject: str, event: str) -> Text | None:
        """The text again from the subject's current state (the log keeps titles only)."""
        snapshot = subjects.load(s, subject)
        if snapshot is None:
            return None  # a digest's subject, or a row since deleted
        if isinstance(snapshot, AlertSnapshot):
            return alert_text(self.site_name, snapshot, event)
        if event == "overdue":
            return overdue_text(self.site_name, snapshot)
        return work_order_text(self.site_name, snapshot)
