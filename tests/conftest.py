"""Fixtures that start real services for the tests (see tests/harness/, one module each).

A missing program fails the test with the name of its Debian package; nothing is skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.harness import (
    InfluxDB1,
    Mosquitto,
    Postgres,
    RabbitMQ,
    ServiceStartError,
    ServiceUnavailable,
    Smtp,
    VictoriaMetrics,
    Webhook,
    start_influxdb,
    start_mosquitto,
    start_postgres,
    start_rabbitmq,
    start_smtp,
    start_victoria_metrics,
)

T = TypeVar("T")


def _start(factory: Callable[[], T]) -> T:
    try:
        return factory()
    except (ServiceUnavailable, ServiceStartError) as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh anonymous Mosquitto on a free loopback port, with persistence."""
    broker = _start(lambda: start_mosquitto(tmp_path))
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_auth(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto that requires a login (gateway credentials as in production)."""
    broker = _start(lambda: start_mosquitto(tmp_path, username="gw-test", password="gw-secret-1"))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """One PostgreSQL cluster for the session; tests get their own database from it."""
    server = _start(lambda: start_postgres(tmp_path_factory.mktemp("pg")))
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database, dropped after the test."""
    url = postgres_server.create_database()
    yield url
    with contextlib.suppress(Exception):
        postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def rabbitmq(tmp_path: Path) -> Iterator[RabbitMQ]:
    """A fresh RabbitMQ node (MQTT and consistent-hash plugins) on free loopback ports."""
    node = _start(lambda: start_rabbitmq(tmp_path))
    yield node
    node.stop()


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    vm = _start(lambda: start_victoria_metrics(tmp_path))
    yield vm
    vm.stop()


@pytest.fixture
def influxdb1(tmp_path: Path) -> Iterator[InfluxDB1]:
    influx = _start(lambda: start_influxdb(tmp_path))
    yield influx
    influx.stop()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Smtp]:
    smtp = _start(lambda: start_smtp(tmp_path))
    yield smtp
    smtp.stop()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A real HTTP receiver on a loopback port for json:// notification channels."""
    hook = Webhook()
    yield hook
    hook.close()
