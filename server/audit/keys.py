"""The site's Ed25519 signing key (the `cryptography` package): from the file named by
FACILITY_SERVER_AUDIT_KEY_FILE (a mounted secret) if set, else `<data dir>/audit-signing-key.pem`,
generated on first use with mode 0600 and its public key written beside it."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_ENV = "FACILITY_SERVER_AUDIT_KEY_FILE"
KEY_NAME = "audit-signing-key.pem"
PUB_NAME = "audit-signing-key.pub.pem"


class SigningKeyError(ValueError):
    pass


def key_path(data_dir: Path) -> Path:
    configured = os.environ.get(KEY_ENV)
    return Path(configured) if configured else data_dir / KEY_NAME


def load_or_create(data_dir: Path) -> Ed25519PrivateKey:
    path = key_path(data_dir)
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{path}: not an Ed25519 private key")
        return key
    if os.environ.get(KEY_ENV):
        raise SigningKeyError(f"{KEY_ENV} names {path}, which does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start: never world-readable, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    (path.parent / PUB_NAME).write_bytes(public_pem(key.public_key()))
    return key


def public_pem(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_b64(pub: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public(pub)).decode()


def fingerprint(raw: bytes) -> str:
    """What an inspector compares with the school's published key: SHA-256 of the raw public
    key, first 16 bytes, in groups."""
    h = hashlib.sha256(raw).hexdigest()[:32]
    return ":".join(h[i : i + 4] for i in range(0, 32, 4))


def load_public(path: Path) -> Ed25519PublicKey:
    data = path.read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        private = serialization.load_pem_private_key(data, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise SigningKeyError(f"{path}: not an Ed25519 key") from None
        return private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: not an Ed25519 public key")
    return key
