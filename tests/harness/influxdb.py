"""InfluxDB 1.x for the tests: line protocol on /write, InfluxQL on /query."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.harness.process import (
    LOOPBACK,
    START_TIMEOUT,
    Process,
    ProcessHandle,
    find_program,
    free_port,
    http_ok,
    subdir,
)

__all__ = ["InfluxDB1", "InfluxQLError", "start_influxdb"]


class InfluxQLError(RuntimeError):
    """InfluxDB answered a query with an error."""


@dataclass(frozen=True)
class InfluxDB1(ProcessHandle):
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
    _process: Process = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

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
    exe = find_program("influxd", "influxdb", "CFM_INFLUXD_BIN")
    port, rpc_port = free_port(), free_port()
    while rpc_port == port:
        rpc_port = free_port()
    base = subdir(tmp, "influxdb-")
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
    process = Process(
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
    process.wait_ready(lambda: http_ok(f"{handle.url}/ping", 204), "204 on /ping", timeout)
    return handle
