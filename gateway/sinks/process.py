"""The gateway's side of its sink process (worker.py): starts it, wakes it when the outbox
has new items, turns what it reports into the gateway's metrics and log lines, starts it
again when it dies (counted: gateway_sink_process_restarts_total), and stops it in order.

`facility gateway` stays one command: the sink process is its child, started and stopped
with it. If the gateway dies, however it dies, the sink process sees its stdin close and
stops after the batch in hand; a gateway started again meanwhile gets a new sink process,
which waits for the old one's lock (one per outbox) before it reads.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson

import gateway
from gateway.metrics import GatewayMetrics
from gateway.sinks.worker import WorkerSpec

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 20.0  # a store write in hand takes at most its timeout (10 s)
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
# A process that ran this long was healthy: the next restart is quick again.
HEALTHY_AFTER_S = 60.0


class SinkProcess:
    def __init__(self, spec: WorkerSpec, metrics: GatewayMetrics) -> None:
        self.spec = spec
        self.metrics = metrics
        self.ready = threading.Event()  # the current process has set its sink up
        self._line = orjson.dumps(spec) + b"\n"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # guards _proc and writes to its stdin
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # The child imports this very tree, whatever the caller's sys.path.
        root = str(Path(gateway.__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH")
        self._env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="gw-sink-process")
        self._thread.daemon = True
        self._thread.start()

    def wake(self) -> None:
        """New items in the outbox. Never blocks: a process that is behind reads on its
        own (it polls as well), and one being restarted reads from its cursor anyway."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdin.closed:
                return
            try:
                os.write(proc.stdin.fileno(), b".")
            except (BlockingIOError, BrokenPipeError, OSError):
                pass

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """End of stdin tells it to stop after the batch in hand; it is killed only if it
        has not within `timeout` (its cursor then sends that batch again next time)."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
            self._close_stdin(proc)
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("sink process %d did not stop within %.0f s: killed", proc.pid, timeout)
                proc.kill()
                proc.wait(5)
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- the supervising thread -----------------------------------------------------------
    def _supervise(self) -> None:
        backoff = BACKOFF_FIRST_S
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = self._spawn()
            if proc is not None:
                assert proc.stdout is not None
                self._relay(proc.stdout)
                code = proc.wait()
            else:
                code = None
            if self._stopping.is_set():
                return
            self.ready.clear()
            if time.monotonic() - started > HEALTHY_AFTER_S:
                backoff = BACKOFF_FIRST_S
            self.metrics.sink_process_restarts.inc()
            log.error(
                "sink process for %s exited (code %s); starting it again in %.1f s",
                self.spec["sink"],
                code,
                backoff,
            )
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.sinks.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self._env,
                close_fds=True,
            )
        except OSError as exc:
            log.error("sink process could not be started: %s", exc)
            return None
        assert proc.stdin is not None
        try:
            proc.stdin.write(self._line)
            proc.stdin.flush()
        except OSError:
            pass  # it died at once: its exit code is logged when it is reaped
        os.set_blocking(proc.stdin.fileno(), False)
        with self._lock:
            self._proc = proc
            if self._stopping.is_set():  # stop() came while it was being started
                self._close_stdin(proc)
        log.info("sink process %d started for %s", proc.pid, self.spec["sink"])
        return proc

    @staticmethod
    def _close_stdin(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def _relay(self, stdout: IO[bytes]) -> None:
        """What the process reports, until its stdout closes (it exited)."""
        m = self.metrics
        for line in stdout:
            try:
                msg: dict[str, Any] = orjson.loads(line)
                if "took" in msg:
                    sink, items, seconds, pending = msg["took"]
                    m.sink_took(sink, items, seconds, pending)
                elif "failed" in msg:
                    sink, pending = msg["failed"]
                    m.sink_failed(sink, pending)
                elif "idle" in msg:
                    m.sink_idle(msg["idle"])
                elif "log" in msg:
                    _log_record(*msg["log"])
                elif "ready" in msg:
                    self.ready.set()
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError):
                log.warning("sink process said something unexpected: %r", line[:200])


def _log_record(level: int, name: str, msg: str, thread: str) -> None:
    """A record the sink process logged, through the gateway's own handlers and format."""
    logger = logging.getLogger(name)
    if logger.isEnabledFor(level):
        record = logging.makeLogRecord(
            {
                "name": name,
                "levelno": level,
                "levelname": logging.getLevelName(level),
                "msg": msg,
                "threadName": f"sink-process/{thread}",
            }
        )
        logger.handle(record)
