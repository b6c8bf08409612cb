"""The Sink contract every destination implements.

`write` is called from one thread per sink and never overlaps `close`. It either takes the
whole batch durably (returns) or raises SinkError; the outbox keeps the batch and retries,
so writes must be idempotent: the same item written twice is stored once.
"""

from __future__ import annotations

from typing import Any, Protocol


class SinkError(RuntimeError):
    """The sink could not take the batch now (down, timeout); retry later."""


class Sink(Protocol):
    name: str

    def write(
        self, readings: list[dict[str, Any]], events: list[dict[str, Any]], first: int, last: int
    ) -> None: ...

    def close(self) -> None: ...
