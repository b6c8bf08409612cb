"""Test harness: real services (Mosquitto, PostgreSQL, VictoriaMetrics, InfluxDB 1.x, SMTP)
started on free 127.0.0.1 ports in temp folders, and stopped again.

See :mod:`tests.harness.services`; the pytest fixtures built on it are in tests/conftest.py.
"""

from tests.harness.services import (
    INSTALL_SCRIPT,
    LOOPBACK,
    InfluxDB1,
    InfluxQLError,
    Mosquitto,
    Postgres,
    ReceivedMail,
    ServiceStartError,
    ServiceUnavailable,
    Smtp,
    VictoriaMetrics,
    free_port,
    start_influxdb,
    start_mosquitto,
    start_postgres,
    start_smtp,
    start_victoria_metrics,
    stop_all,
)

__all__ = [
    "INSTALL_SCRIPT",
    "LOOPBACK",
    "InfluxDB1",
    "InfluxQLError",
    "Mosquitto",
    "Postgres",
    "ReceivedMail",
    "ServiceStartError",
    "ServiceUnavailable",
    "Smtp",
    "VictoriaMetrics",
    "free_port",
    "start_influxdb",
    "start_mosquitto",
    "start_postgres",
    "start_smtp",
    "start_victoria_metrics",
    "stop_all",
]
