"""Open event streams by session: a revoked session's streams close at once.

The stream route registers each open stream under its session; UserSessionsRevoked (after
the revoking transaction commits) wakes them. A stream also re-checks its session in the
database now and then, for revocations made by another server process.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from server.events.bus import EventBus
from server.events.types import UserSessionsRevoked


@dataclass(eq=False)
class Watch:
    session_id: str
    loop: asyncio.AbstractEventLoop
    revoked: asyncio.Event = field(default_factory=asyncio.Event)


class Revocations:
    def __init__(self) -> None:
        self._open: dict[str, set[Watch]] = {}
        self._lock = threading.Lock()

    def subscribe_to(self, bus: EventBus) -> None:
        bus.subscribe(UserSessionsRevoked, self._revoked, name="stream.revocations")

    def watch(self, session_id: str) -> Watch:
        """Called on the stream's event loop."""
        w = Watch(session_id, asyncio.get_running_loop())
        with self._lock:
            self._open.setdefault(session_id, set()).add(w)
        return w

    def unwatch(self, w: Watch) -> None:
        with self._lock:
            watches = self._open.get(w.session_id)
            if watches is not None:
                watches.discard(w)
                if not watches:
                    del self._open[w.session_id]

    def _revoked(self, ev: UserSessionsRevoked) -> None:
        with self._lock:
            targets = [w for sid in ev.session_ids for w in self._open.get(sid, ())]
        for w in targets:
            try:
                w.loop.call_soon_threadsafe(w.revoked.set)
            except RuntimeError:
                self.unwatch(w)  # its loop is gone

    @property
    def open_streams(self) -> int:
        with self._lock:
            return sum(len(ws) for ws in self._open.values())
