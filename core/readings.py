"""Normalized readings, device events and rejections: the values every stage passes on."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

Value = float | bool | str


class Quality(StrEnum):
    GOOD = "good"
    # Device clock was implausible, so the gateway's receive time was used instead.
    RESTAMPED = "restamped"


class RejectReason(StrEnum):
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    OVERSIZE = "oversize"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    # A value outside the profile's closed set (an event code or state word it does not map).
    UNKNOWN_VALUE = "unknown_value"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_TOPIC = "unknown_topic"
    BAD_FRAME = "bad_frame"
    BAD_CHECKSUM = "bad_checksum"
    WRONG_ADDRESS = "wrong_address"
    ERROR_REPLY = "error_reply"
    TIMEOUT = "timeout"
    OUTBOX_FULL = "outbox_full"
    # A retained MQTT message replayed on subscription whose measurement time is unknown.
    STALE_RETAINED = "stale_retained"
    # The decoder itself failed on a message: a bug, counted so it cannot hide (gateway/app.py).
    DECODE_ERROR = "decode_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One measurement the gateway accepted; immutable from here to every sink."""

    reading_id: str  # idempotency key: sinks upsert on it, so replays never double
    device_id: str
    metric: str
    value: Value
    unit: str | None
    measured_at: datetime  # UTC, aware
    received_at: datetime
    seq: int | None = None  # the device's own message counter, when it has one
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEvent:
    """A discrete thing a device reported (door forced, card denied), not a measurement."""

    event_id: str
    device_id: str
    kind: str
    measured_at: datetime
    received_at: datetime
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """Why a message was not accepted; counted and logged, never raised past a stage."""

    reason: RejectReason
    detail: str
    source: str
    raw: bytes = b""


def unix_ms(at: datetime) -> int:
    """Unix milliseconds, as reading ids and the uplink wire count time."""
    return int(at.timestamp() * 1000)


def now_ms() -> int:
    """The wall clock in Unix milliseconds: `unix_ms` of now, without making a datetime
    (the MQTT source stamps every message it receives)."""
    return time.time_ns() // 1_000_000


def key_tail(stamp_ms: int, seq: int | None) -> str:
    """What follows "{device}/{metric}" in a reading's key: the same for every reading (and
    event) of one message, so a decoder builds it once per message."""
    if seq is not None:
        return f"/{stamp_ms}/{seq}"
    return f"/{stamp_ms}"


def reading_key(device_id: str, metric: str, measured_at: datetime, seq: int | None) -> str:
    """Stable identity of a reading: the same device message always yields the same key."""
    return f"{device_id}/{metric}{key_tail(unix_ms(measured_at), seq)}"
