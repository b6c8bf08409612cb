"""`facility demo` as a user starts it, in its own process group, for the e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import wait_until
from tests.live_server import free_port

FACILITY = [sys.executable, "-m", "facility.cli"]


@dataclass(frozen=True)
class DemoProcess:
    url: str  # http://127.0.0.1:PORT
    broker: str  # mqtt://127.0.0.1:PORT
    log: Path

    def sim(self, *args: str) -> None:
        """`facility sim ...` against this demo's broker (fault DEVICE FAULT, clear DEVICE)."""
        out = subprocess.run(
            [*FACILITY, "sim", *args, "--broker", self.broker],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert out.returncode == 0, out.stderr


@contextmanager
def running_demo(folder: Path, env: dict[str, str] | None = None) -> Iterator[DemoProcess]:
    """Start the demo on free loopback ports with its data in `folder`, wait for /healthz,
    and stop it (SIGINT to its process group, SIGKILL if it lingers)."""
    port, mqtt_port = free_port(), free_port()
    log_path = folder / "demo.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                *FACILITY,
                "demo",
                "--no-browser",
                "--port",
                str(port),
                "--mqtt-port",
                str(mqtt_port),
                "--data-dir",
                str(folder / "data"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        demo = DemoProcess(f"http://127.0.0.1:{port}", f"mqtt://127.0.0.1:{mqtt_port}", log_path)
        try:

            def up() -> bool:
                if proc.poll() is not None:
                    raise AssertionError("demo exited:\n" + log_path.read_text())
                try:
                    return httpx.get(f"{demo.url}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(up, 60, "the demo's /healthz")
            yield demo
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
