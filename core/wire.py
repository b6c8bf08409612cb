"""Uplink wire format between gateway and server: MQTT topics, the JSON batch envelope, and
the one definition of a reading's and an event's wire form (the outbox stores the same)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.readings import DeviceEvent, Quality, Reading, Value, unix_ms

SCHEMA_VERSION = 1
TOPIC_ROOT = "facility/v1"

# Outbox fill (share of its cap, GatewayStatus.outbox_fill) at which the gateway's store path
# counts as falling behind, and below which it has recovered. The gap is hysteresis: a fill
# hovering at the alert level is one alert and one warning, not one per status message.
OUTBOX_ALERT_FILL = 0.8
OUTBOX_CLEAR_FILL = 0.7


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


class WireReading(TypedDict):
    """A reading in the outbox and on the uplink. Built only by `wire_reading`; the server
    validates the same keys with `_WireReading`."""

    id: str  # reading id (core.readings.reading_key): sinks upsert on it
    d: str  # device id
    m: str  # metric key
    v: Value
    t: int  # measured, Unix ms
    r: int  # received, Unix ms
    u: NotRequired[str]  # unit, when the metric has one
    s: NotRequired[int]  # the device's message counter, when it sends one
    q: NotRequired[str]  # quality, only when not good


class WireEvent(TypedDict):
    """A device event in the outbox and on the uplink. Built only by `wire_event`."""

    id: str
    d: str
    k: str  # event kind
    t: int
    r: int
    a: NotRequired[dict[str, Any]]  # attributes, when there are any


def wire_reading(
    reading_id: str,
    device_id: str,
    metric: str,
    value: Value,
    t_ms: int,
    r_ms: int,
    unit: str | None,
    seq: int | None,
    quality: str | None,
) -> WireReading:
    """The wire form of one reading: the only place it is built. `quality` None means good;
    it is left out, as are a missing unit and sequence number. Key order is part of the form
    (the outbox stores bytes). Positional and a plain dict: the gateway's decoder calls it
    for every reading it accepts."""
    out: WireReading = {
        "id": reading_id,
        "d": device_id,
        "m": metric,
        "v": value,
        "t": t_ms,
        "r": r_ms,
    }
    if unit is not None:
        out["u"] = unit
    if seq is not None:
        out["s"] = seq
    if quality is not None:
        out["q"] = quality
    return out


def wire_event(
    event_id: str,
    device_id: str,
    kind: str,
    t_ms: int,
    r_ms: int,
    attrs: dict[str, Any] | None,
) -> WireEvent:
    """The wire form of one device event; empty attributes are left out."""
    out: WireEvent = {"id": event_id, "d": device_id, "k": kind, "t": t_ms, "r": r_ms}
    if attrs:
        out["a"] = attrs
    return out


def _quality(q: Quality) -> str | None:
    return None if q is Quality.GOOD else q.value


def encode_reading(r: Reading) -> WireReading:
    return wire_reading(
        r.reading_id,
        r.device_id,
        r.metric,
        r.value,
        unix_ms(r.measured_at),
        unix_ms(r.received_at),
        r.unit,
        r.seq,
        _quality(r.quality),
    )


def encode_readings(readings: list[Reading]) -> list[WireReading]:
    """`encode_reading` of each: the readings of one poll or message share their times, so
    each time is converted once, not once per reading."""
    out: list[WireReading] = []
    measured: datetime | None = None
    received: datetime | None = None
    t_ms = r_ms = 0
    for r in readings:
        if r.measured_at is not measured:
            measured = r.measured_at
            t_ms = unix_ms(measured)
        if r.received_at is not received:
            received = r.received_at
            r_ms = unix_ms(received)
        out.append(
            wire_reading(
                r.reading_id,
                r.device_id,
                r.metric,
                r.value,
                t_ms,
                r_ms,
                r.unit,
                r.seq,
                _quality(r.quality),
            )
        )
    return out


def encode_event(e: DeviceEvent) -> WireEvent:
    return wire_event(
        e.event_id,
        e.device_id,
        e.kind,
        unix_ms(e.measured_at),
        unix_ms(e.received_at),
        e.attrs,
    )


def reading_from_wire(
    w: WireReading,
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
    w: WireEvent,
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
    readings: list[WireReading],
    events: list[WireEvent],
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
    # Share of the outbox's cap in use (0..1): the server alerts from OUTBOX_ALERT_FILL.
    outbox_fill: float = Field(default=0.0, ge=0.0)


def encode_status(status: GatewayStatus) -> bytes:
    return status.model_dump_json().encode()


def decode_status(payload: bytes) -> GatewayStatus:
    try:
        return GatewayStatus.model_validate_json(payload)
    except ValidationError as exc:
        raise WireError(f"gateway status: {exc.errors()[0]['msg']}") from exc
