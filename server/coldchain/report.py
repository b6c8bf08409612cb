"""The cold-chain report an inspector accepts: everything of a period gathered once
(`gather`), written as a PDF (report_pdf.py) or CSV, and signed (server/audit/
report_signature.py) so the file verifies offline. Also the chain check the report quotes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.audit.keys import fingerprint, raw_public
from server.audit.model import AuditDayHead
from server.audit.report_signature import sign_report
from server.audit.verify import Verification, verify_chain
from server.coldchain import daily, queries, records, signoff, views
from server.coldchain.model import ColdReading
from server.coldchain.records_model import Calibration, Correction, Finding, Sample, SignOff

if TYPE_CHECKING:
    from server.coldchain.service import ColdChainService

CHART_POINTS = 720  # per device: min and max of each bucket keep every peak visible


@dataclass
class ReportData:
    site: str
    site_name: str
    tz: ZoneInfo
    start: date
    end: date
    generated_at: datetime
    generated_by: str
    key_id: str
    devices: list[Any]
    days: list[queries.DayRow]
    excursions: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    calibrations: list[dict[str, Any]]
    signoffs: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    verification: Verification
    heads: list[AuditDayHead]
    series: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)


def readings(
    s: Session, device_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    rows = s.execute(
        select(ColdReading.measured_at, ColdReading.value)
        .where(
            ColdReading.device_id == device_id,
            ColdReading.measured_at >= start,
            ColdReading.measured_at < end,
        )
        .order_by(ColdReading.measured_at)
    ).all()
    return [(r.measured_at, r.value) for r in rows]


def envelope(points: list[tuple[datetime, float]], n: int) -> list[tuple[datetime, float]]:
    """At most ~n points: each bucket keeps its lowest and highest reading, in time order."""
    if len(points) <= n:
        return points
    size = max(1, len(points) * 2 // n)
    out: list[tuple[datetime, float]] = []
    for i in range(0, len(points), size):
        bucket = points[i : i + size]
        lo, hi = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
        out += sorted({lo, hi})
    return out


def corrections_of(s: Session, refs: list[str]) -> list[dict[str, Any]]:
    rows = s.scalars(select(Correction).where(Correction.ref.in_(refs)).order_by(Correction.at))
    return [signoff.correction_out(c) for c in rows]


def verify(
    s: Session,
    tz: ZoneInfo,
    start: date | None,
    end: date | None,
    key: Ed25519PrivateKey | None,
    expected_key_id: str | None = None,
) -> Verification:
    since = datetime.combine(start, time(0), tz) if start else None
    until = datetime.combine(end + timedelta(days=1), time(0), tz) if end else None
    expected = fingerprint(raw_public(key.public_key())) if key is not None else expected_key_id
    return verify_chain(
        s, records.record_checker(tz), since=since, until=until, expected_key_id=expected
    )


def verification_out(v: Verification) -> dict[str, Any]:
    bad = v.first_bad
    return {
        "ok": v.ok,
        "entries": v.entries,
        "records": v.records,
        "first_bad": None
        if bad is None
        else {"seq": bad.seq, "kind": bad.kind, "ref": bad.ref, "problem": bad.detail},
        "heads": [{"day": d.isoformat(), "seq": n, "signed": ok} for d, n, ok in v.heads],
        "message": "chain intact" if bad is None else str(bad),
    }


def gather(s: Session, svc: ColdChainService, start: date, end: date, by: str) -> ReportData:
    now, tz = svc.now(), svc.tz
    devices = sorted(svc.devices.values(), key=lambda d: (d.building, d.id))
    lo, _ = daily.day_bounds(start, tz)
    _, hi = daily.day_bounds(end, tz)
    exc = queries.excursions_between(s, lo, hi)
    sample_rows = s.scalars(
        select(Sample).where(Sample.day >= start, Sample.day <= end).order_by(Sample.taken_at)
    ).all()
    signoffs = s.scalars(
        select(SignOff).where(SignOff.end >= start, SignOff.start <= end).order_by(SignOff.start)
    ).all()
    found = s.scalars(
        select(Finding).where(Finding.day >= start, Finding.day <= end).order_by(Finding.at)
    ).all()
    cals = s.scalars(
        select(Calibration).order_by(Calibration.device_id, Calibration.calibrated_on)
    ).all()
    heads = s.scalars(
        select(AuditDayHead)
        .where(AuditDayHead.day >= start, AuditDayHead.day <= end)
        .order_by(AuditDayHead.day)
    ).all()
    return ReportData(
        site=svc.site.site,
        site_name=svc.site.name,
        tz=tz,
        start=start,
        end=end,
        generated_at=now,
        generated_by=by,
        key_id=fingerprint(raw_public(svc.key.public_key())),
        devices=devices,
        days=queries.daily_rows(s, devices, start, end, tz, svc.cfg, now),
        excursions=[views.excursion_out(s, e, svc.devices, svc.cfg, now) for e in exc],
        samples=[views.sample_out(x) for x in sample_rows],
        calibrations=[views.calibration_out(c) for c in cals],
        signoffs=[views.signoff_out(r, signoff.status(s, r, tz)) for r in signoffs],
        findings=[views.finding_out(f) for f in found],
        # Every entry made since the period began (later corrections too), linked to the one
        # before, and the period's signed day heads.
        verification=verify(s, tz, start, None, svc.key),
        heads=list(heads),
        series={d.id: envelope(readings(s, d.id, lo, min(hi, now)), CHART_POINTS) for d in devices},
    )


def build(s: Session, svc: ColdChainService, start: date, end: date, fmt: str, by: str) -> bytes:
    data = gather(s, svc, start, end, by)
    if fmt == "csv":
        from server.coldchain.report_csv import to_csv

        body = to_csv(data)
    else:
        from server.coldchain.report_pdf import render

        body = render(data)
    meta = {
        "site": data.site,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "generated_at": data.generated_at.astimezone(UTC).isoformat(),
        "format": fmt,
        "chain_ok": data.verification.ok,
    }
    return sign_report(body, svc.key, fmt, meta)


def local(at: str | datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if at is None:
        return ""
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    return when.astimezone(tz).strftime(fmt)
