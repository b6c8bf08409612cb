"""Sink process: the gateway's time-series sink in a process of its own, so that writing the
store (line protocol, HTTP, SQL) works on the other core while the gateway takes messages
in. Started, watched and restarted by the gateway (gateway/sinks/process.py) as
`python -m gateway.sinks.worker`; not a command of its own.

It reads the outbox file the gateway appends to (SQLite WAL: one writer, many readers) from
the sink's cursor and moves that cursor once the store has taken a batch, as the same loop
did in a thread before (gateway/sinks/loop.py). Nothing the devices sent is held only here:
a sink process killed at any point leaves the batch in the outbox, and its successor sends
it again (the stores are idempotent).

Talking to the gateway, on pipes only:
- stdin: first line, the spec (JSON, `WorkerSpec`: secrets too, so never in argv or the
  environment); after it, any bytes mean "new items in the outbox"; end of file means stop
  (the gateway stopping, or dead: the kernel closes its end either way).
- stdout: one JSON object per line, what the loop saw (`took`, `failed`, `idle`), its log
  records (`log`), `ready`. The gateway counts them in its own metrics and logs, so its
  Prometheus endpoint and log show the sink process as they showed the sink thread.
  Anything else writing to stdout is sent to stderr, which is the gateway's.

Stops after the batch in hand on SIGTERM (systemd signals the whole group) or end of stdin;
ignores SIGINT (a terminal's Ctrl-C reaches the whole group: the gateway stops it in order).
Imports neither pydantic nor Prometheus nor the site: its memory is the store client's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Literal, TypedDict

import orjson

from gateway.outbox.outbox import Outbox
from gateway.sinks.base import Sink, SinkError
from gateway.sinks.loop import Wake, run_sink

log = logging.getLogger(__name__)

# Exit codes the gateway logs when it restarts the process.
EXIT_BROKEN = 1  # the loop failed (a bug): logged here with its traceback
EXIT_NO_STORE = 2  # the store could not be set up (bad URL, unreachable or unusable database)


class InfluxSpec(TypedDict):
    kind: Literal["influx"]
    url: str
    token: str
    org: str
    bucket: str
    site: str
    gateway_id: str
    # device -> [measurement, building, room] (gateway.sinks.line_protocol.device_tags)
    devices: dict[str, tuple[str, str, str | None]]


class SqlSpec(TypedDict):
    kind: Literal["sql"]
    url: str
    gateway_id: str
    retention_days: int


class WorkerSpec(TypedDict):
    outbox: str  # path of the outbox file
    sinks: list[str]  # every sink of the outbox: a chunk is pruned once all passed it
    sink: str  # the sink this process runs
    store: InfluxSpec | SqlSpec
    log_level: int


def sink_lock_path(outbox: Path) -> Path:
    """Held by the running sink process: one per outbox, even while a stopping one (its
    gateway killed) finishes the batch in hand."""
    return outbox.with_name(outbox.name + ".sinks.lock")


class _Report:
    """The stdout protocol: one JSON object per line; also the loop's observer."""

    def __init__(self, fd: int, stop: threading.Event) -> None:
        self._fd = fd
        self._stop = stop
        self._lock = threading.Lock()
        self._idle = False

    def send(self, message: dict[str, Any]) -> None:
        data = orjson.dumps(message) + b"\n"
        with self._lock:
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError:  # the gateway is gone: nobody to report to, nothing to do
                self._stop.set()

    def sink_took(self, sink: str, items: int, seconds: float, pending: int) -> None:
        self._idle = False
        self.send({"took": [sink, items, seconds, pending]})

    def sink_failed(self, sink: str, pending: int) -> None:
        self._idle = False
        self.send({"failed": [sink, pending]})

    def sink_idle(self, sink: str) -> None:
        if not self._idle:  # said once, not every half second
            self._idle = True
            self.send({"idle": sink})


class _LogRelay(logging.Handler):
    """Log records to the gateway, which logs them with its own handlers and format."""

    def __init__(self, report: _Report) -> None:
        super().__init__()
        self._report = report

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        self._report.send({"log": [record.levelno, record.name, msg, record.threadName]})


def _listen(stop: threading.Event, wake: Wake) -> None:
    """stdin after the spec: bytes wake the loop; end of file stops it."""
    fd = sys.stdin.fileno()
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            stop.set()
            wake.notify()
            return
        wake.notify()


def _hold_lock(path: Path, stop: threading.Event) -> int | None:
    """The sink lock, waited for; None if told to stop first."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    while not stop.is_set():
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            time.sleep(0.1)
    os.close(fd)
    return None


def build_sink(spec: WorkerSpec) -> Sink:
    store = spec["store"]
    if store["kind"] == "influx":
        from gateway.sinks.influx import InfluxSink

        # One str object for each of the few measurements and buildings, not one each
        # per device as JSON gives them: the sink process holds thousands of devices.
        seen: dict[str, str] = {}
        devices = {
            d: (seen.setdefault(m, m), seen.setdefault(b, b), r)
            for d, (m, b, r) in store["devices"].items()
        }
        return InfluxSink.for_devices(
            store["url"],
            store["token"],
            store["org"],
            store["bucket"],
            store["site"],
            store["gateway_id"],
            devices,
            name=spec["sink"],
        )
    from gateway.sinks.sql_ts import SqlTimeSeriesSink  # SQLAlchemy: only when used

    return SqlTimeSeriesSink(
        store["url"], store["gateway_id"], spec["sink"], retention_days=store["retention_days"]
    )


def main() -> int:
    # The protocol keeps fd 1 for itself; anything else printing to stdout goes to stderr.
    report_fd = os.dup(1)
    os.dup2(2, 1)
    stop = threading.Event()
    wake = Wake()
    report = _Report(report_fd, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def on_term(_signo: int, _frame: object) -> None:
        stop.set()
        wake.notify()

    signal.signal(signal.SIGTERM, on_term)
    spec: WorkerSpec = orjson.loads(sys.stdin.buffer.readline() or b"null")
    if not spec:
        return 0  # the gateway went away before it said anything
    root = logging.getLogger()
    root.handlers[:] = [_LogRelay(report)]
    root.setLevel(spec["log_level"])
    threading.Thread(target=_listen, args=(stop, wake), name="control", daemon=True).start()

    outbox_path = Path(spec["outbox"])
    name, sinks = spec["sink"], spec["sinks"]
    lock = _hold_lock(sink_lock_path(outbox_path), stop)
    if lock is None:
        return 0
    try:
        sink = build_sink(spec)
    except (SinkError, ValueError) as exc:
        log.error("sink %s cannot start: %s", name, exc)
        return EXIT_NO_STORE
    del spec  # the sink keeps what it needs; the devices' JSON need not stay twice
    outbox = Outbox(outbox_path, sinks, writer=False)
    report.send({"ready": name})
    try:
        run_sink(sink, outbox, stop, wake, report)
    except Exception:
        log.exception("sink %s failed", name)
        return EXIT_BROKEN
    finally:
        sink.close()
        outbox.close()
        os.close(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
