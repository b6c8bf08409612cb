"""RabbitMQ 3.x for the tests: one node with its MQTT and consistent-hash plugins, on free
loopback ports, its own epmd, Mnesia and logs in a temp folder.

The node gets its own Erlang port mapper (``epmd -port P``, a child we stop) and its own
``HOME`` (the Erlang cookie), so it never meets the machine's RabbitMQ service (whose
distribution port is 25672) or another test's node. AMQP 0-9-1 on ``amqp_port``, MQTT 3.1.1
on ``mqtt_port`` (anonymous clients log in as ``guest``, allowed from loopback only).
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.process import (
    LOOPBACK,
    STOP_TIMEOUT,
    Process,
    ProcessHandle,
    ServiceUnavailable,
    find_program,
    free_port,
    port_open,
    subdir,
)

__all__ = ["RabbitMQ", "start_rabbitmq"]

START_TIMEOUT = 90.0
"""Seconds the node may take to listen (about 12 s here, more when the cores are busy)."""
PLUGINS = ("rabbitmq_mqtt", "rabbitmq_consistent_hash_exchange")


@dataclass(frozen=True)
class RabbitMQ(ProcessHandle):
    """A running RabbitMQ node. ``amqp_url`` for the server's workers, ``mqtt_url`` for
    gateways (the MQTT plugin publishes their messages to ``amq.topic``)."""

    host: str
    amqp_port: int
    mqtt_port: int
    base: Path
    log_path: Path
    _process: Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]
    _epmd: Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.amqp_port}/%2F"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.host}:{self.mqtt_port}"

    @property
    def running(self) -> bool:
        return self._process.running()

    def stop(self) -> None:
        """SIGTERM (the node shuts down cleanly), then its epmd."""
        self._process.stop(timeout=STOP_TIMEOUT * 2)
        self._epmd.stop()

    def log(self) -> str:
        return self._process.log_tail(20000)


def _rabbitmq_server() -> str:
    # Debian's /usr/sbin/rabbitmq-server switches to the `rabbitmq` user when run as root;
    # the script it wraps runs as whoever starts it, with our environment.
    direct = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    if direct.exists() and os.access(direct, os.X_OK):
        return str(direct)
    return find_program("rabbitmq-server", "rabbitmq-server", "CFM_RABBITMQ_SERVER_BIN")


def _epmd() -> str:
    found = shutil.which("epmd") or next(
        (str(p) for p in sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))), None
    )
    if found is None:
        raise ServiceUnavailable("epmd", "erlang-base")
    return found


def _mqtt_ready(port: int) -> bool:
    """The MQTT listener answers a CONNECT with CONNACK 0 (the node has booted its apps)."""
    with socket.create_connection((LOOPBACK, port), timeout=1.0) as s:
        s.settimeout(2.0)
        cid = b"cfm-probe"
        var = b"\x00\x04MQTT\x04\x02\x00\x0a" + len(cid).to_bytes(2, "big") + cid
        s.sendall(b"\x10" + bytes([len(var)]) + var)
        ok = s.recv(4) == b"\x20\x02\x00\x00"
        s.sendall(b"\xe0\x00")
        return ok


def start_rabbitmq(tmp: Path, *, timeout: float = START_TIMEOUT) -> RabbitMQ:
    """Start one RabbitMQ node on 127.0.0.1 with its data and logs in ``tmp``."""
    server = _rabbitmq_server()
    base = subdir(tmp, "rabbitmq-")
    amqp_port, mqtt_port, dist_port, epmd_port = (free_port() for _ in range(4))
    (base / "rabbitmq.conf").write_text(
        "\n".join(
            [
                f"listeners.tcp.default = {LOOPBACK}:{amqp_port}",
                f"mqtt.listeners.tcp.default = {LOOPBACK}:{mqtt_port}",
                "mqtt.allow_anonymous = true",
                "log.console = true",
                "log.console.level = warning",
                "log.file = false",
                # The tests fill a small disk fast; the default 50 MB floor is enough.
                "disk_free_limit.absolute = 50MB",
            ]
        )
        + "\n"
    )
    (base / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")
    node = f"cfm{amqp_port}@localhost"
    env = {
        **os.environ,
        "HOME": str(base),
        "ERL_EPMD_PORT": str(epmd_port),
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "expand"),
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        # The script then execs the VM (no shell in between), so our stop signal reaches
        # the node, which shuts down cleanly on SIGTERM.
        "RUNNING_UNDER_SYSTEMD": "true",
    }
    epmd = Process("epmd", [_epmd(), "-port", str(epmd_port)], base / "epmd.log", env=env)
    epmd.start()
    epmd.wait_ready(lambda: port_open(epmd_port), f"epmd on port {epmd_port}", 10.0)
    log_path = base / "rabbitmq.log"
    process = Process("rabbitmq-server", [server], log_path, cwd=base, env=env)
    handle = RabbitMQ(
        host=LOOPBACK,
        amqp_port=amqp_port,
        mqtt_port=mqtt_port,
        base=base,
        log_path=log_path,
        _process=process,
        _epmd=epmd,
    )
    process.start()
    try:
        process.wait_ready(
            lambda: port_open(amqp_port) and _mqtt_ready(mqtt_port),
            f"AMQP on {amqp_port} and MQTT on {mqtt_port}",
            timeout,
        )
    except Exception:
        epmd.stop()
        raise
    return handle
