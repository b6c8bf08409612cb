"""Signed report files: the exported PDF or CSV ends with one line holding the SHA-256 of
every byte before it, an Ed25519 signature over that and the public key, so an inspector
verifies the file offline (`facility audit verify --report FILE`); one changed byte fails.
In a PDF the line is a comment after %%EOF (readers ignore it); in a CSV a `#` comment."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from server.audit.keys import fingerprint, raw_public

FIELDS = {"alg", "sha256", "meta", "public_key", "key_id", "signature"}
MARKERS = {"pdf": b"%cfm-signature: ", "csv": b"#cfm-signature: "}


def _message(digest: str, meta: dict[str, Any]) -> bytes:
    return f"cfm-report|{digest}|{json.dumps(meta, sort_keys=True, ensure_ascii=False)}".encode()


def sign_report(body: bytes, key: Ed25519PrivateKey, fmt: str, meta: dict[str, Any]) -> bytes:
    if not body.endswith(b"\n"):
        body += b"\n"
    digest = hashlib.sha256(body).hexdigest()
    pub = raw_public(key.public_key())
    block = {
        "alg": "Ed25519",
        "sha256": digest,
        "meta": meta,
        "public_key": base64.b64encode(pub).decode(),
        "key_id": fingerprint(pub),
        "signature": base64.b64encode(key.sign(_message(digest, meta))).decode(),
    }
    line = json.dumps(block, sort_keys=True, ensure_ascii=True).encode()
    return body + MARKERS[fmt] + line + b"\n"


@dataclass(frozen=True, slots=True)
class ReportCheck:
    ok: bool
    detail: str
    key_id: str | None = None
    meta: dict[str, Any] | None = None


def verify_report(data: bytes, expected: Ed25519PublicKey | None = None) -> ReportCheck:
    stripped = data[:-1] if data.endswith(b"\n") else data
    cut = stripped.rfind(b"\n")
    last = stripped[cut + 1 :]
    body = stripped[: cut + 1]
    marker = next((m for m in MARKERS.values() if last.startswith(m)), None)
    if cut < 0 or marker is None:
        return ReportCheck(False, "no cfm-signature line at the end of the file")
    try:
        block = json.loads(last[len(marker) :])
        pub_raw = base64.b64decode(block["public_key"], validate=True)
        sig = base64.b64decode(block["signature"], validate=True)
        meta = block["meta"]
        claimed = block["sha256"]
    except (ValueError, KeyError, TypeError):
        return ReportCheck(False, "the signature line is damaged")
    # The line must be exactly as signed (an unsigned field or its spelling changed fails).
    canonical = json.dumps(block, sort_keys=True, ensure_ascii=True).encode()
    key_id = fingerprint(pub_raw)
    if (
        set(block) != FIELDS
        or block["alg"] != "Ed25519"
        or block["key_id"] != key_id
        # base64 has spare bits: the same bytes can be spelled two ways; only one is signed
        or base64.b64encode(pub_raw).decode() != block["public_key"]
        or base64.b64encode(sig).decode() != block["signature"]
        or canonical != last[len(marker) :]
    ):
        return ReportCheck(False, "the signature line is damaged")
    digest = hashlib.sha256(body).hexdigest()
    if digest != claimed:
        return ReportCheck(False, "the report's content was changed after signing", key_id, meta)
    try:
        pub = Ed25519PublicKey.from_public_bytes(pub_raw)
        pub.verify(sig, _message(digest, meta))
    except (InvalidSignature, ValueError):
        return ReportCheck(False, "the signature does not verify", key_id, meta)
    if expected is not None and raw_public(expected) != pub_raw:
        return ReportCheck(False, f"signed with key {key_id}, not the one given", key_id, meta)
    return ReportCheck(True, "signature valid", key_id, meta)
