"""Real services for the tests, each started on a free loopback port inside a temp folder.

Every ``start_*`` function starts one real server process (or, for SMTP, a real aiosmtpd
server in a thread), waits a bounded time until it answers, and returns a small frozen
dataclass handle with its address and helpers. Nothing here is a mock.

Rules kept by every helper:

- everything binds 127.0.0.1 only, on a port from :func:`free_port`; system services on
  the standard ports (1883, 5432, 8086, 8428) are never used;
- every wait is bounded, and a service that does not come up raises
  :class:`ServiceStartError` with the tail of its log;
- a missing program raises :class:`ServiceUnavailable`, which names the program, its Debian
  package and ``scripts/install-system-deps.sh``; the fixtures turn it into a test failure,
  never a skip;
- every started service is registered for cleanup: ``handle.stop()`` (the fixtures call
  it), an ``atexit`` backstop, and on Linux a parent-death signal (``setpriv --pdeathsig``)
  so a child dies with the test process even when that is killed.

Binaries are looked up on PATH and in the usual sbin folders; ``CFM_<NAME>_BIN`` (e.g.
``CFM_MOSQUITTO_BIN``, ``CFM_INFLUXD_BIN``, ``CFM_VICTORIA_METRICS_BIN``) and
``CFM_PG_BINDIR`` override the lookup on machines that keep them elsewhere.
"""

from __future__ import annotations

import atexit
import contextlib
import email
import email.policy
import glob
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

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

LOOPBACK = "127.0.0.1"
INSTALL_SCRIPT = "scripts/install-system-deps.sh"
START_TIMEOUT = 20.0
"""Seconds any service may take to answer after its start (they take < 3 s here)."""
STOP_TIMEOUT = 15.0
"""Seconds a service may take to exit after its stop signal before it is killed."""
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin", "/opt/homebrew/sbin", "/usr/local/bin")


# --------------------------------------------------------------------------- errors


class ServiceUnavailable(RuntimeError):
    """A program a test needs is not installed; names it and the script that installs it."""

    def __init__(self, program: str, package: str, detail: str = "") -> None:
        self.program = program
        self.package = package
        msg = (
            f"{program!r} is not installed (Debian package {package!r}); the tests start a "
            f"real one and do not skip without it. Install it with: sudo bash {INSTALL_SCRIPT}"
        )
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class ServiceStartError(RuntimeError):
    """A service was found but did not start or answer in time; carries its log's tail."""


# --------------------------------------------------------------------------- ports, waits


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _find_program(name: str, package: str, env_var: str) -> str:
    override = os.environ.get(env_var)
    if override:
        if os.access(override, os.X_OK):
            return override
        raise ServiceUnavailable(name, package, f"{env_var}={override} is not executable")
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN_DIRS:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise ServiceUnavailable(name, package)


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


# --------------------------------------------------------------------------- processes


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_LIVE: dict[int, _Stoppable] = {}
_LIVE_LOCK = threading.Lock()


def _register(obj: _Stoppable) -> None:
    with _LIVE_LOCK:
        _LIVE[id(obj)] = obj


def _unregister(obj: _Stoppable) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(id(obj), None)


def stop_all() -> None:
    """Stop every service this module started and has not stopped yet (atexit backstop)."""
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for obj in reversed(live):
        with contextlib.suppress(Exception):
            obj.stop()


atexit.register(stop_all)

_SETPRIV = shutil.which("setpriv") if os.uname().sysname == "Linux" else None


class _Process:
    """One server process: started, stopped and restarted with the same command line.

    Output goes to ``log_path`` (appended across restarts). Not a public API: the handles
    below expose ``proc``, ``stop()`` and, where it makes sense, ``restart()``.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.user = user
        self.stop_signal = stop_signal
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self) -> subprocess.Popen[bytes]:
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                return self.proc
            argv = list(self.argv)
            # The child gets our stop signal when the thread that started it dies, so a
            # killed test run leaves no server behind. Only from the main thread: a worker
            # thread that ends would otherwise take the service with it.
            if _SETPRIV and threading.current_thread() is threading.main_thread():
                argv = [_SETPRIV, f"--pdeathsig={self.stop_signal.name[3:]}", "--", *argv]
            kwargs: dict[str, Any] = {}
            if self.user is not None:
                pw = pwd.getpwnam(self.user)
                kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            with open(self.log_path, "ab") as log:
                log.write(f"---- {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    env=self.env,
                    start_new_session=True,
                    **kwargs,
                )
            _register(self)
            return self.proc

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Graceful stop (the service's own stop signal), then SIGKILL after ``timeout``."""
        with self._lock:
            proc = self.proc
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(self.stop_signal)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            _unregister(self)

    def kill(self) -> None:
        """SIGKILL: a crash, for tests of what survives one."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            _unregister(self)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return text[-chars:]

    def wait_ready(self, check: Callable[[], bool], what: str, timeout: float) -> float:
        """Poll ``check`` until true; raise with the log if the process dies or time runs out.

        Returns the seconds it took.
        """
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceStartError(
                    f"{self.name} exited with code {self.proc.returncode} before {what}; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if check():
                    return time.monotonic() - t0
            if time.monotonic() > deadline:
                self.stop(timeout=5)
                raise ServiceStartError(
                    f"{self.name} did not get {what} within {timeout:g} s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)


def _subdir(tmp: Path, prefix: str) -> Path:
    """A fresh folder in ``tmp``, so two services of one kind never share a folder."""
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))


def _http_ok(url: str, status: int = 200) -> bool:
    return httpx.get(url, timeout=1.0).status_code == status


# --------------------------------------------------------------------------- Mosquitto


@dataclass(frozen=True)
class Mosquitto:
    """A running Mosquitto 2.0 broker on ``host:port``.

    ``restart()`` (or ``stop()`` then ``start()``) reuses the same port, config and
    persistence folder, so persistent sessions (MQTT 3.1.1 ``clean_session=False`` or MQTT 5
    ``clean_start=False`` with a session expiry) and their queued QoS 1/2 messages survive
    it: Mosquitto writes ``mosquitto.db`` on a clean stop and every second (autosave)
    while running. ``kill()`` is a crash: only what the last autosave held survives.
    """

    host: str
    port: int
    url: str
    data_dir: Path
    config_path: Path
    log_path: Path
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _process: _Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        """The current broker process (a new one after each restart)."""
        assert self._process.proc is not None
        return self._process.proc

    @property
    def url_with_credentials(self) -> str:
        """``mqtt://user:pass@127.0.0.1:PORT`` (the plain ``url`` when no login is set)."""
        if not self.username:
            return self.url
        auth = quote(self.username, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"mqtt://{auth}@{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process.running()

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start the broker again on the same port; returns the seconds until it listened."""
        self._process.start()
        return self._process.wait_ready(
            lambda: _port_open(self.port), f"a listener on {self.host}:{self.port}", timeout
        )

    def stop(self) -> None:
        """Clean stop (SIGTERM): persistent sessions are saved to ``mosquitto.db``."""
        self._process.stop()

    def kill(self) -> None:
        """Crash the broker (SIGKILL); ``start()`` brings it back."""
        self._process.kill()

    def restart(self, timeout: float = START_TIMEOUT) -> float:
        """Clean stop then start on the same port and persistence folder."""
        self.stop()
        return self.start(timeout)

    def log(self) -> str:
        return self._process.log_tail(20000)


def start_mosquitto(
    tmp: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    port: int | None = None,
    extra_config: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
) -> Mosquitto:
    """Start Mosquitto on 127.0.0.1 with its config, log and persistence in ``tmp``.

    Config written (Mosquitto 2.0.11): one ``listener PORT 127.0.0.1``; anonymous access, or
    with ``username``/``password`` a ``password_file`` made by ``mosquitto_passwd -b`` and
    ``allow_anonymous false``; ``persistence true`` in a folder in ``tmp`` with
    ``autosave_interval 1``; ``max_queued_messages 0`` and ``max_queued_bytes 0`` (no limit:
    the default drops QoS 1 messages past 1000 queued for a slow or offline client);
    ``max_inflight_messages 20`` (the default). As root, ``user root`` keeps Mosquitto from
    switching to the ``mosquitto`` user, which could not write in a root-owned temp folder.
    """
    exe = _find_program("mosquitto", "mosquitto", "CFM_MOSQUITTO_BIN")
    if (username is None) != (password is None):
        raise ValueError("give both username and password, or neither")
    port = port or free_port()
    base = _subdir(tmp, "mosquitto-")
    data_dir = base / "data"
    data_dir.mkdir()
    lines = [
        f"listener {port} {LOOPBACK}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "persistence_file mosquitto.db",
        "autosave_interval 1",
        "max_queued_messages 0",
        "max_queued_bytes 0",
        "max_inflight_messages 20",
        "set_tcp_nodelay true",
        "log_dest stdout",
        "log_timestamp_format %H:%M:%S",
        "connection_messages true",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    if username is not None and password is not None:
        passwd = _find_program("mosquitto_passwd", "mosquitto", "CFM_MOSQUITTO_PASSWD_BIN")
        password_file = base / "passwd"
        subprocess.run(
            [passwd, "-b", "-c", str(password_file), username, password],
            check=True,
            capture_output=True,
            timeout=30,
        )
        password_file.chmod(0o600)
        lines += ["allow_anonymous false", f"password_file {password_file}"]
    else:
        lines.append("allow_anonymous true")
    lines += list(extra_config)
    config = base / "mosquitto.conf"
    config.write_text("\n".join(lines) + "\n")
    log_path = base / "mosquitto.log"
    process = _Process("mosquitto", [exe, "-c", str(config)], log_path, cwd=base)
    handle = Mosquitto(
        host=LOOPBACK,
        port=port,
        url=f"mqtt://{LOOPBACK}:{port}",
        data_dir=data_dir,
        config_path=config,
        log_path=log_path,
        username=username,
        password=password,
        _process=process,
    )
    handle.start(timeout)
    return handle


# --------------------------------------------------------------------------- PostgreSQL


_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_db_counter = itertools.count(1)


@dataclass(frozen=True)
class Postgres:
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
    _process: _Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]
    _cluster_root: Path | None = field(repr=False, compare=False, default=None)

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self._process.proc is not None
        return self._process.proc

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
        _unregister(self)
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
    logs = _subdir(tmp, "postgres-")
    log_path = logs / "postgres.log"
    port = free_port()

    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    init = _Process(
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
    _unregister(init)
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
    process = _Process(
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
    _register(handle)  # stop() also removes the cluster folder
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


# --------------------------------------------------------------------------- VictoriaMetrics


@dataclass(frozen=True)
class VictoriaMetrics:
    """A running single-node VictoriaMetrics (Debian's 1.79) on ``host:port``.

    How it stores InfluxDB line protocol (``/write``, ``/api/v2/write``,
    ``/influx/write``): each *field* becomes its own series named
    ``{measurement}_{field}`` (``-influxMeasurementFieldSeparator``, default ``_``); the
    tags become labels; the ``db`` query parameter (v1) becomes label ``db``, and on the v2
    endpoint ``bucket`` is taken as ``db`` (``org`` is accepted and ignored). Booleans are
    stored as 1/0; string fields are dropped. Timestamps are trimmed to milliseconds, and
    samples outside the retention window are silently dropped: we start it with
    ``-retentionPeriod=100y`` so fixed past test times are kept, but samples more than about
    2 days in the future are still refused by VictoriaMetrics itself.

    Newly written samples are buffered for up to a second before search sees them;
    :meth:`flush` (``/internal/force_flush``) makes them visible, and :meth:`export` calls it.
    """

    host: str
    port: int
    url: str
    data_dir: Path
    log_path: Path
    _process: _Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self._process.proc is not None
        return self._process.proc

    def stop(self) -> None:
        self._process.stop()

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start it again on the same port and data folder (after ``stop()``)."""
        self._process.start()
        return self._process.wait_ready(
            lambda: _http_ok(f"{self.url}/health"), "200 on /health", timeout
        )

    def write(
        self,
        lines: str | Iterable[str],
        *,
        db: str | None = None,
        precision: str = "ns",
    ) -> None:
        """POST line protocol to the v1 ``/write`` endpoint (raises on a non-2xx answer)."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        params = {"precision": precision}
        if db is not None:
            params["db"] = db
        r = httpx.post(f"{self.url}/write", params=params, content=body.encode(), timeout=10)
        r.raise_for_status()

    def flush(self) -> None:
        """Make every sample written so far searchable (``/internal/force_flush``)."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def export(
        self, match: str, *, start: str | float | None = None, end: str | float | None = None
    ) -> list[dict[str, Any]]:
        """Series matching a selector, e.g. ``'fridge_temp'`` or ``'{__name__=~"fridge_.*"}'``.

        Returns one dict per series from ``/api/v1/export``: ``{"metric": {"__name__": ...,
        labels...}, "values": [...], "timestamps": [ms, ...]}``, sorted by ``__name__`` then
        labels; flushes first so what was just written is there.
        """
        self.flush()
        params: dict[str, str] = {"match[]": match}
        if start is not None:
            params["start"] = str(start)
        if end is not None:
            params["end"] = str(end)
        r = httpx.get(f"{self.url}/api/v1/export", params=params, timeout=30)
        r.raise_for_status()
        series = [json.loads(line) for line in r.text.splitlines() if line.strip()]
        series.sort(key=lambda s: sorted(s["metric"].items()))
        return series

    def wait_for_export(
        self,
        match: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """Poll :meth:`export` until ``predicate(series)`` holds; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            series = self.export(match)
            if predicate(series):
                return series
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"VictoriaMetrics export of {match!r} did not match within "
                    f"{timeout:g} s; last answer: {series!r}"
                )
            time.sleep(0.1)


def start_victoria_metrics(tmp: Path, *, timeout: float = START_TIMEOUT) -> VictoriaMetrics:
    """Start ``victoria-metrics`` on 127.0.0.1 with its data in ``tmp``; waits for /health."""
    exe = _find_program("victoria-metrics", "victoria-metrics", "CFM_VICTORIA_METRICS_BIN")
    port = free_port()
    base = _subdir(tmp, "victoria-metrics-")
    data_dir = base / "data"
    argv = [
        exe,
        f"-httpListenAddr={LOOPBACK}:{port}",
        f"-storageDataPath={data_dir}",
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",
        "-loggerLevel=WARN",
        "-memory.allowedPercent=10",
        # As deployed (docs/timeseries.md): samples of one series with the same millisecond
        # collapse into one, so a batch the gateway replays after a crash is not doubled.
        "-dedup.minScrapeInterval=1ms",
    ]
    process = _Process("victoria-metrics", argv, base / "victoria-metrics.log", cwd=base)
    handle = VictoriaMetrics(
        host=LOOPBACK,
        port=port,
        url=f"http://{LOOPBACK}:{port}",
        data_dir=data_dir,
        log_path=process.log_path,
        _process=process,
    )
    process.start()
    process.wait_ready(lambda: _http_ok(f"{handle.url}/health"), "200 on /health", timeout)
    return handle


# --------------------------------------------------------------------------- InfluxDB 1.x


class InfluxQLError(RuntimeError):
    """InfluxDB answered a query with an error."""


@dataclass(frozen=True)
class InfluxDB1:
    """A running InfluxDB 1.x (Debian's 1.6) on ``host:port``, no auth.

    Writes with the v1 ``/write?db=`` line-protocol endpoint; reads with InfluxQL on
    ``/query`` (the endpoint InfluxDB 1.8+, 2.7+ and 3.x all answer). InfluxDB 1.6 has no
    ``/api/v2/write``.
    """

    host: str
    port: int
    url: str
    rpc_port: int
    data_dir: Path
    log_path: Path
    _process: _Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self._process.proc is not None
        return self._process.proc

    def stop(self) -> None:
        self._process.stop()

    def query(
        self, q: str, *, db: str | None = None, epoch: str | None = None, post: bool = False
    ) -> dict[str, Any]:
        """Run InfluxQL; returns the JSON answer, raising :class:`InfluxQLError` on errors.

        ``post=True`` for statements that change things (``CREATE``, ``DROP``); ``epoch``
        (``ns``, ``ms``, ``s``...) makes times integers instead of RFC 3339 strings.
        """
        params: dict[str, str] = {"q": q}
        if db is not None:
            params["db"] = db
        if epoch is not None:
            params["epoch"] = epoch
        if post:
            r = httpx.post(f"{self.url}/query", data=params, timeout=30)
        else:
            r = httpx.get(f"{self.url}/query", params=params, timeout=30)
        body: dict[str, Any] = r.json()
        errors = [body["error"]] if "error" in body else []
        errors += [res["error"] for res in body.get("results", []) if "error" in res]
        if r.status_code >= 400 or errors:
            raise InfluxQLError(f"{q!r}: HTTP {r.status_code}: {'; '.join(errors) or r.text}")
        return body

    def rows(self, q: str, *, db: str, epoch: str | None = None) -> list[dict[str, Any]]:
        """A SELECT's rows as dicts (column -> value, plus the series' tags when grouped)."""
        out: list[dict[str, Any]] = []
        for result in self.query(q, db=db, epoch=epoch).get("results", []):
            for series in result.get("series", []):
                tags = series.get("tags", {})
                for values in series.get("values", []):
                    row = dict(zip(series["columns"], values, strict=True))
                    row.update(tags)
                    out.append(row)
        return out

    def create_database(self, name: str) -> None:
        """``CREATE DATABASE "name"`` (idempotent in InfluxDB)."""
        self.query(f'CREATE DATABASE "{_influx_ident(name)}"', post=True)

    def write(
        self, db: str, lines: str | Iterable[str], *, precision: str = "ns", rp: str | None = None
    ) -> None:
        """POST line protocol to ``/write?db=``; raises unless InfluxDB answers 204."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        params = {"db": db, "precision": precision}
        if rp is not None:
            params["rp"] = rp
        r = httpx.post(f"{self.url}/write", params=params, content=body.encode(), timeout=30)
        if r.status_code != 204:
            raise InfluxQLError(f"write to {db!r}: HTTP {r.status_code}: {r.text}")


def _influx_ident(name: str) -> str:
    if not name or '"' in name or "\\" in name or "\n" in name:
        raise ValueError(f"bad InfluxDB identifier {name!r}")
    return name


def start_influxdb(tmp: Path, *, timeout: float = START_TIMEOUT) -> InfluxDB1:
    """Start Debian's ``influxd`` (1.6) with a config that keeps everything in ``tmp``.

    Config keys that matter in 1.6: top-level ``bind-address`` is the RPC (backup/restore)
    service, default ``127.0.0.1:8088`` -- set to a second free port so two instances (or a
    system one) never clash; ``reporting-disabled = true``; ``[meta] dir``, ``[data] dir``
    and ``wal-dir``; ``[http] bind-address``; ``[monitor] store-enabled = false`` (no
    ``_internal`` database writes every 10 s); graphite/collectd/opentsdb/udp are off by
    default and left off. ``INFLUXDB_*`` environment variables, which override the file,
    are removed from the child's environment.
    """
    exe = _find_program("influxd", "influxdb", "CFM_INFLUXD_BIN")
    port, rpc_port = free_port(), free_port()
    while rpc_port == port:
        rpc_port = free_port()
    base = _subdir(tmp, "influxdb-")
    data_dir = base / "data"
    config = base / "influxdb.conf"
    config.write_text(
        f"""reporting-disabled = true
bind-address = "{LOOPBACK}:{rpc_port}"

[meta]
  dir = "{base / "meta"}"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "{data_dir}"
  wal-dir = "{base / "wal"}"
  wal-fsync-delay = "0s"
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{LOOPBACK}:{port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = true
  log-enabled = false
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
    process = _Process(
        "influxd", [exe, "run", "-config", str(config)], base / "influxd.log", cwd=base, env=env
    )
    handle = InfluxDB1(
        host=LOOPBACK,
        port=port,
        url=f"http://{LOOPBACK}:{port}",
        rpc_port=rpc_port,
        data_dir=data_dir,
        log_path=process.log_path,
        _process=process,
    )
    process.start()
    process.wait_ready(lambda: _http_ok(f"{handle.url}/ping", 204), "204 on /ping", timeout)
    return handle


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the SMTP server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    message: EmailMessage
    login: str | None = None

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """The plain-text body (the first text/plain part), decoded."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return "" if part is None else str(part.get_content())  # type: ignore[attr-defined]


class _Inbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._mails: list[ReceivedMail] = []
        self._cond = threading.Condition()

    def add(self, mail: ReceivedMail) -> None:
        with self._cond:
            self._mails.append(mail)
            (self.folder / f"{len(self._mails):04d}.eml").write_bytes(mail.data)
            self._cond.notify_all()

    def snapshot(self) -> list[ReceivedMail]:
        with self._cond:
            return list(self._mails)

    def wait_for(self, predicate: Callable[[ReceivedMail], bool], timeout: float) -> ReceivedMail:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for mail in self._mails:
                    if predicate(mail):
                        return mail
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(m.rcpt_tos, m.subject) for m in self._mails]
                    raise AssertionError(
                        f"no matching mail within {timeout:g} s; received: {got!r}"
                    )
                self._cond.wait(left)


class _Handler:
    """aiosmtpd handler: parse DATA into a ReceivedMail and keep it."""

    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        message = email.message_from_bytes(data, policy=email.policy.default)
        login = session.login_data
        if isinstance(login, bytes):
            login = login.decode(errors="replace")
        self.inbox.add(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                data=data,
                message=message,  # type: ignore[arg-type]
                login=login if isinstance(login, str) else None,
            )
        )
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class Smtp:
    """A real SMTP server (aiosmtpd, in a thread of this process) on ``host:port``.

    Every accepted message is kept in order (``messages``) and written to
    ``folder/NNNN.eml``. With a username/password, AUTH PLAIN/LOGIN is offered without TLS
    and required.
    """

    host: str
    port: int
    url: str
    folder: Path
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _controller: Any = field(repr=False, compare=False, default=None)
    _inbox: _Inbox = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def messages(self) -> list[ReceivedMail]:
        """A copy of the messages received so far."""
        return self._inbox.snapshot()

    def wait_for(
        self, predicate: Callable[[ReceivedMail], bool] = lambda m: True, timeout: float = 10.0
    ) -> ReceivedMail:
        """The first received message for which ``predicate`` holds, waiting up to ``timeout``."""
        return self._inbox.wait_for(predicate, timeout)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._controller.stop()
        _unregister(self)


def start_smtp(
    tmp: Path,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout: float = START_TIMEOUT,
) -> Smtp:
    """Start an aiosmtpd ``Controller`` on 127.0.0.1 collecting messages into a list."""
    try:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
    except ImportError:
        raise ServiceUnavailable(
            "aiosmtpd", "PyPI aiosmtpd", "install the dev extras: bash scripts/bootstrap.sh dev"
        ) from None
    if (username is None) != (password is None):
        raise ValueError("give both username and password, or neither")
    folder = _subdir(tmp, "smtp-")
    inbox = _Inbox(folder)
    port = free_port()
    kwargs: dict[str, Any] = {}
    if username is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
        ) -> Any:
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == username
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False, auth_data=username if ok else None)

        kwargs.update(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    controller = Controller(
        _Handler(inbox),
        hostname=LOOPBACK,
        port=port,
        ready_timeout=timeout,
        server_hostname="cfm-test-smtp",
        **kwargs,
    )
    controller.start()
    handle = Smtp(
        host=LOOPBACK,
        port=port,
        url=f"smtp://{LOOPBACK}:{port}",
        folder=folder,
        username=username,
        password=password,
        _controller=controller,
        _inbox=inbox,
    )
    _register(handle)
    return handle
