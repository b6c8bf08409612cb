"""A production installation as README.md ("Production") and docs/production.md describe it,
end to end (issue 11): a fresh PostgreSQL with the roles of deploy/postgres/roles.sql,
Mosquitto with deploy/mosquitto's configuration, ACL and one account per client, the first
admin made by `facility users add`, then `facility server` and `facility gateway` as
processes with their environment. The fridge publishes too-warm readings on its own topic
with its own account, as the device would; the alert reaches the admin through the API."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from glob import glob
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from core.site import DEFAULT_SITE_FILE
from tests.harness import Postgres, free_port
from tests.harness.process import Process
from tests.helpers import wait_until
from tests.security.mqtt_probe import connect
from tests.security.support import DEPLOY, start_deploy_mosquitto

pytestmark = pytest.mark.e2e
FRIDGE = "canteen-fridge-01"
ACCOUNTS = {
    "server": secrets.token_urlsafe(12),
    "gw-canteen": secrets.token_urlsafe(12),
    FRIDGE: secrets.token_urlsafe(12),
}
DB_PASSWORDS = {"server_password": "srv-pw", "gateway_password": "gw-pw", "grafana_password": "gf"}
ADMIN_PASSWORD = "Granite-Lantern-58"


def facility_exe() -> str:
    return str(Path(sys.executable).with_name("facility"))


@pytest.fixture
def database(postgres_server: Postgres) -> Iterator[Postgres]:
    """`psql ... -f deploy/postgres/roles.sql` on the fresh cluster, as the docs say; the
    databases and roles are dropped afterwards (the test cluster is shared)."""
    pg = postgres_server
    psql = shutil.which("psql") or next(iter(sorted(glob("/usr/lib/postgresql/*/bin/psql"))), "")
    args = [psql, "-q", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", "postgres"]
    args += ["-v", "ON_ERROR_STOP=1"]
    for k, v in DB_PASSWORDS.items():
        args += ["-v", f"{k}={v}"]
    done = subprocess.run(
        [*args, "-f", str(DEPLOY / "postgres" / "roles.sql")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    yield pg
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        for db in ("facility", "facility_ts"):
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        for role in ("facility_server", "facility_gateway", "facility_grafana"):
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def env_of(values: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("FACILITY_")}
    return {**keep, **values}


def test_fresh_install_raises_a_fridge_alert_seen_by_its_first_admin(
    database: Postgres, tmp_path: Path
) -> None:
    pg = database
    port, broker = start_deploy_mosquitto(tmp_path, ACCOUNTS)
    processes: list[Process] = []
    try:
        http_port = free_port()
        db = f"{pg.host}:{pg.port}"
        server_env = env_of(
            {
                "FACILITY_SERVER_DATABASE_URL": f"postgresql+psycopg://facility_server:srv-pw@{db}/facility",
                "FACILITY_SERVER_TSDB_URL": f"postgresql+psycopg://facility_server:srv-pw@{db}/facility_ts",
                "FACILITY_SERVER_BROKER": f"mqtt://127.0.0.1:{port}",
                "FACILITY_SERVER_MQTT_USERNAME": "server",
                "FACILITY_SERVER_MQTT_PASSWORD": ACCOUNTS["server"],
                "FACILITY_SERVER_SECRET_KEY": secrets.token_urlsafe(48),
                "FACILITY_SERVER_SITE_FILE": str(DEFAULT_SITE_FILE),
                "FACILITY_SERVER_TICK_SECONDS": "1",
            }
        )
        # The first admin, before the server ever ran (the command migrates the schema).
        made = subprocess.run(
            [facility_exe(), "users", "add", "admin", "--role", "admin", "--password-stdin"],
            input=ADMIN_PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=120,
            env=server_env,
            cwd=tmp_path,
        )
        assert made.returncode == 0, made.stderr
        server = Process(
            "facility-server",
            [facility_exe(), "server", "--port", str(http_port)],
            tmp_path / "server.log",
            cwd=tmp_path,
            env=server_env,
        )
        processes.append(server)
        server.start()
        url = f"http://127.0.0.1:{http_port}"
        server.wait_ready(
            lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200, "/healthz", 60
        )
        gateway = Process(
            "facility-gateway",
            [facility_exe(), "gateway"],
            tmp_path / "gateway.log",
            cwd=tmp_path,
            env=env_of(
                {
                    "FACILITY_GATEWAY_GATEWAY_ID": "gw-canteen",
                    "FACILITY_GATEWAY_DEVICE_BROKER": f"mqtt://127.0.0.1:{port}",
                    "FACILITY_GATEWAY_MQTT_USERNAME": "gw-canteen",
                    "FACILITY_GATEWAY_MQTT_PASSWORD": ACCOUNTS["gw-canteen"],
                    "FACILITY_GATEWAY_SITE_FILE": str(DEFAULT_SITE_FILE),
                    "FACILITY_GATEWAY_TSDB_URL": f"postgresql+psycopg://facility_gateway:gw-pw@{db}/facility_ts",
                    "FACILITY_GATEWAY_STATUS_EVERY_S": "2",
                }
            ),
        )
        processes.append(gateway)
        gateway.start()

        login = httpx.post(
            f"{url}/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
        )
        assert login.status_code == 200, login.text
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert httpx.get(f"{url}/api/devices", headers=admin).status_code == 200

        # The fridge, with its own account on its own topic: too warm, every second.
        fridge = connect(port, FRIDGE, ACCOUNTS[FRIDGE])
        assert fridge.connect_rc == 0
        topic = "campus/demo/cold/canteen-fridge-01/telemetry"
        seq = 0

        def too_warm() -> list[dict[str, Any]]:
            nonlocal seq
            seq += 1
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            body = {"seq": seq, "ts": now_ms, "t": 11.5, "door": False, "comp": False}
            assert fridge.publish(topic, orjson.dumps(body)) < 0x80  # 0x10: no subscriber yet
            alerts: list[dict[str, Any]] = httpx.get(
                f"{url}/api/alerts?state=active", headers=admin, timeout=10
            ).json()
            return [a for a in alerts if a["device_id"] == FRIDGE]

        try:
            raised = wait_until(too_warm, 150, "a fridge alert seen by the admin", interval=1.0)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\n--- server log:\n{server.log_tail()}\n--- gateway log:\n"
                f"{gateway.log_tail()}"
            ) from None
        finally:
            fridge.close()
        assert {a["rule"] for a in raised} & {"temp_high_warning", "temp_high_critical"}
        device = httpx.get(f"{url}/api/devices/{FRIDGE}", headers=admin).json()
        assert device["values"]["temperature"]["value"] == 11.5
        # Readings went through the gateway into the time-series database it owns.
        history = httpx.get(
            f"{url}/api/devices/{FRIDGE}/readings?metric=temperature", headers=admin
        ).json()
        assert history["points"]
        # The server's own logs never print the admin's password or the broker's.
        logs = server.log_tail(200_000) + gateway.log_tail(200_000)
        for secret in (ADMIN_PASSWORD, ACCOUNTS["server"], ACCOUNTS["gw-canteen"]):
            assert secret not in logs
    finally:
        for p in reversed(processes):
            with contextlib.suppress(Exception):
                p.stop()
        broker.stop()
