"""Decode stage for serial meters: one metric's answer (Modbus register words or a DL/T 645
reply's data) -> its value through the profile -> a Reading. Pure: the bus master does the
asking and framing, and calls these between its retries.

Two kinds of refusal, kept apart because the bus treats them differently: FrameError (the
answer is unusable: read again, counted per bus and device) and ValueRejected (the meter
said it, the profile refuses it: counted, not read again).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.profiles import Dlt645Source, MetricSpec, ModbusSource
from core.readings import Reading, RejectReason, Value, reading_key
from core.serial.errors import FrameError
from gateway.decode.dlt645_items import item_number
from gateway.decode.modbus_registers import registers_number
from gateway.decode.values import ValueRejected, coerce

SerialAnswer = Sequence[int] | bytes
"""Register words as read (Modbus), or a read reply's data field (DL/T 645)."""

_FRAME_REASONS = {
    "checksum": RejectReason.BAD_CHECKSUM,
    "crc": RejectReason.BAD_CHECKSUM,
    "wrong_address": RejectReason.WRONG_ADDRESS,
    "error_reply": RejectReason.ERROR_REPLY,
}


def answer_number(spec: MetricSpec, answer: SerialAnswer) -> float:
    """The raw number in a metric's answer, before the profile's scale and checks."""
    source = spec.source
    if isinstance(source, ModbusSource) and not isinstance(answer, bytes):
        return registers_number(answer, source)
    if isinstance(source, Dlt645Source) and isinstance(answer, bytes):
        return item_number(answer, source)
    # A profile whose metric sources do not match its transport; caught by tests/profiles.
    raise FrameError("config", f"{spec.key}: its source cannot read a {type(answer).__name__}")


def metric_value(spec: MetricSpec, answer: SerialAnswer) -> Value:
    """The metric's value as every sink stores it; FrameError or ValueRejected if refused."""
    return coerce(spec, answer_number(spec, answer), {})


def reject_reason(exc: FrameError | ValueRejected) -> RejectReason:
    """The rejection a refused answer is counted as."""
    if isinstance(exc, ValueRejected):
        return exc.reason
    return _FRAME_REASONS.get(exc.reason, RejectReason.BAD_FRAME)


def serial_reading(device_id: str, spec: MetricSpec, value: Value, at: datetime) -> Reading:
    """A polled value as a Reading: the gateway's clock is the meter's (meters on the bus
    answer now, with no time of their own), so measured and received are one instant."""
    return Reading(
        reading_id=reading_key(device_id, spec.key, at, None),
        device_id=device_id,
        metric=spec.key,
        value=value,
        unit=spec.resolved_unit,
        measured_at=at,
        received_at=at,
    )
