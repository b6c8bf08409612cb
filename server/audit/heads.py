"""Signed day heads: after a site-local day ends, the chain's head as of that moment is
signed with the site's key, so an entry inserted into an old day, or a chain rebuilt from
scratch, no longer matches a signature made back then."""

from __future__ import annotations

import base64
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.audit.canonical import GENESIS
from server.audit.keys import fingerprint, public_b64, raw_public
from server.audit.model import AuditDayHead, AuditEntry


def day_end(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tz)


def message(day: date, seq: int, entry_hash: str) -> bytes:
    return f"cfm-day-head|{day.isoformat()}|{seq}|{entry_hash}".encode()


def sign_due(s: Session, key: Ed25519PrivateKey, tz: ZoneInfo, now: datetime) -> list[date]:
    """Sign the head of every ended day since the last signed one (or since the chain's
    first entry); returns the days signed."""
    last_signed = s.scalar(select(func.max(AuditDayHead.day)))
    if last_signed is not None:
        day = last_signed + timedelta(days=1)
    else:
        first = s.scalar(select(func.min(AuditEntry.at)))
        if first is None:
            return []
        day = first.astimezone(tz).date()
    pub = key.public_key()
    done: list[date] = []
    while day_end(day, tz) <= now:
        end = day_end(day, tz)
        last = s.scalar(
            select(AuditEntry).where(AuditEntry.at < end).order_by(AuditEntry.seq.desc()).limit(1)
        )
        seq, h = (0, GENESIS) if last is None else (last.seq, last.entry_hash)
        s.add(
            AuditDayHead(
                day=day,
                seq=seq,
                entry_hash=h,
                signed_at=now,
                key_id=fingerprint(raw_public(pub)),
                public_key=public_b64(pub),
                signature=base64.b64encode(key.sign(message(day, seq, h))).decode(),
            )
        )
        done.append(day)
        day += timedelta(days=1)
    s.flush()
    return done


def head_valid(head: AuditDayHead) -> bool:
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(head.public_key))
        pub.verify(base64.b64decode(head.signature), message(head.day, head.seq, head.entry_hash))
    except (InvalidSignature, ValueError):
        return False
    return True
