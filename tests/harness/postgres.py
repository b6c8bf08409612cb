"""PostgreSQL for the tests: a throw-away cluster (initdb) and one database per test."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.process import (
    LOOPBACK,
    START_TIMEOUT,
    Process,
    ProcessHandle,
    ServiceStartError,
    ServiceUnavailable,
    free_port,
    register,
    subdir,
    unregister,
)

__all__ = ["Postgres", "start_postgres"]


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path)) or (0,)


def _postgres_bindir() -> Path:
    override = os.environ.get("CFM_PG_BINDIR")
    if override:
        if (Path(override) / "initdb").exists():
            return Path(override)
        raise ServiceUnavailable("initdb", "postgresql", f"CFM_PG_BINDIR={override} has no initdb")
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for d in dirs:
        if (Path(d) / "initdb").exists() and (Path(d) / "postgres").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    if initdb and (Path(initdb).parent / "postgres").exists():
        return Path(initdb).parent
    raise ServiceUnavailable("initdb/postgres", "postgresql", "looked in /usr/lib/postgresql/*/bin")


_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_db_counter = itertools.count(1)


@dataclass(frozen=True)
class Postgres(ProcessHandle):
    """A running PostgreSQL server on ``host:port`` with superuser ``postgres``, trust auth.

    ``url`` is the SQLAlchemy URL (psycopg 3 driver) of the ``postgres`` database; use
    :meth:`create_database` for a fresh, empty database per test (a few tens of ms).
    """

    host: str
    port: int
    url: str
    user: str
    data_dir: Path
    log_path: Path
    _process: Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]
    _cluster_root: Path | None = field(repr=False, compare=False, default=None)

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL for ``dbname``: ``postgresql+psycopg://postgres@127.0.0.1:P/NAME``."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq/psycopg connection string for ``dbname``."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def _admin_execute(self, sql_text: str, name: str) -> None:
        import psycopg
        from psycopg import sql

        query = sql.SQL(sql_text).format(sql.Identifier(name))
        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(query)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name when none is given); returns its URL."""
        if name is None:
            name = f"t{os.getpid()}_{next(_db_counter)}"
        if not _DB_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
        self._admin_execute("CREATE DATABASE {}", name)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it."""
        if not _DB_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DB_NAME.pattern}")
        self._admin_execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, what ``pg_ctl stop -m fast`` sends).

        The cluster folder (outside ``tmp`` when running as root) is removed; the server's
        log stays in ``tmp``.
        """
        self._process.stop()
        unregister(self)
        if self._cluster_root is not None:
            shutil.rmtree(self._cluster_root, ignore_errors=True)


def start_postgres(tmp: Path, *, timeout: float = START_TIMEOUT) -> Postgres:
    """initdb a throw-away cluster and run ``postgres`` on 127.0.0.1 (TCP only for us).

    PostgreSQL refuses to run as root, so as root both ``initdb`` and ``postgres`` run as the
    ``postgres`` system user (created by Debian's package) and the cluster lives in a fresh
    ``/tmp/cfm-pg-*`` folder (0755, owned by ``postgres``): pytest's temp folders sit in a
    0700 root-owned parent that user could not enter. As any other user the cluster is made
    the same way, in the system temp folder, as that user. The server's log is in ``tmp``.

    Settings: ``-A trust`` (superuser ``postgres``, no password), ``listen_addresses
    127.0.0.1``, ``unix_socket_directories`` = the data folder, ``fsync``,
    ``synchronous_commit`` and ``full_page_writes`` off (a test cluster: speed over
    durability), ``max_connections 200``.
    """
    bindir = _postgres_bindir()
    initdb, postgres = str(bindir / "initdb"), str(bindir / "postgres")
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceUnavailable(
                "postgres (system user)",
                "postgresql",
                "PostgreSQL will not run as root and there is no 'postgres' user to run it as",
            ) from None
        run_as = "postgres"
        root = Path(tempfile.mkdtemp(prefix="cfm-pg-", dir="/tmp"))
        root.chmod(0o755)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    else:
        root = Path(tempfile.mkdtemp(prefix="cfm-pg-"))
    data_dir = root / "data"
    logs = subdir(tmp, "postgres-")
    log_path = logs / "postgres.log"
    port = free_port()

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    init = Process(
        "initdb",
        [
            initdb,
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ],
        logs / "initdb.log",
        cwd=root,
        env=env,
        user=run_as,
    )
    init_proc = init.start()
    try:
        rc = init_proc.wait(120)
    except subprocess.TimeoutExpired:
        init.kill()
        rc = -1
    unregister(init)
    if rc != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise ServiceStartError(f"initdb failed ({rc}); log:\n{init.log_tail()}")

    settings = {
        "listen_addresses": LOOPBACK,
        "port": str(port),
        "unix_socket_directories": str(data_dir),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
        "shared_buffers": "64MB",
        "log_min_messages": "warning",
        "logging_collector": "off",
    }
    argv = [postgres, "-D", str(data_dir)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    process = Process(
        "postgres", argv, log_path, cwd=root, env=env, user=run_as, stop_signal=signal.SIGINT
    )
    handle = Postgres(
        host=LOOPBACK,
        port=port,
        url=f"postgresql+psycopg://postgres@{LOOPBACK}:{port}/postgres",
        user="postgres",
        data_dir=data_dir,
        log_path=log_path,
        _process=process,
        _cluster_root=root,
    )
    register(handle)  # stop() also removes the cluster folder
    process.start()

    def ready() -> bool:
        import psycopg

        with psycopg.connect(handle.dsn(), connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True

    try:
        process.wait_ready(ready, f"SQL connections on port {port}", timeout)
    except ServiceStartError:
        handle.stop()
        raise
    return handle
