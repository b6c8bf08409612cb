"""Mosquitto 2.0 for the tests: config, optional login, persistence, restart and crash."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.harness.process import (
    LOOPBACK,
    START_TIMEOUT,
    Process,
    ProcessHandle,
    find_program,
    free_port,
    port_open,
    subdir,
)

__all__ = ["Mosquitto", "start_mosquitto"]


@dataclass(frozen=True)
class Mosquitto(ProcessHandle):
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
    _process: Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

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
            lambda: port_open(self.port), f"a listener on {self.host}:{self.port}", timeout
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
    exe = find_program("mosquitto", "mosquitto", "CFM_MOSQUITTO_BIN")
    if (username is None) != (password is None):
        raise ValueError("give both username and password, or neither")
    port = port or free_port()
    base = subdir(tmp, "mosquitto-")
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
        passwd = find_program("mosquitto_passwd", "mosquitto", "CFM_MOSQUITTO_PASSWD_BIN")
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
    process = Process("mosquitto", [exe, "-c", str(config)], log_path, cwd=base)
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
