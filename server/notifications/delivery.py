"""Delivery at the edge: the worker thread that takes jobs off a queue (never the ingest or
request thread), the ticker thread, sending through Apprise with retries and an injected
sleep, the channel secrets (${ENV} in URLs, expanded only when sent and masked in what
Apprise and urllib3 log), and the delivery counters. What to send and to whom is decided
elsewhere; this module does not read or write the notification log."""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter

from core.site import NotificationChannel
from server.notifications import policy

log = logging.getLogger(__name__)
J = TypeVar("J")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
REDACTED_LOGGERS = ("apprise", "urllib3.connectionpool")

Send = Callable[[str, str, str], bool]
"""(apprise_url, title, body) -> delivered"""
Sleep = Callable[[float], None]


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


def apprise_send(url: str, title: str, body: str) -> bool:
    import apprise  # loaded on the first message: most processes never send one

    ap = apprise.Apprise()
    if not ap.add(url):
        return False
    return bool(ap.notify(title=title, body=body))


class Counters:
    def __init__(self, registry: CollectorRegistry) -> None:
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


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # sent | failed
    attempts: int
    error: str = ""


class Sender:
    """One delivery round to a channel: up to `policy.RETRIES` attempts."""

    def __init__(
        self,
        channels: Iterable[NotificationChannel],
        counters: Counters,
        send: Send = apprise_send,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.counters = counters
        self._send = send
        self._sleep = sleep
        channels = tuple(channels)
        for ch in channels:
            expand_env(ch.url)  # fail at start-up naming a missing secret, not at 3 a.m.
        self._redact = RedactSecrets(sorted({n for ch in channels for n in env_names(ch.url)}))

    def mask_secrets(self) -> None:
        if self._redact.names:
            for name in REDACTED_LOGGERS:
                logging.getLogger(name).addFilter(self._redact)

    def unmask_secrets(self) -> None:
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(self._redact)

    def send(self, channel: NotificationChannel, title: str, body: str) -> Outcome:
        error = ""
        attempt = 0
        for attempt in range(1, policy.RETRIES + 1):
            try:
                if self._send(expand_env(channel.url), title, body):
                    self.counters.sent.labels(channel.id).inc()
                    return Outcome("sent", attempt)
                error = "channel refused the message"
            except MissingSecret as exc:
                error = str(exc)
                break
            except Exception as exc:  # a plugin's own error: retried, then recorded
                error = exc.__class__.__name__  # its text may quote the URL
            if attempt < policy.RETRIES:
                self._sleep(policy.retry_pause(attempt))
        self.counters.failed.labels(channel.id).inc()
        log.warning("notification to channel %s failed: %s", channel.id, error)
        return Outcome("failed", attempt, error)


class Worker(Generic[J]):
    """One thread handling queued jobs in order; a job that raises is logged and the next
    one still runs."""

    def __init__(self, handle: Callable[[J], None], name: str = "notify") -> None:
        self._handle = handle
        self._name = name
        self._queue: queue.Queue[J | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def put(self, job: J) -> None:
        self._queue.put(job)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=timeout)
            self._thread = None

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far was handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._handle(job)
            except Exception:
                log.exception("notification worker")
            finally:
                self._queue.task_done()


class Ticker:
    """Calls `tick` every `every` seconds on its own thread until stopped."""

    def __init__(self, tick: Callable[[], None], every: float) -> None:
        self._tick = tick
        self._every = every
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify-tick", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                self._tick()
            except Exception:
                log.exception("notification tick failed")
