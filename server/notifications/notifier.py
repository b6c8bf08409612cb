"""Notifications: the right people told once, through Apprise channels configured per site.

Routing: an alert goes to the channels of the roles its rule names (`notify`), limited to
the channel's buildings (a dorm manager hears about their buildings only) and severity.
Acknowledgement and resolution go to every channel that was told about the alert. Work
orders go to maintenance; gateway and other system alerts go to maintenance.

Once: every (subject, channel, event) is a unique row of the notification log, written
before sending; a replayed batch, a restart or a repeated live event finds it and sends
nothing. Throttled: at most `max_per_hour` messages per channel, and a device and rule that
raises again on a channel within `flap_window` (a flapping door) is held back; what is held
is sent as one digest per channel at most every `digest_every`. Escalation, reminders,
digests and later retries of failed messages are decided on `tick()` (the injected clock).

Sending happens on one worker thread (never on the ingest or request path), with retries;
failures are counted and logged by channel id, never with the channel's URL (it carries
secrets), and the secrets are masked in what Apprise and urllib3 log themselves.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.rules_spec import RuleSpec, Severity
from core.site import NotificationChannel, Notifications, SiteConfig
from server.alerts.model import Alert, AlertEvent, AlertState
from server.notifications.model import NotificationLog
from server.notifications.stream import LiveEvent
from server.work_orders.model import WorkOrder

log = logging.getLogger(__name__)

SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
RETRIES = 3  # attempts per round, a second or two apart
RETRY_ROUNDS = 4  # rounds in all: the first, then again on later ticks
RETRY_AFTER = timedelta(minutes=5)  # between rounds: a mail server restart, a proxy blip
# Log rows that took (or are taking) a slot of the channel's hourly budget.
_COUNTED = ("pending", "sent")

Send = Callable[[str, str, str], bool]
"""(apprise_url, title, body) -> delivered"""


class MissingSecret(ValueError):
    pass


def env_names(url: str) -> list[str]:
    return _ENV.findall(url)


def expand_env(url: str) -> str:
    """${VAR} from the environment; a missing one is an error naming it (never its value)."""

    def sub(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            raise MissingSecret(f"environment variable {m.group(1)} is not set")
        return value

    return _ENV.sub(sub, url)


class RedactSecrets(logging.Filter):
    """Masks the channels' secret values in records of third-party loggers: Apprise logs the
    full webhook URL at debug level, urllib3 the request path, and either may hold a token."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self.names = tuple(names)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [v for n in self.names if len(v := os.environ.get(n, "")) >= 4]
        if not secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed third-party record: let logging report it as usual
            return True
        masked = text
        for secret in secrets:
            masked = masked.replace(secret, "***")
        if masked != text:
            record.msg, record.args = masked, None
        return True


_REDACTED_LOGGERS = ("apprise", "urllib3.connectionpool")


def apprise_send(url: str, title: str, body: str) -> bool:
    import apprise

    ap = apprise.Apprise()
    if not ap.add(url):
        return False
    return bool(ap.notify(title=title, body=body))


@dataclass(frozen=True, slots=True)
class Message:
    subject: str  # "alert:12" | "wo:5"
    event: str  # raised | acknowledged | resolved | escalated-N | reminder-N | opened
    channel: NotificationChannel
    title: str
    body: str
    key: str | None = None  # "device|rule": what a flapping alert repeats


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A state change told to every channel that was told about the subject."""

    subject: str
    event: str
    title: str
    body: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    channel: str


@dataclass(frozen=True, slots=True)
class Retry:
    row_id: int


Job = Message | FollowUp | Digest | Retry | None


class Notifier:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        site: SiteConfig,
        rule_index: dict[tuple[str, str], RuleSpec],
        clock: Clock,
        registry: CollectorRegistry,
        send: Send = apprise_send,
    ) -> None:
        self.sessions = sessions
        self.config: Notifications = site.notifications
        self.site_name = site.name
        self.rule_index = rule_index
        self.clock = clock
        self._send = send
        self._channels = {ch.id: ch for ch in self.config.channels}
        self._queue: queue.Queue[Job] = queue.Queue()
        # (channel, device|rule) -> (subject, when) of its last raise: flap detection. Only
        # the worker thread touches it.
        self._last_raise: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        names = sorted({n for ch in self.config.channels for n in env_names(ch.url)})
        for ch in self.config.channels:
            expand_env(ch.url)  # fail at start-up naming a missing secret, not at 3 a.m.
        self._redact = RedactSecrets(names)
        if names:
            for name in _REDACTED_LOGGERS:
                logging.getLogger(name).addFilter(self._redact)
        self.sent = Counter(
            "notifications_sent", "Notifications delivered", ["channel"], registry=registry
        )
        self.failed = Counter(
            "notifications_failed",
            "Notification delivery rounds that failed (each retried later up to a limit)",
            ["channel"],
            registry=registry,
        )
        self.held = Counter(
            "notifications_throttled",
            "Notifications held back for a digest (rate limit or a flapping alert)",
            ["channel"],
            registry=registry,
        )
        self.digests = Counter(
            "notifications_digests", "Digests sent", ["channel"], registry=registry
        )

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, tick_seconds: float | None = None) -> None:
        """The delivery worker, and (with `tick_seconds`) a thread running `tick()`."""
        if self._thread is not None or not self.config.channels:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._worker, name="notify", daemon=True)
        self._thread.start()
        if tick_seconds:
            self._ticker = threading.Thread(
                target=self._tick_loop, args=(tick_seconds,), name="notify-tick", daemon=True
            )
            self._ticker.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
            self._ticker = None
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        for name in _REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(self._redact)

    def _tick_loop(self, every: float) -> None:
        while not self._stopping.wait(every):
            try:
                self.tick()
            except Exception:
                log.exception("notification tick failed")

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far was handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    # -- routing ---------------------------------------------------------------------------
    def on_event(self, ev: LiveEvent) -> None:
        """Broadcaster listener (ingest or request thread): decide and enqueue, never send."""
        if not self.config.channels:
            return
        if ev.type == "alert":
            state = ev.data.get("state")
            if state == AlertState.ACTIVE:
                self._alert(ev.data, "raised")
            elif state == AlertState.ACKNOWLEDGED:
                self._follow_up(ev.data, "acknowledged")
            elif state == AlertState.RESOLVED:
                self._follow_up(ev.data, "resolved")
        elif ev.type == "work_order" and ev.data.get("status") == "open":
            self._work_order(ev.data)

    def roles_for(self, alert: dict[str, Any]) -> tuple[str, ...]:
        spec = self.rule_index.get((alert["device_id"], alert["rule"]))
        if spec is not None:
            return spec.notify
        return ("maintenance",)  # gateway health and other system alerts

    def channels(
        self, roles: tuple[str, ...], building: str | None, severity: str
    ) -> list[NotificationChannel]:
        rank = SEVERITY_RANK.get(severity, 0)
        return [
            ch
            for ch in self.config.channels
            if ch.role in roles
            and (not ch.buildings or building in ch.buildings)
            and rank >= SEVERITY_RANK[ch.min_severity.value]
        ]

    def _alert(self, a: dict[str, Any], event: str, roles: tuple[str, ...] | None = None) -> None:
        for msg in self._alert_messages(a, event, roles or self.roles_for(a)):
            self._queue.put(msg)

    def _alert_messages(
        self, a: dict[str, Any], event: str, roles: tuple[str, ...]
    ) -> list[Message]:
        title, body = self._alert_text(a, event)
        return [
            Message(f"alert:{a['id']}", event, ch, title, body, _key(a))
            for ch in self.channels(roles, a.get("building"), a["severity"])
        ]

    def _follow_up(self, a: dict[str, Any], event: str) -> None:
        title, body = self._alert_text(a, event)
        self._queue.put(FollowUp(f"alert:{a['id']}", event, title, body, _key(a)))

    def _alert_text(self, a: dict[str, Any], event: str) -> tuple[str, str]:
        what = f"{a['device_id']} {a['rule'].replace('_', ' ')}"
        kind, _, n = event.partition("-")
        if kind == "raised":
            verb = "ALERT"
        elif kind == "escalated":
            verb = f"ESCALATED (step {n}, not acknowledged)"
        elif kind == "reminder":
            verb = f"REMINDER {n} (not acknowledged)"
        elif kind == "acknowledged":
            verb = f"acknowledged by {a.get('acknowledged_by') or 'someone'}"
        else:
            verb = kind
        title = f"[{a['severity']}] {verb}: {what}"
        lines = [
            f"{self.site_name}, {a.get('building') or 'campus'}: {a.get('message', '')}",
            f"raised {a.get('raised_at')}; state {a.get('state')}; alert #{a['id']}",
        ]
        if a.get("assignee"):
            lines.append(f"assigned to {a['assignee']}")
        return title, "\n".join(lines)

    def _work_order(self, w: dict[str, Any]) -> None:
        title, body = self._wo_text(w)
        for ch in self.channels(("maintenance",), w.get("building"), Severity.CRITICAL.value):
            self._queue.put(Message(f"wo:{w['id']}", "opened", ch, title, body))

    def _wo_text(self, w: dict[str, Any]) -> tuple[str, str]:
        title = f"[{w.get('priority')}] work order #{w['id']}: {w.get('title') or w['category']}"
        body = (
            f"{self.site_name}: {w.get('location', '')}\ncategory {w['category']}, "
            f"due {w.get('due_at')}; source {w.get('source')}"
        )
        return title, body

    # -- escalation, reminders, digests, retries (time-driven) -----------------------------
    def tick(self, now: datetime | None = None) -> None:
        """Decide what time has made due and enqueue it; the worker sends."""
        if not self.config.channels:
            return
        now = now or self.clock.now()
        jobs: list[Job] = []
        with self.sessions.begin() as s:
            for alert in s.scalars(select(Alert).where(Alert.state == AlertState.ACTIVE)).all():
                log_q = select(NotificationLog.channel, NotificationLog.event, NotificationLog.at)
                rows = s.execute(log_q.where(NotificationLog.subject == f"alert:{alert.id}")).all()
                # Unacknowledged since people were first told: an alert raised at event time
                # in a burst replayed after an outage was news only when it arrived.
                told_at = [at for _, ev, at in rows if ev == "raised"]
                since = max(alert.raised_at, min(told_at)) if told_at else alert.raised_at
                jobs += self._escalate(alert, now - since, now)
                jobs += self._remind(alert, now - since, {(ch, ev) for ch, ev, _ in rows})
            jobs += self._due_retries(s, now)
            jobs += self._due_digests(s, now)
        for job in jobs:
            self._queue.put(job)

    def _escalate(self, alert: Alert, age: timedelta, now: datetime) -> list[Message]:
        esc = self.config.escalation
        try:
            after = esc.after.get(Severity(alert.severity))
        except ValueError:
            after = None
        if after is None:
            return []
        data = _alert_dict(alert)
        chain = esc.chain_for(self.roles_for(data))
        done = sum(1 for e in alert.history if e.action == "escalated")
        due = min(int(age / after), len(chain))
        out: list[Message] = []
        for step in range(done + 1, due + 1):
            role = chain[step - 1]
            msgs = self._alert_messages(data, f"escalated-{step}", (role,))
            told = f"told {role}" if msgs else f"no channel for {role}"
            alert.history.append(
                AlertEvent(
                    at=now,
                    actor="system",
                    action="escalated",
                    comment=f"step {step}: not acknowledged after {_minutes(after * step)}; {told}",
                )
            )
            out += msgs
        return out

    def _remind(self, alert: Alert, age: timedelta, logged: set[tuple[str, str]]) -> list[Message]:
        esc = self.config.escalation
        if esc.remind_every <= timedelta(0):
            return []
        n = int(age / esc.remind_every)
        if n < 1 or (esc.max_reminders is not None and n > esc.max_reminders):
            return []
        # Only the reminder due now: after downtime, one reminder, not every one missed.
        event = f"reminder-{n}"
        told = sorted({ch for ch, _ in logged} - {ch for ch, ev in logged if ev == event})
        if not told:
            return []
        data = _alert_dict(alert)
        title, body = self._alert_text(data, event)
        return [
            Message(f"alert:{alert.id}", event, self._channels[ch], title, body, _key(data))
            for ch in told
            if ch in self._channels
        ]

    def _due_retries(self, s: Session, now: datetime) -> list[Retry]:
        # Failed ones after a pause; and ones a restart left queued or half sent (a send
        # takes seconds, so one still pending after the pause was cut off).
        rows = s.scalars(
            select(NotificationLog).where(
                NotificationLog.status.in_(("failed", "retrying", "pending")),
                NotificationLog.attempts < RETRIES * RETRY_ROUNDS,
                NotificationLog.at <= now - RETRY_AFTER,
            )
        ).all()
        for row in rows:
            row.status = "retrying"  # queued once, not again on the next tick
        return [Retry(row.id) for row in rows]

    def _due_digests(self, s: Session, now: datetime) -> list[Digest]:
        held = s.scalars(
            select(NotificationLog.channel).where(NotificationLog.status == "digest").distinct()
        ).all()
        return [Digest(ch) for ch in held if self._digest_due(s, ch, now)]

    def _digest_due(self, s: Session, channel: str, now: datetime) -> bool:
        """`digest_every` after the last digest, or after the oldest held message if there
        was none: repeats are collected for a while, not sent one by one."""
        last = s.scalar(
            select(func.max(NotificationLog.at)).where(
                NotificationLog.channel == channel, NotificationLog.event == "digest"
            )
        )
        if last is None:
            last = s.scalar(
                select(func.min(NotificationLog.at)).where(
                    NotificationLog.channel == channel, NotificationLog.status == "digest"
                )
            )
        return last is None or now - last >= self.config.digest_every

    # -- delivery (the worker thread only) -------------------------------------------------
    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if isinstance(job, Message):
                    self._deliver(job)
                elif isinstance(job, FollowUp):
                    self._deliver_follow_up(job)
                elif isinstance(job, Digest):
                    self._deliver_digest(job.channel)
                else:
                    self._retry(job.row_id)
            except Exception:
                log.exception("notification worker")
            finally:
                self._queue.task_done()

    def _claim(self, msg: Message) -> int | None:
        """Write the log row first: the unique key makes a second claim fail -> not sent."""
        try:
            with self.sessions.begin() as s:
                row = NotificationLog(
                    subject=msg.subject,
                    channel=msg.channel.id,
                    event=msg.event,
                    at=self.clock.now(),
                    status="pending",
                    attempts=0,
                    title=msg.title,
                    error="",
                )
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:
            return None

    def _record(self, row_id: int, status: str, attempts: int, error: str = "") -> None:
        with self.sessions.begin() as s:
            row = s.get(NotificationLog, row_id)
            if row is not None:
                row.status, row.error = status, error[:500]
                row.attempts += attempts

    def _used(self, s: Session, channel: str, now: datetime) -> int:
        """The channel's messages of the last hour, from the log (so a restart does not hand
        out a fresh hour)."""
        used = s.scalar(
            select(func.count(NotificationLog.id)).where(
                NotificationLog.channel == channel,
                NotificationLog.status.in_(_COUNTED),
                NotificationLog.at > now - timedelta(hours=1),
            )
        )
        return used or 0

    def _flapping(self, s: Session, msg: Message, now: datetime) -> bool:
        if msg.key is None:
            return False
        if msg.event == "raised":
            slot = (msg.channel.id, msg.key)
            last = self._last_raise.get(slot)
            self._last_raise[slot] = (msg.subject, now)  # the window slides while it flaps
            return (
                last is not None
                and last[0] != msg.subject
                and now - last[1] < self.config.flap_window
            )
        if msg.event in ("acknowledged", "resolved"):
            # The follow-up of a raise that was held goes the same way: to the digest.
            raised = s.scalar(
                select(NotificationLog.status).where(
                    NotificationLog.subject == msg.subject,
                    NotificationLog.channel == msg.channel.id,
                    NotificationLog.event == "raised",
                )
            )
            return raised in ("digest", "digested")
        return False

    def _deliver(self, msg: Message) -> None:
        row_id = self._claim(msg)
        if row_id is None:
            return  # already sent (or held) once: deduplicated
        now = self.clock.now()
        with self.sessions() as s:
            # The claimed row is counted already: over the budget means beyond it.
            hold = self._flapping(s, msg, now) or (
                self._used(s, msg.channel.id, now) > self.config.max_per_hour
            )
        if hold:
            self.held.labels(msg.channel.id).inc()
            self._record(row_id, "digest", 0)
            return
        self._record(row_id, *self._send_with_retries(msg.channel, msg.title, msg.body))

    def _deliver_follow_up(self, f: FollowUp) -> None:
        with self.sessions() as s:
            told = s.scalars(
                select(NotificationLog.channel)
                .where(NotificationLog.subject == f.subject)
                .distinct()
            ).all()
        for ch in sorted(told):
            channel = self._channels.get(ch)
            if channel is not None:  # a channel since removed from the site file
                self._deliver(Message(f.subject, f.event, channel, f.title, f.body, f.key))

    def _deliver_digest(self, channel_id: str) -> None:
        channel = self._channels.get(channel_id)
        now = self.clock.now()
        with self.sessions() as s:
            rows = s.scalars(
                select(NotificationLog)
                .where(NotificationLog.channel == channel_id, NotificationLog.status == "digest")
                .order_by(NotificationLog.id)
            ).all()
            lines = [f"- {r.title}" for r in rows]
            ids = [r.id for r in rows]
            if not ids or channel is None or not self._digest_due(s, channel_id, now):
                return
            if self._used(s, channel_id, now) >= self.config.max_per_hour:
                return  # no room yet; a later tick tries again
        title = f"{len(ids)} notifications held back (repeats or over {self.config.max_per_hour}/h)"
        subject = f"digest:{ids[0]}-{ids[-1]}:{int(now.timestamp())}"
        digest = Message(subject, "digest", channel, title, "\n".join(lines))
        row_id = self._claim(digest)
        if row_id is None:
            return
        status, attempts, error = self._send_with_retries(channel, title, digest.body)
        self._record(row_id, status, attempts, error)
        if status == "sent":
            self.digests.labels(channel_id).inc()
            with self.sessions.begin() as s:
                for r in s.scalars(select(NotificationLog).where(NotificationLog.id.in_(ids))):
                    r.status = "digested"
        log.info("digest of %d to channel %s: %s", len(ids), channel_id, status)

    def _retry(self, row_id: int) -> None:
        with self.sessions.begin() as s:
            row = s.get(NotificationLog, row_id)
            if row is None or row.status != "retrying":
                return  # queued twice (a slow worker): the first one took it
            channel = self._channels.get(row.channel)
            text = self._render(s, row.subject, row.event)
            if channel is None or text is None:
                row.status = "failed"
                row.attempts = RETRIES * RETRY_ROUNDS  # nothing left to retry with
                return
            row.status, row.at = "pending", self.clock.now()  # takes a slot of the hour
        self._record(row_id, *self._send_with_retries(channel, *text))

    def _render(self, s: Session, subject: str, event: str) -> tuple[str, str] | None:
        """Title and body again from the subject's current row (the log keeps titles only)."""
        kind, _, ident = subject.partition(":")
        if not ident.isdigit():
            return None
        if kind == "alert":
            alert = s.get(Alert, int(ident))
            return self._alert_text(_alert_dict(alert), event) if alert else None
        if kind == "wo":
            wo = s.get(WorkOrder, int(ident))
            return self._wo_text(_wo_dict(wo)) if wo else None
        return None

    def _send_with_retries(
        self, channel: NotificationChannel, title: str, body: str
    ) -> tuple[str, int, str]:
        error = ""
        attempt = 0
        for attempt in range(1, RETRIES + 1):
            try:
                if self._send(expand_env(channel.url), title, body):
                    self.sent.labels(channel.id).inc()
                    return "sent", attempt, ""
                error = "channel refused the message"
            except MissingSecret as exc:
                error = str(exc)
                break
            except Exception as exc:  # a plugin's own error: retried, then recorded
                error = exc.__class__.__name__  # its text may quote the URL
            if attempt < RETRIES:
                time.sleep(0.5 * attempt)
        self.failed.labels(channel.id).inc()
        log.warning("notification to channel %s failed: %s", channel.id, error)
        return "failed", attempt, error


def _key(a: dict[str, Any]) -> str:
    return f"{a['device_id']}|{a['rule']}"


def _minutes(d: timedelta) -> str:
    return f"{int(d.total_seconds() // 60)} min"


def _alert_dict(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "device_id": a.device_id,
        "rule": a.rule,
        "severity": a.severity,
        "state": a.state,
        "building": a.building,
        "message": a.message,
        "raised_at": a.raised_at.isoformat(),
        "acknowledged_by": a.acknowledged_by,
        "assignee": a.assignee,
    }


def _wo_dict(w: WorkOrder) -> dict[str, Any]:
    return {
        "id": w.id,
        "priority": w.priority,
        "title": w.title,
        "category": w.category,
        "location": w.location,
        "due_at": w.due_at.isoformat(),
        "source": w.source,
    }
