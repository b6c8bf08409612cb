"""Test harness: real services (Mosquitto, RabbitMQ, PostgreSQL, VictoriaMetrics, InfluxDB
1.x, SMTP) started on free 127.0.0.1 ports in temp folders, and stopped again.

Every ``start_*`` function starts one real server process (or, for SMTP, a real aiosmtpd
server in a thread), waits a bounded time until it answers, and returns a small frozen
dataclass handle with its address and helpers. Nothing here is a mock.

One module per service (:mod:`~tests.harness.mosquitto`, :mod:`~tests.harness.postgres`,
:mod:`~tests.harness.victoria_metrics`, :mod:`~tests.harness.influxdb`,
:mod:`~tests.harness.smtp`, :mod:`~tests.harness.webhook`); ports, program lookup, errors and
the process wrapper they share are in :mod:`tests.harness.process`, which also states the
rules every helper keeps. The pytest fixtures built on these are in tests/conftest.py.
:mod:`tests.harness.netns` (root only; the tests that need it import it) makes test hosts in
network namespaces on a private /24, whose links can be cut, made lossy and slow, and
restored.
"""

from tests.harness.influxdb import InfluxDB1, InfluxQLError, start_influxdb
from tests.harness.mosquitto import Mosquitto, start_mosquitto
from tests.harness.postgres import Postgres, start_postgres
from tests.harness.process import (
    INSTALL_SCRIPT,
    LOOPBACK,
    ServiceStartError,
    ServiceUnavailable,
    descendants,
    free_port,
    stop_all,
)
from tests.harness.rabbitmq import RabbitMQ, start_rabbitmq
from tests.harness.smtp import ReceivedMail, Smtp, start_smtp
from tests.harness.victoria_metrics import VictoriaMetrics, start_victoria_metrics
from tests.harness.webhook import Webhook

__all__ = [
    "INSTALL_SCRIPT",
    "LOOPBACK",
    "InfluxDB1",
    "InfluxQLError",
    "Mosquitto",
    "Postgres",
    "RabbitMQ",
    "ReceivedMail",
    "ServiceStartError",
    "ServiceUnavailable",
    "Smtp",
    "VictoriaMetrics",
    "Webhook",
    "descendants",
    "free_port",
    "start_influxdb",
    "start_mosquitto",
    "start_postgres",
    "start_rabbitmq",
    "start_smtp",
    "start_victoria_metrics",
    "stop_all",
]
