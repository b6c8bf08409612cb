"""Notifications: the right people told once, through Apprise channels configured per site.

Routing: an alert goes to the channels of the roles its rule names (`notify`), limited to
the channel's buildings (a dorm manager hears about their buildings only) and severity.
Work orders go to maintenance. Gateway alerts go to maintenance.

Once: every (subject, channel, event) is a unique row of the notification log, written
before sending; a replayed batch, a restart or a repeated live event finds it and sends
nothing. Throttled: at most `max_per_hour` messages per channel; what is held back is sent
as one digest when the channel has room again. Escalation and reminders run on `tick()`.

Sending happens on a worker thread (never on the ingest path), with retries; failures are
counted and logged by channel id, never with the channel's URL (it carries secrets).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.rules_spec import RuleSpec, Severity
from core.site import NotificationChannel, Notifications, SiteConfig
from server.alerts.model import Alert, AlertEvent, AlertState
from server.notifications.model import NotificationLog
from server.notifications.stream import LiveEvent

log = logging.getLogger(__name__)

SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
RETRIES = 3

Send = Callable[[str, str, str], bool]
"""(apprise_url, title, body) -> delivered"""


class MissingSecret(ValueError):
    pass


def expand_env(url: str) -> str:
    """${VAR} from the environment; a missing one is an error naming it (never its value)."""

    def sub(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            raise MissingSecret(f"environment variable {m.group(1)} is not set")
        return value

    return _ENV.sub(sub, url)


def apprise_send(url: str, title: str, body: str) -> bool:
    import apprise

    ap = apprise.Apprise()
    if not ap.add(url):
        return False
    return bool(ap.notify(title=title, body=body))


@dataclass(frozen=True, slots=True)
class Message:
    subject: str  # "alert:12" | "wo:5"
    event: str  # raised | resolved | escalated | reminder-N | opened
    channel: NotificationChannel
    title: str
    body: str


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
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._sent_at: dict[str, deque[float]] = {}
        self._digest: dict[str, list[Message]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()
        for ch in self.config.channels:
            expand_env(ch.url)  # fail at start-up naming a missing secret, not at 3 a.m.
        self.sent = Counter(
            "notifications_sent", "Notifications delivered", ["channel"], registry=registry
        )
        self.failed = Counter(
            "notifications_failed", "Notifications that failed", ["channel"], registry=registry
        )
        self.held = Counter(
            "notifications_throttled",
            "Notifications held back for a digest",
            ["channel"],
            registry=registry,
        )

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, tick_seconds: float | None = None) -> None:
        """The delivery worker, and (with `tick_seconds`) a thread running `tick()`."""
        if self._thread is not None or not self.config.channels:
            return
        self._thread = threading.Thread(target=self._worker, name="notify", daemon=True)
        self._thread.start()
        if tick_seconds:
            self._ticker = threading.Thread(
                target=self._tick_loop, args=(tick_seconds,), name="notify-tick", daemon=True
            )
            self._ticker.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None

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
        """Broadcaster listener (ingest thread): decide and enqueue, never send here."""
        if not self.config.channels:
            return
        if ev.type == "alert":
            state = ev.data.get("state")
            if state == AlertState.ACTIVE:
                self._alert(ev.data, "raised")
            elif state == AlertState.RESOLVED:
                self._alert(ev.data, "resolved")
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
        where = a.get("building") or "campus"
        verb = {"raised": "ALERT", "resolved": "resolved"}.get(event, event.upper())
        title = f"[{a['severity']}] {verb}: {a['device_id']} {a['rule'].replace('_', ' ')}"
        body = (
            f"{self.site_name}, {where}: {a.get('message', '')}\n"
            f"raised {a.get('raised_at')}; state {a.get('state')}; alert #{a['id']}"
        )
        for ch in self.channels(roles or self.roles_for(a), a.get("building"), a["severity"]):
            self._queue.put(Message(f"alert:{a['id']}", event, ch, title, body))

    def _work_order(self, w: dict[str, Any]) -> None:
        title = f"[{w.get('priority')}] work order #{w['id']}: {w.get('title') or w['category']}"
        body = (
            f"{self.site_name}: {w.get('location', '')}\ncategory {w['category']}, "
            f"due {w.get('due_at')}; source {w.get('source')}"
        )
        for ch in self.channels(("maintenance",), w.get("building"), Severity.CRITICAL.value):
            self._queue.put(Message(f"wo:{w['id']}", "opened", ch, title, body))

    # -- escalation and reminders (time-driven) --------------------------------------------
    def tick(self, now: datetime | None = None) -> None:
        now = now or self.clock.now()
        esc = self.config.escalation
        if self.config.channels:
            with self.sessions.begin() as s:
                open_alerts = s.scalars(select(Alert).where(Alert.state == AlertState.ACTIVE))
                for alert in open_alerts:
                    age = now - alert.raised_at
                    data = _alert_dict(alert)
                    done = set(
                        s.scalars(
                            select(NotificationLog.event).where(
                                NotificationLog.subject == f"alert:{alert.id}"
                            )
                        )
                    )
                    if age >= esc.after and not _has_event(alert, "escalated"):
                        alert.history.append(
                            AlertEvent(
                                at=now,
                                actor="system",
                                action="escalated",
                                comment=f"not acknowledged after {_minutes(esc.after)}; "
                                f"told {esc.to}",
                            )
                        )
                        self._alert(data, "escalated", (esc.to,))
                    if esc.remind_every > timedelta(0):
                        n = min(int(age / esc.remind_every), esc.max_reminders)
                        for i in range(1, n + 1):
                            if f"reminder-{i}" not in done:  # the log dedupes; skip its work
                                self._alert(data, f"reminder-{i}")
        self._flush_digests()

    # -- delivery --------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            msg = self._queue.get()
            try:
                if msg is None:
                    return
                self._deliver(msg)
            except Exception:
                log.exception("notification worker")
            finally:
                self._queue.task_done()

    def _claim(self, msg: Message, status: str) -> bool:
        """Write the log row first: the unique key makes a second claim fail -> not sent."""
        try:
            with self.sessions.begin() as s:
                s.add(
                    NotificationLog(
                        subject=msg.subject,
                        channel=msg.channel.id,
                        event=msg.event,
                        at=self.clock.now(),
                        status=status,
                        attempts=0,
                        title=msg.title,
                        error="",
                    )
                )
        except IntegrityError:
            return False
        return True

    def _record(self, msg: Message, status: str, attempts: int, error: str = "") -> None:
        with self.sessions.begin() as s:
            row = s.scalars(
                select(NotificationLog).where(
                    NotificationLog.subject == msg.subject,
                    NotificationLog.channel == msg.channel.id,
                    NotificationLog.event == msg.event,
                )
            ).one()
            row.status, row.attempts, row.error = status, attempts, error[:500]

    def _now_s(self) -> float:
        return self.clock.now().timestamp()  # the injected clock: tests move it an hour on

    def _room(self, channel: str) -> bool:
        window = self._sent_at.setdefault(channel, deque())
        cutoff = self._now_s() - 3600
        while window and window[0] < cutoff:
            window.popleft()
        return len(window) < self.config.max_per_hour

    def _deliver(self, msg: Message) -> None:
        if not self._claim(msg, "pending"):
            return  # already sent (or held) once: deduplicated
        with self._lock:
            if not self._room(msg.channel.id):
                self._digest.setdefault(msg.channel.id, []).append(msg)
                self.held.labels(msg.channel.id).inc()
                self._record(msg, "digest", 0)
                return
            self._sent_at[msg.channel.id].append(self._now_s())
        self._record(msg, *self._send_with_retries(msg.channel, msg.title, msg.body))

    def _send_with_retries(
        self, channel: NotificationChannel, title: str, body: str
    ) -> tuple[str, int, str]:
        error = ""
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
                error = f"{exc.__class__.__name__}"
            time.sleep(0.5 * attempt)
        self.failed.labels(channel.id).inc()
        log.warning("notification to channel %s failed: %s", channel.id, error)
        return "failed", attempt, error

    def _flush_digests(self) -> None:
        with self._lock:
            ready = {ch: msgs for ch, msgs in self._digest.items() if msgs and self._room(ch)}
            for ch in ready:
                self._digest[ch] = []
                self._sent_at[ch].append(self._now_s())
        for msgs in ready.values():
            channel = msgs[0].channel
            title = f"{len(msgs)} notifications held back (more than {self.config.max_per_hour}/h)"
            body = "\n".join(f"- {m.title}" for m in msgs)
            status, _, _ = self._send_with_retries(channel, title, body)
            log.info("digest of %d to channel %s: %s", len(msgs), channel.id, status)


def _has_event(alert: Alert, action: str) -> bool:
    return any(e.action == action for e in alert.history)


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
    }
