"""Saving a change to a record: chained as an update while its day is unsigned; once a
sign-off covers the day, or when a person corrects it with a reason, the change is also a
Correction (who, when, old -> new, why) listed after the signature. Never a silent edit."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit import chain
from server.audit.canonical import canonical
from server.coldchain import records
from server.coldchain.records_model import Correction, SignOff


def signed_off(s: Session, building: str, day: date) -> SignOff | None:
    return s.scalar(
        select(SignOff)
        .where(SignOff.building == building, SignOff.start <= day, SignOff.end >= day)
        .order_by(SignOff.signed_at.desc())
        .limit(1)
    )


def save(
    s: Session,
    row: records.Row_,
    *,
    building: str,
    day: date,
    actor: str,
    at: datetime,
    reason: str | None = None,
    op: str | None = None,
) -> Correction | None:
    """Chain `row` as it is now; returns the Correction made, if one was."""
    s.flush()
    ref = records.ref_of(row)
    last = chain.latest_for(s, ref)
    new = records.payload(row)
    if last is not None and last.payload == canonical(new) and op is None:
        return None
    sign = signed_off(s, building, day)
    correction = None
    if last is not None and (sign is not None or reason is not None):
        old = json.loads(last.payload)
        now_form = json.loads(canonical(new))
        changes: dict[str, Any] = {
            k: [old.get(k), now_form.get(k)]
            for k in sorted(set(old) | set(now_form))
            if old.get(k) != now_form.get(k)
        }
        correction = Correction(
            ref=ref,
            changes=changes,
            reason=reason or "late readings from a gateway's buffer",
            by=actor,
            at=at,
            after_signoff_id=sign.id if sign is not None else None,
        )
        s.add(correction)
        records.put(s, correction, actor=actor, at=at)
        op = op or "correction"
    records.put(s, row, actor=actor, at=at, op=op)
    return correction
