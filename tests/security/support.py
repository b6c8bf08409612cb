"""Shared by the security tests that run a whole server over real HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine

from core.tsdb_schema import metadata
from tests.harness.process import Process, find_program, free_port, port_open

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def empty_timeseries_store(server_data: Path) -> None:
    """The SQL time-series store a gateway would have made beside the server (history reads
    from it), empty."""
    path = server_data.parent / "gateway" / "timeseries.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()


def start_deploy_mosquitto(tmp: Path, accounts: dict[str, str]) -> tuple[int, Process]:
    """Mosquitto with deploy/mosquitto/mosquitto.conf and acl as shipped and a password file
    made with mosquitto_passwd as docs/production.md says; only the listener (a free
    loopback port) and the file locations are rewritten for the test folder."""
    passwd = tmp / "passwd"
    tool = find_program("mosquitto_passwd", "mosquitto", "CFM_MOSQUITTO_PASSWD_BIN")
    for i, (user, pw) in enumerate(accounts.items()):
        flags = ["-b", "-c"] if i == 0 else ["-b"]
        subprocess.run([tool, *flags, str(passwd), user, pw], check=True, timeout=30)
    passwd.chmod(0o600)
    acl = tmp / "acl"
    shutil.copy(DEPLOY / "mosquitto" / "acl", acl)
    (tmp / "mosquitto-data").mkdir()
    port = free_port()
    lines = []
    for line in (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif key == "password_file":
            line = f"password_file {passwd}"
        elif key == "acl_file":
            line = f"acl_file {acl}"
        elif key == "persistence_location":
            line = f"persistence_location {tmp / 'mosquitto-data'}/"
        lines.append(line)
    if os.geteuid() == 0:
        lines.append("user root")
    lines.append("log_dest stdout")
    conf = tmp / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    exe = find_program("mosquitto", "mosquitto", "CFM_MOSQUITTO_BIN")
    process = Process("mosquitto", [exe, "-c", str(conf)], tmp / "mosquitto.log")
    process.start()
    process.wait_ready(lambda: port_open(port), f"a listener on port {port}", 20)
    return port, process
