"""Passwords: the policy a new one must meet, and Argon2id hashing with bounded memory.

Not here: who may set whose password (server/auth/accounts.py) and login throttling
(server/auth/throttle.py).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import cache
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from prometheus_client import CollectorRegistry, Counter

MAX_LENGTH = 256  # longer is no safer, and costs the hash's input time
T = TypeVar("T")


@cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of leaked sets, as zxcvbn ships them (PyPI), lower
    case: the list comes with the library at install, not copied into this repository."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, username: str, min_length: int) -> str | None:
    """Why `password` may not be used (for a 422 naming the field), or None."""
    if len(password) < min_length:
        return f"must be at least {min_length} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    folded = password.strip().lower()
    if folded in common_passwords():
        return "is one of the most common passwords; choose another"
    if username and username.lower() in folded:
        return "must not contain the user name"
    if len(set(folded)) < 4:
        return "has too few different characters"
    return None


class HasherBusy(RuntimeError):
    """Every hashing slot stayed taken for the whole wait: the caller answers 503."""


class Hasher:
    """Argon2id hashing on `concurrency` worker threads of its own.

    Each hash takes `memory_kib` for its duration. The work runs on a small pool of its own,
    not on the request's thread: the C allocator keeps a freed 19 MiB block in the arena of
    the thread that used it, so hashing on any of the server's 40 request threads would leave
    up to one block per arena (about 300 MiB measured); on `concurrency` threads it is at most
    concurrency x memory_kib, whatever arrives. A caller waits its turn up to `wait_s`, then
    gets HasherBusy (503). An unknown user is checked against a hash made at start-up with
    the same parameters, so it costs what a wrong password costs and answers in the same time.
    """

    def __init__(
        self,
        *,
        memory_kib: int,
        time_cost: int,
        concurrency: int,
        wait_s: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._argon = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
        )
        self.memory_kib = memory_kib
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="argon2")
        self._waiting = threading.BoundedSemaphore(concurrency * 16)  # queued + running
        self._wait_s = wait_s
        self.hashes = Counter(
            "server_password_hashes",
            "Argon2id computations (hash = new password, verify = login or password check)",
            ["op"],
            registry=registry,
        )
        self._dummy = self._argon.hash(secrets.token_urlsafe(24))

    def _run(self, fn: Callable[[], T]) -> T:
        if not self._waiting.acquire(blocking=False):
            raise HasherBusy("too many logins at once; try again in a moment")
        try:
            future = self._pool.submit(fn)
            try:
                return future.result(timeout=self._wait_s)
            except FutureTimeout:
                future.cancel()
                raise HasherBusy("too many logins at once; try again in a moment") from None
        finally:
            self._waiting.release()

    def hash(self, password: str) -> str:
        self.hashes.labels("hash").inc()
        return self._run(lambda: self._argon.hash(password))

    def verify(self, hashed: str | None, password: str) -> bool:
        """True if `password` matches `hashed`; None (no such user) costs the same, False."""
        self.hashes.labels("verify").inc()

        def check() -> bool:
            try:
                return self._argon.verify(hashed or self._dummy, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return self._run(check) and hashed is not None

    def needs_rehash(self, hashed: str) -> bool:
        """A hash made with other parameters (older settings): rehash at the next login."""
        try:
            return self._argon.check_needs_rehash(hashed)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
