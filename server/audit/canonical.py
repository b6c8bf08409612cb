"""Canonical JSON and the hashes of the audit chain: the same record always gives the same
bytes (sorted keys, no spaces, UTF-8, times as UTC ISO strings), so a hash computed today
and one computed by the verifier years later agree."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

GENESIS = "0" * 64  # the prev_hash of entry 1


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in an audited record")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} into an audited record")


def canonical(payload: Any) -> str:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def sha256_hex(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def entry_hash(
    *, prev_hash: str, seq: int, at: datetime, kind: str, op: str, ref: str, content_hash: str
) -> str:
    stamp = _default(at)
    return sha256_hex(f"{prev_hash}|{seq}|{stamp}|{kind}|{op}|{ref}|{content_hash}")
