"""The report as CSV: one row per device and day, excursion, sample, sign-off, finding and
signed day head (a `section` column says which), for a spreadsheet or an import."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from server.coldchain.report import ReportData, local


def to_csv(d: ReportData) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["# cold-chain report", d.site_name, d.start, d.end, local(d.generated_at, d.tz)])
    w.writerow(["# chain", "intact" if d.verification.ok else str(d.verification.first_bad)])
    w.writerow(
        [
            "section",
            "device_id",
            "device_name",
            "day",
            "status",
            "min",
            "max",
            "mean",
            "in_range_s",
            "out_of_range_s",
            "unknown_s",
            "readings",
            "expected",
            "completeness_pct",
            "late",
            "gaps",
            "excursions",
            "calibration_overdue",
        ]
    )
    for r in d.days:
        f = r.figures
        w.writerow(
            [
                "daily",
                r.dev.id,
                r.dev.name,
                r.day,
                r.status,
                f.min,
                f.max,
                f.mean,
                round(f.in_range_s),
                round(f.out_of_range_s),
                round(f.unknown_s),
                f.readings,
                f.expected,
                f.completeness_pct,
                f.late,
                len(f.gaps),
                " ".join(map(str, r.excursion_ids)),
                r.calibration_overdue,
            ]
        )
    w.writerow(
        [
            "section",
            "id",
            "device_name",
            "kind",
            "started_at",
            "ended_at",
            "duration_s",
            "peak",
            "above_s",
            "below_s",
            "unknown_s",
            "status",
            "actions",
        ]
    )
    for e in d.excursions:
        acts = "; ".join(
            f"{a['disposition']} {a['quantity'] or ''} {a['moved_to'] or ''}: "
            f"{a['cause']} / {a['preventive_action']} ({a['recorded_by']})"
            for a in e["actions"]
        )
        w.writerow(
            [
                "excursion",
                e["id"],
                e["device_name"],
                e["kind"],
                _iso(e["started_at"], d),
                _iso(e["ended_at"], d),
                round(e["duration_s"], 3),
                e["peak"],
                round(e["above_s"]),
                round(e["below_s"]),
                round(e["unknown_s"]),
                e["status"],
                acts,
            ]
        )
    w.writerow(
        [
            "section",
            "id",
            "date",
            "meal",
            "dish",
            "weight_g",
            "taken_at",
            "person",
            "fridge",
            "removed_at",
            "held_h",
        ]
    )
    for x in d.samples:
        w.writerow(
            [
                "sample",
                x["id"],
                x["date"],
                x["meal"],
                x["dish"],
                x["weight_g"],
                local(x["taken_at"], d.tz),
                x["person"],
                x["fridge"],
                local(x["removed_at"], d.tz),
                x["held_h"],
            ]
        )
    for so in d.signoffs:
        w.writerow(
            [
                "signoff",
                so["id"],
                so["building"],
                so["start"],
                so["end"],
                so["signed_by"],
                local(so["signed_at"], d.tz),
                so["content_hash"],
                so["intact"],
            ]
        )
    for fi in d.findings:
        w.writerow(["finding", fi["id"], fi["kind"], fi["day"], fi["detail"]])
    for h in d.heads:
        w.writerow(["day_head", h.day, h.seq, h.entry_hash, h.key_id, h.signature])
    return buf.getvalue().encode("utf-8")


def _iso(at: str | None, d: ReportData) -> str:
    """Local time to the millisecond, with its offset: exact, and still readable."""
    if at is None:
        return ""
    return datetime.fromisoformat(at).astimezone(d.tz).isoformat(timespec="milliseconds")
