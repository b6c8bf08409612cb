"""Small test helpers: bounded waiting, uplink batches, logins."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from core.readings import DeviceEvent, Reading, reading_key
from core.wire import UplinkBatch

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll until predicate() is truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
        last = predicate()
    return last


def reading(
    device_id: str,
    metric: str,
    value: float | bool,
    at: datetime,
    seq: int | None = None,
    unit: str | None = "°C",
) -> Reading:
    return Reading(
        reading_id=reading_key(device_id, metric, at, seq),
        device_id=device_id,
        metric=metric,
        value=value,
        unit=unit,
        measured_at=at,
        received_at=at,
        seq=seq,
    )


def event(device_id: str, kind: str, at: datetime, n: int = 0) -> DeviceEvent:
    return DeviceEvent(
        event_id=f"{device_id}/{kind}/{int(at.timestamp() * 1000)}/{n}",
        device_id=device_id,
        kind=kind,
        measured_at=at,
        received_at=at,
    )


def batch(
    readings: list[Reading], events: list[DeviceEvent] | None = None, gateway_id: str = "gw-canteen"
) -> UplinkBatch:
    return UplinkBatch(
        gateway_id=gateway_id, first=1, last=1, readings=readings, events=events or []
    )


def token(client: Any, username: str, password: str = "demo") -> dict[str, str]:
    r = client.post("/api/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def production_site(tmp: Path) -> Path:
    """The demo site with its demo-only rule overrides removed: production delays."""
    import yaml

    from core.site import DEFAULT_SITE_FILE

    doc = yaml.safe_load(DEFAULT_SITE_FILE.read_text())
    doc.pop("rule_overrides", None)
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path
