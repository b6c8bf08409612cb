"""Guards of the public fault-report form (no account): a signed form token that proves
the form was open for a human's minimum fill time, and a per-address rate limit. Pure
apart from the injected clock; the route decides what to refuse."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from core.readings import unix_ms

_PURPOSE = b"cfm-public-fault-form:"


class FormTokens:
    """`<issued ms>.<hmac>`: a bot cannot forge an older time to skip the fill time."""

    def __init__(self, secret: str, min_fill: timedelta, max_age: timedelta) -> None:
        self._key = hashlib.sha256(_PURPOSE + secret.encode()).digest()  # not the login key
        self.min_fill = min_fill
        self.max_age = max_age

    def _sign(self, stamp: str) -> str:
        return hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, now: datetime) -> str:
        stamp = str(unix_ms(now))
        return f"{stamp}.{self._sign(stamp)}"

    def problem(self, token: str, now: datetime) -> str | None:
        """None if the token is good; else why not, for a 422 naming `form_token`."""
        stamp, _, mac = token.partition(".")
        if not stamp.isdigit() or not hmac.compare_digest(mac, self._sign(stamp)):
            return "not a token this server issued; reload the page"
        age = now - datetime.fromtimestamp(int(stamp) / 1000, tz=now.tzinfo)
        if age < self.min_fill:
            return (
                f"sent {max(age.total_seconds(), 0):.1f} s after the form was opened; "
                f"a person takes at least {self.min_fill.total_seconds():g} s. "
                "Check the report and send it again"
            )
        if age > self.max_age:
            return "the form was opened too long ago; reload the page"
        return None


class RateLimiter:
    """Sliding window per key (a client address), bounded in memory: the oldest keys are
    forgotten first when there are too many (a spray of addresses must not exhaust RAM)."""

    def __init__(self, window: timedelta = timedelta(hours=1), max_keys: int = 10_000) -> None:
        self.window = window
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()  # routes run in a thread pool

    def allow(self, key: str, limit: int, now: datetime) -> bool:
        """True and counted if `key` has had fewer than `limit` hits within the window."""
        with self._lock:
            hits = self._hits.pop(key, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            allowed = len(hits) < limit
            if allowed:
                hits.append(now)
            if hits:
                self._hits[key] = hits  # most recently used last
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return allowed
