"""The raw message a source hands to the decoder."""

from __future__ import annotations

from typing import NamedTuple


class RawMessage(NamedTuple):
    # A tuple, not a dataclass: thousands are made a second on the ingest path.
    topic: str  # MQTT topic, or "serial:<port>/<device>" for polled devices
    payload: bytes
    received_ms: int  # gateway receive time, Unix milliseconds
    mid: int = 0  # MQTT message id to acknowledge once the outbox holds the result
    qos: int = 0
    retain: bool = False  # MQTT: the broker's stored last message, replayed on subscription
