"""Photos attached to public fault reports: checked by content (not by the name a browser
gives), size-limited, and kept on disk beside the database, one file per work order."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

MAX_BYTES = 2 * 1024 * 1024
# Magic numbers of the formats phones produce, per their specifications.
FORMATS = {
    b"\xff\xd8\xff": ("jpg", "image/jpeg"),
    b"\x89PNG\r\n\x1a\n": ("png", "image/png"),
}


class PhotoError(ValueError):
    pass


def decode_photo(data_url: str) -> tuple[bytes, str, str]:
    """`data:image/...;base64,...` -> (bytes, extension, media type); PhotoError says why not."""
    head, sep, payload = data_url.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise PhotoError("photo must be a data URL: data:image/jpeg;base64,...")
    if len(payload) > (MAX_BYTES * 4) // 3 + 4:
        raise PhotoError(f"photo is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise PhotoError("photo is not valid base64") from None
    if len(raw) > MAX_BYTES:
        raise PhotoError(f"photo is larger than {MAX_BYTES // (1024 * 1024)} MB")
    for magic, (ext, media) in FORMATS.items():
        if raw.startswith(magic):
            return raw, ext, media
    raise PhotoError("photo must be a JPEG or PNG image")


def save(folder: Path, wo_id: int, raw: bytes, ext: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"wo-{wo_id}.{ext}"
    path.write_bytes(raw)
    return path


def find(folder: Path, wo_id: int) -> tuple[Path, str] | None:
    for ext, media in FORMATS.values():
        path = folder / f"wo-{wo_id}.{ext}"
        if path.exists():
            return path, media
    return None
