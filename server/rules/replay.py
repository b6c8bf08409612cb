"""Run a rule set over recorded readings and list the alerts it would raise (a dry run of a
rule change). The real ingest pipeline runs on a throw-away SQLite database and a manual clock."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select

from core.profiles import load_profiles
from core.readings import DeviceEvent, Reading, reading_key
from core.ruleset import load_class_rules
from core.site import load_site
from core.wire import UplinkBatch
from server.alerts.model import Alert
from server.db.engine import make_engine, migrate, session_factory
from server.events.bus import EventBus
from server.ingest.pipeline import IngestPipeline
from server.rules.index import RuleIndex
from server.rules.runner import RuleRunner


class ReplayError(ValueError):
    pass


class _Record(BaseModel):
    """One line of a replay file: a reading (metric+value) or a device event."""

    model_config = ConfigDict(extra="forbid")
    device: str
    at: datetime
    metric: str | None = None
    value: float | bool | str | None = None
    unit: str | None = None
    seq: int | None = None
    event: str | None = None
    # An event's attributes as the gateway passes them on (a card already pseudonymised),
    # and its id when one line repeats another's delivery (default: file and line).
    attrs: dict[str, str | int | float | bool] | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayedAlert:
    device_id: str
    rule: str
    severity: str
    raised_at: datetime
    resolved_at: datetime | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "rule": self.rule,
            "severity": self.severity,
            "raised_at": self.raised_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "message": self.message,
        }


def read_records(path: Path) -> list[Reading | DeviceEvent]:
    items: list[Reading | DeviceEvent] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rec = _Record.model_validate(orjson.loads(line))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise ReplayError(f"{path}:{n}: {exc}") from exc
        if rec.at.tzinfo is None:
            raise ReplayError(f"{path}:{n}: 'at' needs a time zone")
        at = rec.at.astimezone(UTC)
        if rec.event is not None:
            items.append(
                DeviceEvent(
                    event_id=rec.id or f"{rec.device}/{rec.event}/{n}",
                    device_id=rec.device,
                    kind=rec.event,
                    measured_at=at,
                    received_at=at,
                    attrs=dict(rec.attrs or {}),
                )
            )
        elif rec.metric is not None and rec.value is not None:
            items.append(
                Reading(
                    reading_id=reading_key(rec.device, rec.metric, at, rec.seq),
                    device_id=rec.device,
                    metric=rec.metric,
                    value=rec.value,
                    unit=rec.unit,
                    measured_at=at,
                    received_at=at,
                    seq=rec.seq,
                )
            )
        else:
            raise ReplayError(f"{path}:{n}: a line needs 'metric' and 'value', or 'event'")
    items.sort(key=lambda i: i.measured_at)
    return items


def replay(
    items: Iterable[Reading | DeviceEvent],
    *,
    site_file: Path,
    profiles_dir: Path,
    burst: bool = False,
    tick: timedelta = timedelta(minutes=1),
) -> list[ReplayedAlert]:
    """Live: one item at a time with the offline tick running on event time. Burst: all items
    in one batch, as after a long outage. Both should yield the same alerts."""
    records = list(items)
    profiles = load_profiles(profiles_dir)
    site = load_site(site_file, profiles)
    with tempfile.TemporaryDirectory(prefix="cfm-replay-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'replay.db'}")
        migrate(engine)
        index = RuleIndex(site, profiles, load_class_rules(profiles_dir / "classes"))
        pipeline = IngestPipeline(
            session_factory(engine), site, profiles, RuleRunner(index, site.tz), EventBus()
        )
        pipeline.sync_devices()
        if burst:
            pipeline.handle_batch(_batch(records))
        else:
            clock = records[0].measured_at if records else None
            for item in records:
                while clock is not None and clock + tick <= item.measured_at:
                    clock += tick
                    pipeline.tick(clock)
                pipeline.handle_batch(_batch([item]))
        with pipeline.sessions() as s:
            rows = s.scalars(select(Alert).order_by(Alert.raised_at, Alert.device_id, Alert.rule))
            result = [
                ReplayedAlert(
                    a.device_id, a.rule, a.severity, a.raised_at, a.resolved_at, a.message
                )
                for a in rows
            ]
        engine.dispose()
    return result


def _batch(items: list[Reading | DeviceEvent]) -> UplinkBatch:
    return UplinkBatch(
        gateway_id="replay",
        first=1,
        last=1,
        readings=[i for i in items if isinstance(i, Reading)],
        events=[i for i in items if isinstance(i, DeviceEvent)],
    )
