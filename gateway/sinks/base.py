"""Sink stage: the contract every destination implements, and its optional capabilities.

`write` is called from one thread per sink and never overlaps `close`. It either takes the
whole batch durably (returns) or raises SinkError; the outbox keeps the batch and retries,
so writes must be idempotent: the same item written twice is stored once.
tests/integration/test_sink_contract.py holds every time-series sink to this.

Optional capabilities are methods with a default here; a sink subclasses `Sink` and
overrides the ones it has, so the sink loop calls every sink alike and never asks which
kind it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # types only: the sink process does without pydantic
    from core.wire import WireEvent, WireReading


class SinkError(RuntimeError):
    """The sink could not take the batch now (down, timeout); retry later."""


class OutboxBatch(Protocol):
    """Items `first`..`last` as the outbox hands them out (gateway.outbox.outbox.Batch)."""

    first: int
    last: int

    @property
    def readings(self) -> list[WireReading]: ...

    @property
    def events(self) -> list[WireEvent]: ...

    def readings_json(self) -> bytes: ...

    def events_json(self) -> bytes: ...

    def lines(self) -> bytes | None: ...


class Sink(Protocol):
    name: str

    def write(
        self, readings: list[WireReading], events: list[WireEvent], first: int, last: int
    ) -> None: ...

    def close(self) -> None: ...

    def write_batch(self, batch: OutboxBatch) -> None:
        """Capability: how the sink takes an outbox batch. By default its items, parsed; a
        sink that only forwards them (the uplink) takes the chunks' JSON unparsed instead."""
        self.write(batch.readings, batch.events, batch.first, batch.last)

    def maintain(self, now_ms: int) -> None:
        """Capability: housekeeping on the sink's own thread after a write it took (e.g. the
        SQL store's retention); raises SinkError if it failed. By default nothing."""
        return None
