"""Shared by the security tests that run a whole server over real HTTP."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

from core.tsdb_schema import metadata


def empty_timeseries_store(server_data: Path) -> None:
    """The SQL time-series store a gateway would have made beside the server (history reads
    from it), empty."""
    path = server_data.parent / "gateway" / "timeseries.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    engine.dispose()
