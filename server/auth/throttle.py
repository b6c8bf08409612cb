"""Login throttling per account and per client address, with exponential back-off.

An account (keyed by the name tried, whether or not it exists, so the answer says nothing
about which names exist) has a few free failures; after those, each further try must wait
2, 4, 8, ... seconds (capped) after the last failure. A client address has a budget of
failures per window over all the names it tries (a password spray). A throttled try is
refused before any hashing, so it costs no CPU either. Success clears the account's count.

In memory and per process, bounded in size (a spray of addresses or names forgets the
oldest first); several server processes each keep their own, which still bounds guessing.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Account:
    failures: int = 0
    last_failure: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        *,
        free_failures: int,
        max_backoff_s: float,
        address_failures: int,
        address_window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.free_failures = free_failures
        self.max_backoff_s = max_backoff_s
        self.address_failures = address_failures
        self.address_window_s = address_window_s
        self._clock = clock
        self._max_keys = max_keys
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._addresses: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(account: str) -> str:
        return account.strip().lower()[:128]

    def _backoff(self, failures: int) -> float:
        over = failures - self.free_failures
        if over < 0:
            return 0.0
        return float(min(2 ** (over + 1), self.max_backoff_s))

    def retry_after(self, account: str, address: str) -> int | None:
        """Seconds to wait before this try is allowed, or None if it may go ahead now."""
        now = self._clock()
        with self._lock:
            waits: list[float] = []
            acc = self._accounts.get(self._key(account))
            if acc is not None:
                if now - acc.last_failure > self.max_backoff_s * 2:
                    del self._accounts[self._key(account)]  # quiet long enough: forgiven
                else:
                    waits.append(acc.last_failure + self._backoff(acc.failures) - now)
            hits = self._addresses.get(address)
            if hits is not None:
                while hits and now - hits[0] >= self.address_window_s:
                    hits.popleft()
                if len(hits) >= self.address_failures:
                    waits.append(hits[0] + self.address_window_s - now)
            wait = max(waits, default=0.0)
            return math.ceil(wait) if wait > 0 else None

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            key = self._key(account)
            acc = self._accounts.pop(key, None) or _Account()
            acc.failures += 1
            acc.last_failure = now
            self._accounts[key] = acc
            hits = self._addresses.pop(address, None) or deque()
            hits.append(now)
            self._addresses[address] = hits
            for table in (self._accounts, self._addresses):
                while len(table) > self._max_keys:
                    table.popitem(last=False)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._accounts.pop(self._key(account), None)
