"""Deployment files that can be proven here (issue 11): the systemd units pass
`systemd-analyze verify` without a single warning and carry their hardening; the database
roles of deploy/postgres/roles.sql, applied to a real PostgreSQL, let each part do its job
and nothing more; docker-compose.yml wires those roles (the compose itself cannot run here:
no Docker engine)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from glob import glob
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from sqlalchemy import create_engine, insert, select

from core.tsdb_schema import metadata as ts_metadata
from core.tsdb_schema import readings as ts_readings
from server.db.engine import make_engine, migrate
from tests.harness import Postgres

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
ROLES_SQL = ROOT / "deploy" / "postgres" / "roles.sql"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(
            "systemd-analyze is not installed (Debian package 'systemd'); install it with "
            "sudo bash scripts/install-system-deps.sh",
            pytrace=False,
        )
    return found


def verify(unit_dir: Path) -> subprocess.CompletedProcess[str]:
    units = sorted(str(p) for p in unit_dir.glob("*.service"))
    return subprocess.run(
        [systemd_analyze(), "verify", *units], capture_output=True, text=True, timeout=60
    )


def installed_copy(tmp: Path) -> Path:
    """The units as installed, but starting this checkout's `facility` (verify checks that
    the program exists; on a real host it is /opt/facility/venv/bin/facility)."""
    exe = str(Path(sys.executable).with_name("facility"))
    out = tmp / "units"
    out.mkdir()
    for unit in UNITS.glob("*.service"):
        text = unit.read_text().replace("/opt/facility/venv/bin/facility", exe)
        (out / unit.name).write_text(text)
    return out


def test_units_verify_without_warnings(tmp_path: Path) -> None:
    result = verify(installed_copy(tmp_path))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # The check itself catches a typo (verify exits 0 on unknown keys: the output tells).
    broken = tmp_path / "broken"
    broken.mkdir()
    text = (UNITS / "facility-server.service").read_text()
    text = text.replace("/opt/facility/venv/bin/facility", str(Path(sys.executable)))
    (broken / "x.service").write_text(text.replace("ProtectSystem=strict", "ProtectSytem=strict"))
    assert "Unknown key" in verify(broken).stderr


@pytest.mark.parametrize("name", ["facility-gateway.service", "facility-server.service"])
def test_units_are_hardened(name: str) -> None:
    text = (UNITS / name).read_text()
    for line in (
        "User=facility",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
    ):
        assert f"\n{line}\n" in text, f"{name}: {line}"
    if name == "facility-gateway.service":
        assert "\nSupplementaryGroups=dialout\n" in text  # the RS-485 adapter
        assert "\nDevicePolicy=closed\n" in text and "DeviceAllow=char-ttyUSB rw" in text
    else:
        assert "\nPrivateDevices=yes\n" in text and "--host 127.0.0.1" in text


# -- database roles -------------------------------------------------------------------------


@pytest.fixture
def roles(postgres_server: Postgres, tmp_path: Path) -> Iterator[dict[str, str]]:
    """roles.sql applied with psql (twice: it must be safe to re-run) under names of this
    test's own, so the shared test cluster keeps no trace."""
    tag = tmp_path.name[-12:].lower().replace("-", "_")
    names = {
        "server_role": f"srv_{tag}",
        "gateway_role": f"gw_{tag}",
        "grafana_role": f"graf_{tag}",
        "server_db": f"fac_{tag}",
        "ts_db": f"ts_{tag}",
    }
    psql = shutil.which("psql") or next(iter(sorted(glob("/usr/lib/postgresql/*/bin/psql"))), "")
    assert psql, "psql is not installed (Debian package postgresql-client)"
    args = [psql, "-q", "-h", postgres_server.host, "-p", str(postgres_server.port)]
    args += ["-U", postgres_server.user, "-d", "postgres", "-f", str(ROLES_SQL)]
    for k, v in {**names, "server_password": "s-pw", "gateway_password": "g-pw"}.items():
        args += ["-v", f"{k}={v}"]
    for _ in range(2):
        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    yield names
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        for db in (names["server_db"], names["ts_db"]):
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        for role in ("server_role", "gateway_role", "grafana_role"):
            conn.execute(f'DROP ROLE IF EXISTS "{names[role]}"')


def url(pg: Postgres, role: str, db: str) -> str:
    return f"postgresql+psycopg://{role}@{pg.host}:{pg.port}/{db}"


def refused(pg: Postgres, role: str, db: str, sql: str) -> str:
    try:
        with psycopg.connect(f"postgresql://{role}@{pg.host}:{pg.port}/{db}") as conn:
            conn.execute(sql)
    except psycopg.Error as exc:
        return str(exc)
    raise AssertionError(f"{role} on {db} was allowed: {sql}")


def test_each_database_role_can_do_its_job_and_nothing_more(
    postgres_server: Postgres, roles: dict[str, str]
) -> None:
    pg = postgres_server
    srv, gw, graf = roles["server_role"], roles["gateway_role"], roles["grafana_role"]
    fac, ts = roles["server_db"], roles["ts_db"]
    # The server owns its schema: Alembic migrates it from nothing.
    engine = make_engine(url(pg, srv, fac))
    migrate(engine)
    engine.dispose()
    # A gateway makes and writes the time-series tables (as its SQL sink does).
    gateway = create_engine(url(pg, gw, ts))
    ts_metadata.create_all(gateway)
    row: dict[str, Any] = {
        "reading_id": "r1",
        "device_id": "canteen-fridge-01",
        "metric": "temperature",
        "ts": 1,
        "value_num": 3.5,
        "received_ts": 1,
        "gateway_id": "gw-canteen",
        "quality": "good",
    }
    with gateway.begin() as conn:
        conn.execute(insert(ts_readings).values(**row))
    gateway.dispose()
    # The server and Grafana read the readings.
    for role in (srv, graf):
        reader = create_engine(url(pg, role, ts))
        with reader.connect() as conn:
            assert conn.execute(select(ts_readings.c.value_num)).scalar_one() == 3.5
        reader.dispose()
    # ... and nothing more.
    assert "permission denied" in refused(
        pg, srv, ts, "INSERT INTO ts_readings SELECT * FROM ts_readings"
    )
    assert "permission denied" in refused(pg, graf, ts, "DELETE FROM ts_readings")
    assert "permission denied" in refused(pg, graf, ts, "CREATE TABLE x (i int)")
    assert "permission denied" in refused(pg, srv, ts, "CREATE TABLE x (i int)")
    for role in (gw, graf):  # the server's database (users, sessions, work orders)
        assert "permission denied" in refused(pg, role, fac, "SELECT 1")
    assert "permission denied" in refused(pg, gw, ts, "CREATE ROLE x")


def test_compose_gives_each_part_its_role() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    env = {name: svc.get("environment", {}) for name, svc in services.items()}
    assert "facility_server:" in env["server"]["FACILITY_SERVER_DATABASE_URL"]
    assert "/facility" in env["server"]["FACILITY_SERVER_DATABASE_URL"]
    assert "facility_server:" in env["server"]["FACILITY_SERVER_TSDB_URL"]
    assert env["server"]["FACILITY_SERVER_TSDB_URL"].endswith("/facility_ts")
    assert "facility_gateway:" in env["gateway"]["FACILITY_GATEWAY_TSDB_URL"]
    assert env["gateway"]["FACILITY_GATEWAY_TSDB_URL"].endswith("/facility_ts")
    mounts = " ".join(services["postgres"]["volumes"])
    assert "deploy/postgres/init-roles.sh:/docker-entrypoint-initdb.d/" in mounts
    assert "deploy/postgres/roles.sql:/facility/roles.sql" in mounts
    datasource = (ROOT / "dashboards/provisioning/datasources").glob("*.y*ml")
    text = "".join(p.read_text() for p in datasource)
    assert "facility_grafana" in text and "facility_ts" in text


def test_migrations_have_one_head() -> None:
    """Engineers add migrations in parallel: exactly one head, or start-up cannot upgrade."""
    from alembic.script import ScriptDirectory

    from server.db.engine import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"several Alembic heads {heads}: renumber and fix down_revision"
