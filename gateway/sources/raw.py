"""The raw message a source hands to the decoder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RawMessage:
    topic: str  # MQTT topic, or "serial:<port>/<device>" for polled devices
    payload: bytes
    received_at: datetime
    mid: int = 0  # MQTT message id to acknowledge once the outbox holds the result
    qos: int = 0
