"""Shared plumbing of the test harness: ports, program lookup, errors and server processes.

Rules kept by every service module of :mod:`tests.harness`:

- everything binds 127.0.0.1 only, on a port from :func:`free_port`; system services on
  the standard ports (1883, 5432, 8086, 8428) are never used;
- every wait is bounded, and a service that does not come up raises
  :class:`ServiceStartError` with the tail of its log;
- a missing program raises :class:`ServiceUnavailable`, which names the program, its Debian
  package and ``scripts/install-system-deps.sh``; the fixtures turn it into a test failure,
  never a skip;
- every started service is registered for cleanup: ``handle.stop()`` (the fixtures call
  it), an ``atexit`` backstop (:func:`stop_all`), and on Linux a parent-death signal
  (``setpriv --pdeathsig``) so a child dies with the test process even when that is killed.

Binaries are looked up on PATH and in the usual sbin folders; ``CFM_<NAME>_BIN`` (e.g.
``CFM_MOSQUITTO_BIN``, ``CFM_INFLUXD_BIN``, ``CFM_VICTORIA_METRICS_BIN``) and
``CFM_PG_BINDIR`` override the lookup on machines that keep them elsewhere.

:class:`Process`, :func:`find_program`, :func:`register` and the small helpers below are for
the service modules of this package; tests use the ``start_*`` functions and their handles.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx

__all__ = [
    "INSTALL_SCRIPT",
    "LOOPBACK",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "Process",
    "ProcessHandle",
    "ServiceStartError",
    "ServiceUnavailable",
    "descendants",
    "find_program",
    "free_port",
    "http_ok",
    "port_open",
    "register",
    "stop_all",
    "subdir",
    "unregister",
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


def descendants(pid: int) -> list[int]:
    """`pid`'s children, their children and so on, from /proc (Linux), nearest first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = [pid]
    for p in found:
        found += [child for child, parent in parents.items() if parent == p]
    return found[1:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_program(name: str, package: str, env_var: str) -> str:
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


# --------------------------------------------------------------------------- processes


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_LIVE: dict[int, _Stoppable] = {}
_LIVE_LOCK = threading.Lock()


def register(obj: _Stoppable) -> None:
    """Keep ``obj`` for :func:`stop_all` until it is stopped."""
    with _LIVE_LOCK:
        _LIVE[id(obj)] = obj


def unregister(obj: _Stoppable) -> None:
    """Forget ``obj`` (it has stopped)."""
    with _LIVE_LOCK:
        _LIVE.pop(id(obj), None)


def stop_all() -> None:
    """Stop every service the harness started and has not stopped yet (atexit backstop)."""
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for obj in reversed(live):
        with contextlib.suppress(Exception):
            obj.stop()


atexit.register(stop_all)

_SETPRIV = shutil.which("setpriv") if os.uname().sysname == "Linux" else None


class Process:
    """One server process: started, stopped and restarted with the same command line.

    Output goes to ``log_path`` (appended across restarts). Not a public API: the service
    handles expose ``proc``, ``stop()`` and, where it makes sense, ``restart()``.
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
            register(self)
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
            unregister(self)

    def kill(self) -> None:
        """SIGKILL: a crash, for tests of what survives one."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            unregister(self)

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


class ProcessHandle:
    """``proc`` and ``stop()`` for the frozen dataclass handles of one server process.

    A handle keeps its :class:`Process` as the dataclass field ``_process``.
    """

    _process: Process

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        """The current server process (a new one after each restart)."""
        assert self._process.proc is not None
        return self._process.proc

    def stop(self) -> None:
        """Graceful stop with the service's own stop signal, then SIGKILL."""
        self._process.stop()


def subdir(tmp: Path, prefix: str) -> Path:
    """A fresh folder in ``tmp``, so two services of one kind never share a folder."""
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))


def http_ok(url: str, status: int = 200) -> bool:
    return httpx.get(url, timeout=1.0).status_code == status
