"""One way to write the record: a transaction that retries when another writer appended to
the audit chain first (its `seq` is unique), so records and their chain entries are always
committed together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from server.audit.chain import APPEND_LOCK

log = logging.getLogger(__name__)
T = TypeVar("T")
TRIES = 5


def write(sessions: sessionmaker[Session], fn: Callable[[Session], T]) -> T:
    for attempt in range(1, TRIES + 1):
        try:
            with APPEND_LOCK, sessions.begin() as s:
                return fn(s)
        except (IntegrityError, OperationalError) as exc:
            if attempt == TRIES or not _retryable(exc):
                raise
            log.info("cold-chain write retried (%s)", exc.__class__.__name__)
    raise AssertionError("unreachable")


def _retryable(exc: Exception) -> bool:
    text = str(exc).lower()
    return "audit_entries" in text or "locked" in text or "unique" in text
