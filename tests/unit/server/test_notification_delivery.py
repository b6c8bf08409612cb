"""Delivery without a network and without sleeping: attempts and pauses of a round, what
is recorded of a failure, secrets from the environment and masked in third-party logs, and
the worker thread going on after a job that raised."""

from __future__ import annotations

import logging
import threading

import pytest
from prometheus_client import CollectorRegistry

from core.site import NotificationChannel
from server.notifications import policy
from server.notifications.delivery import (
    Counters,
    MissingSecret,
    Outcome,
    Sender,
    Worker,
    env_names,
    expand_env,
)

SECRET = "tok-5e1f9a"
CHANNEL = NotificationChannel(
    id="hook", url="json://127.0.0.1:9/hook/${CFM_UNIT_TOKEN}", role="maintenance"
)


class Channel:
    """Answers each attempt from a script: True delivered, False refused, or raises."""

    def __init__(self, *answers: bool | Exception) -> None:
        self.answers = list(answers)
        self.urls: list[str] = []

    def __call__(self, url: str, title: str, body: str) -> bool:
        self.urls.append(url)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFM_UNIT_TOKEN", SECRET)


def sender(channel: Channel, sleeps: list[float]) -> tuple[Sender, CollectorRegistry]:
    registry = CollectorRegistry()
    return Sender([CHANNEL], Counters(registry), channel, sleeps.append), registry


def count(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name, {"channel": "hook"}) or 0.0


def test_a_round_retries_with_growing_pauses_until_delivered() -> None:
    sleeps: list[float] = []
    channel = Channel(False, ConnectionError(), True)
    s, registry = sender(channel, sleeps)
    assert s.send(CHANNEL, "t", "b") == Outcome("sent", 3)
    assert sleeps == [policy.retry_pause(1), policy.retry_pause(2)]
    assert channel.urls == [f"json://127.0.0.1:9/hook/{SECRET}"] * 3  # expanded when sent
    assert count(registry, "notifications_sent_total") == 1
    assert count(registry, "notifications_failed_total") == 0


def test_a_failed_round_is_counted_once_and_records_no_url() -> None:
    sleeps: list[float] = []
    leaky = RuntimeError(f"cannot reach json://127.0.0.1:9/hook/{SECRET}")
    s, registry = sender(Channel(False, False, leaky), sleeps)
    out = s.send(CHANNEL, "t", "b")
    assert out == Outcome("failed", policy.RETRIES, "RuntimeError")
    assert len(sleeps) == policy.RETRIES - 1  # no pause after the last attempt
    assert count(registry, "notifications_failed_total") == 1
    assert count(registry, "notifications_sent_total") == 0


def test_a_secret_gone_from_the_environment_fails_at_once_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []
    channel = Channel(True)
    s, _ = sender(channel, sleeps)
    monkeypatch.delenv("CFM_UNIT_TOKEN")
    out = s.send(CHANNEL, "t", "b")
    assert out == Outcome("failed", 1, "environment variable CFM_UNIT_TOKEN is not set")
    assert channel.urls == [] and sleeps == []


def test_a_missing_secret_stops_the_sender_from_being_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CFM_UNIT_TOKEN")
    with pytest.raises(MissingSecret, match="CFM_UNIT_TOKEN is not set"):
        Sender([CHANNEL], Counters(CollectorRegistry()), Channel())


def test_env_names_and_expansion() -> None:
    assert env_names("mailto://u:${A_1}@h/${B}") == ["A_1", "B"]
    assert expand_env("json://h/${CFM_UNIT_TOKEN}/x") == f"json://h/{SECRET}/x"


def test_secrets_are_masked_in_apprise_and_urllib3_logs_until_unmasked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # influxdb-client sets "urllib3" to WARNING when any client is made (an earlier test may
    # have made one): the records this test masks must reach the capture.
    for name in ("urllib3", "urllib3.connectionpool"):
        caplog.set_level(logging.DEBUG, logger=name)
    s, _ = sender(Channel(), [])
    s.mask_secrets()
    try:
        logging.getLogger("apprise").debug("POST json://h/hook/%s", SECRET)
        logging.getLogger("urllib3.connectionpool").debug(f"/hook/{SECRET} 200")
        assert SECRET not in caplog.text
        assert caplog.text.count("/hook/***") == 2
    finally:
        s.unmask_secrets()
    caplog.clear()
    logging.getLogger("apprise").debug("POST json://h/hook/%s", SECRET)
    assert SECRET in caplog.text  # the filter is gone with the notifier


def test_the_worker_handles_jobs_in_order_and_survives_one_that_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[int] = []
    main = threading.get_ident()
    threads: set[int] = set()

    def handle(job: int) -> None:
        threads.add(threading.get_ident())
        if job == 2:
            raise ValueError("bad job")
        done.append(job)

    worker: Worker[int] = Worker(handle)
    worker.start()
    try:
        for job in (1, 2, 3):
            worker.put(job)
        worker.drain(10)
    finally:
        worker.stop()
    assert done == [1, 3]
    assert main not in threads  # never on the caller's thread
    assert "notification worker" in caplog.text
