"""Pseudonyms for people's identifiers in device events (card numbers): the keyed hash the
decoder applies, and where its key comes from. The key is read or made once, at start, and
never logged, put in a metric or handed to the sink process.

The key is a site secret: every gateway of a site is given the same one
(FACILITY_GATEWAY_PSEUDONYM_KEY, or FACILITY_GATEWAY_PSEUDONYM_KEY_FILE naming a file that
holds it), so one student's card has one pseudonym whichever door or reader saw it. Only a
gateway alone on its machine (the demo, a one-box trial: every broker on loopback, the only
gateway its site file names) may make its own, once, in its data folder; any other refuses
to start without the site's key (`missing_key_reason`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.profiles import scalar_key

KEY_FILE = "pseudonym.key"
MIN_KEY_CHARS = 32  # the same floor as the server's secret key
KEY_SETTINGS = "FACILITY_GATEWAY_PSEUDONYM_KEY (or FACILITY_GATEWAY_PSEUDONYM_KEY_FILE)"


class PseudonymKeyError(ValueError):
    """The site's key is missing or unusable; the message names the setting, never a key."""


def load_key(
    configured: SecretStr | None,
    data_dir: Path,
    *,
    key_file: Path | None = None,
    required_because: str | None = None,
) -> bytes:
    """The site's key from the settings (the environment or a file); else, unless
    `required_because` says why this gateway may not, made once and kept (0600) in the data
    folder, so a card keeps its pseudonym across restarts."""
    if configured is not None and key_file is not None:
        raise PseudonymKeyError(f"give {KEY_SETTINGS}, not both")
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise PseudonymKeyError(
                f"FACILITY_GATEWAY_PSEUDONYM_KEY_FILE: cannot read {key_file} "
                f"({exc.__class__.__name__})"
            ) from None
        return _checked(text, f"the key in {key_file}")
    if configured is not None:
        return _checked(configured.get_secret_value(), "FACILITY_GATEWAY_PSEUDONYM_KEY")
    if required_because is not None:
        raise PseudonymKeyError(
            f"{KEY_SETTINGS} must be set: {required_because}. Give every gateway of the "
            f"site the same key, at least {MIN_KEY_CHARS} characters (e.g. python3 -c "
            "'import secrets; print(secrets.token_urlsafe(32))'), so a card has one "
            "pseudonym at all of them"
        )
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    return path.read_bytes()


def _checked(key: str, where: str) -> bytes:
    if len(key) < MIN_KEY_CHARS:
        raise PseudonymKeyError(f"{where} is shorter than {MIN_KEY_CHARS} characters")
    return key.encode()


def missing_key_reason(brokers: Iterable[str], gateways: Iterable[str]) -> str | None:
    """Why this gateway may not make a key of its own, or None when it is alone on its
    machine: the hosts of its brokers, and the gateway ids its site file names."""
    names = sorted(set(gateways))
    if len(names) > 1:
        return f"the site file names {len(names)} gateways ({', '.join(names)})"
    for host in brokers:
        if not _loopback(host):
            return f"its broker {host} is on another machine"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: another machine, or a container's
        return False


class Pseudonymizer:
    """Keyed, so a card number cannot be recovered by hashing every possible number."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or os.urandom(32)

    def __repr__(self) -> str:
        return "Pseudonymizer(key=***)"

    def __call__(self, value: Any) -> str:
        # Canonical text first: card 8165538 and "8165538" are the same person.
        text = scalar_key(value)
        digest = hmac.new(
            self._key, (text if text is not None else str(value)).encode(), hashlib.sha256
        )
        return "p-" + digest.hexdigest()[:16]
