"""Uplink wire format between gateway and server: MQTT topics and the JSON batch envelope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.readings import DeviceEvent, Quality, Reading

SCHEMA_VERSION = 1
TOPIC_ROOT = "facility/v1"


def data_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/gw/{gateway_id}/data"


def status_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/gw/{gateway_id}/status"


def sim_command_topic(device_id: str) -> str:
    return f"{TOPIC_ROOT}/sim/{device_id}/command"


DATA_SUBSCRIPTION = f"{TOPIC_ROOT}/gw/+/data"
STATUS_SUBSCRIPTION = f"{TOPIC_ROOT}/gw/+/status"


class WireError(ValueError):
    """An uplink message did not match the schema; the message names the bad field."""


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class _WireReading(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    d: str
    m: str
    v: float | bool | str
    u: str | None = None
    t: int
    r: int
    s: int | None = None
    q: Quality = Quality.GOOD


class _WireEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    d: str
    k: str
    t: int
    r: int
    a: dict[str, Any] = Field(default_factory=dict)


class _WireBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    v: Literal[1]
    gw: str
    first: int  # outbox positions: lets the server see replays and gaps per gateway
    last: int
    readings: list[_WireReading] = Field(default_factory=list)
    events: list[_WireEvent] = Field(default_factory=list)


class UplinkBatch(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    gateway_id: str
    first: int
    last: int
    readings: list[Reading]
    events: list[DeviceEvent]


def encode_reading(r: Reading) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.reading_id,
        "d": r.device_id,
        "m": r.metric,
        "v": r.value,
        "t": _ms(r.measured_at),
        "r": _ms(r.received_at),
    }
    if r.unit is not None:
        out["u"] = r.unit
    if r.seq is not None:
        out["s"] = r.seq
    if r.quality is not Quality.GOOD:
        out["q"] = r.quality.value
    return out


def encode_readings(readings: list[Reading]) -> list[dict[str, Any]]:
    """`encode_reading` of each, for the gateway's hot path: the readings of one message
    share their times, so each time is converted once, not once per reading."""
    out: list[dict[str, Any]] = []
    measured: datetime | None = None
    received: datetime | None = None
    t_ms = r_ms = 0
    good = Quality.GOOD
    for r in readings:
        if r.measured_at is not measured:
            measured = r.measured_at
            t_ms = int(measured.timestamp() * 1000)
        if r.received_at is not received:
            received = r.received_at
            r_ms = int(received.timestamp() * 1000)
        d = {"id": r.reading_id, "d": r.device_id, "m": r.metric, "v": r.value, "t": t_ms}
        d["r"] = r_ms
        if r.unit is not None:
            d["u"] = r.unit
        if r.seq is not None:
            d["s"] = r.seq
        if r.quality is not good:
            d["q"] = r.quality.value
        out.append(d)
    return out


def encode_event(e: DeviceEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.event_id,
        "d": e.device_id,
        "k": e.kind,
        "t": _ms(e.measured_at),
        "r": _ms(e.received_at),
    }
    if e.attrs:
        out["a"] = e.attrs
    return out


def reading_from_wire(
    w: dict[str, Any],
    *,
    measured_at: datetime | None = None,
    received_at: datetime | None = None,
) -> Reading:
    """The Reading `encode_reading` turned into `w`. The wire keeps times in ms: a caller
    holding the exact times passes them, else they are read back from the ms."""
    return Reading(
        reading_id=w["id"],
        device_id=w["d"],
        metric=w["m"],
        value=w["v"],
        unit=w.get("u"),
        measured_at=measured_at if measured_at is not None else _dt(w["t"]),
        received_at=received_at if received_at is not None else _dt(w["r"]),
        seq=w.get("s"),
        quality=Quality(w.get("q", Quality.GOOD)),
    )


def event_from_wire(
    w: dict[str, Any],
    *,
    measured_at: datetime | None = None,
    received_at: datetime | None = None,
) -> DeviceEvent:
    """The DeviceEvent `encode_event` turned into `w`; times as for `reading_from_wire`."""
    return DeviceEvent(
        event_id=w["id"],
        device_id=w["d"],
        kind=w["k"],
        measured_at=measured_at if measured_at is not None else _dt(w["t"]),
        received_at=received_at if received_at is not None else _dt(w["r"]),
        attrs=w.get("a", {}),
    )


def encode_batch(
    gateway_id: str,
    first: int,
    last: int,
    readings: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> bytes:
    """Encode already-encoded items (the outbox stores them in wire form)."""
    return orjson.dumps(
        {
            "v": SCHEMA_VERSION,
            "gw": gateway_id,
            "first": first,
            "last": last,
            "readings": readings,
            "events": events,
        }
    )


def encode_batch_json(
    gateway_id: str, first: int, last: int, readings: bytes, events: bytes
) -> bytes:
    """`encode_batch` for items already encoded as JSON arrays (the outbox's chunks): spliced
    in unparsed, the same message `encode_batch` makes of the parsed items."""
    head = orjson.dumps({"v": SCHEMA_VERSION, "gw": gateway_id, "first": first, "last": last})
    return head[:-1] + b',"readings":' + readings + b',"events":' + events + b"}"


def decode_batch(payload: bytes) -> UplinkBatch:
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"uplink payload is not JSON: {exc}") from exc
    try:
        batch = _WireBatch.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WireError(f"uplink field {where}: {first['msg']}") from exc
    return UplinkBatch(
        gateway_id=batch.gw,
        first=batch.first,
        last=batch.last,
        readings=[
            Reading(
                reading_id=w.id,
                device_id=w.d,
                metric=w.m,
                value=w.v,
                unit=w.u,
                measured_at=_dt(w.t),
                received_at=_dt(w.r),
                seq=w.s,
                quality=w.q,
            )
            for w in batch.readings
        ],
        events=[
            DeviceEvent(
                event_id=w.id,
                device_id=w.d,
                kind=w.k,
                measured_at=_dt(w.t),
                received_at=_dt(w.r),
                attrs=w.a,
            )
            for w in batch.events
        ],
    )


class GatewayStatus(BaseModel):
    """Retained on the status topic; the broker publishes state=offline as the last will."""

    model_config = ConfigDict(extra="ignore")
    gateway_id: str
    state: Literal["online", "offline"]
    at: datetime | None = None
    devices: list[str] = Field(default_factory=list)
    offline_devices: list[str] = Field(default_factory=list)
    # Share of the outbox's cap in use (0..1): the server alerts from 80 %.
    outbox_fill: float = Field(default=0.0, ge=0.0)


def encode_status(status: GatewayStatus) -> bytes:
    return status.model_dump_json().encode()


def decode_status(payload: bytes) -> GatewayStatus:
    try:
        return GatewayStatus.model_validate_json(payload)
    except ValidationError as exc:
        raise WireError(f"gateway status: {exc.errors()[0]['msg']}") from exc
