"""Pseudonyms for people's identifiers in device events (card numbers): the keyed hash the
decoder applies, and where its key comes from. The key is read or made once, at start."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.profiles import scalar_key

KEY_FILE = "pseudonym.key"


def load_key(configured: SecretStr | None, data_dir: Path) -> bytes:
    """The key from the settings (environment), or made once and kept (0600) in the data
    folder, so a card keeps its pseudonym across restarts."""
    if configured is not None:
        return configured.get_secret_value().encode()
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    return path.read_bytes()


class Pseudonymizer:
    """Keyed, so a card number cannot be recovered by hashing every possible number."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or os.urandom(32)

    def __call__(self, value: Any) -> str:
        # Canonical text first: card 8165538 and "8165538" are the same person.
        text = scalar_key(value)
        digest = hmac.new(
            self._key, (text if text is not None else str(value)).encode(), hashlib.sha256
        )
        return "p-" + digest.hexdigest()[:16]
