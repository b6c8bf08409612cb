"""The report PDF's sections after the daily records: excursions with their actions,
samples, calibrations, sign-offs with corrections, findings and the tamper evidence."""

from __future__ import annotations

from typing import Any

from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Paragraph

from server.coldchain.report import ReportData, local
from server.coldchain.report_style import WIDTH, dur, table, to


def excursions(d: ReportData, st: dict[str, ParagraphStyle]) -> list[Any]:
    out: list[Any] = [Paragraph("2 超标与纠正措施 Excursions and corrective actions", st["h1"])]
    if not d.excursions:
        return [*out, Paragraph("无 None.", st["base"])]
    rows: list[list[Any]] = [
        [
            "#",
            "设备 device",
            "开始 start",
            "结束 end",
            "时长 duration",
            "峰值 peak",
            "超限时间 beyond",
            "告警/工单 alert / WO",
            "纠正措施 corrective action",
        ]
    ]
    for e in d.excursions:
        beyond = dur(e["above_s"] + e["below_s"])
        if e["unknown_s"]:
            beyond += f"; 未知 unknown {dur(e['unknown_s'])}"
        alerts = "; ".join(
            f"#{a['id']} {a['rule']}"
            + (f" (WO #{a['work_order_id']})" if a["work_order_id"] else "")
            for a in e["alerts"]
        )
        acts = (
            "<br/>".join(
                f"原因 cause: {a['cause']}; 影响 impact: {a['impact']}; 处置 disposition: "
                f"{a['disposition']} {a['quantity'] or ''} {to(a['moved_to'])}"
                f"; 预防 preventive: {a['preventive_action']} ({a['recorded_by']}, "
                f"{local(a['recorded_at'], d.tz, '%m-%d %H:%M')})"
                for a in e["actions"]
            )
            or "<font color='#b42318'>未处理 OPEN — no action recorded</font>"
        )
        rows.append(
            [
                str(e["id"]),
                e["device_name"],
                local(e["started_at"], d.tz),
                local(e["ended_at"], d.tz) or "进行中 ongoing",
                dur(e["duration_s"]),
                f"{e['peak']:.2f} ℃ ({e['kind']})",
                beyond,
                alerts,
                acts,
            ]
        )
    widths = [7, 19, 19, 19, 18, 15, 16, 22, 45]
    scale = WIDTH / sum(widths)
    return [*out, table(rows, [w * scale for w in widths], st)]


def samples(d: ReportData, st: dict[str, ParagraphStyle]) -> list[Any]:
    out: list[Any] = [Paragraph("3 留样记录 Sample retention", st["h1"])]
    if not d.samples:
        out.append(Paragraph("无 None.", st["base"]))
    else:
        rows: list[list[Any]] = [
            [
                "日期 date",
                "餐次 meal",
                "菜品 dish",
                "重量 weight",
                "留样时间 taken",
                "留样人 person",
                "冰箱 fridge",
                "取出 removed",
                "存放 held",
            ]
        ]
        for x in d.samples:
            held = "" if x["held_h"] is None else f"{x['held_h']:.1f} h"
            void = " (作废 void)" if x["void"] else ""
            rows.append(
                [
                    x["date"],
                    x["meal"],
                    x["dish"] + void,
                    f"{x['weight_g']:g} g",
                    local(x["taken_at"], d.tz, "%m-%d %H:%M"),
                    x["person"],
                    x["fridge"],
                    local(x["removed_at"], d.tz, "%m-%d %H:%M"),
                    held,
                ]
            )
        widths = [18, 14, 28, 14, 20, 18, 26, 20, 12]
        scale = WIDTH / sum(widths)
        out.append(table(rows, [w * scale for w in widths], st))
    return out


def calibrations(d: ReportData, st: dict[str, ParagraphStyle]) -> list[Any]:
    out: list[Any] = [Paragraph("4 校准登记 Calibration register", st["h1"])]
    names = {dev.id: dev.name for dev in d.devices}
    rows: list[list[Any]] = [
        [
            "设备 device",
            "校准日期 calibrated",
            "标准器 reference",
            "偏差 offset",
            "结果 result",
            "下次 next due",
            "人员 by",
        ]
    ]
    seen = set()
    for c in d.calibrations:
        seen.add(c["device_id"])
        overdue = c["next_due"] < d.end.isoformat() and not c["void"]
        rows.append(
            [
                names.get(c["device_id"], c["device_id"]),
                c["calibrated_on"],
                c["reference"],
                f"{c['offset_c']:+.2f} ℃",
                c["result"] + (" (作废 void)" if c["void"] else ""),
                c["next_due"] + (" 过期 overdue" if overdue else ""),
                c["by"],
            ]
        )
    for dev in d.devices:
        if dev.id not in seen:
            rows.append([dev.name, "无记录 none on record", "", "", "", "", ""])
    widths = [26, 26, 34, 14, 14, 22, 14]
    scale = WIDTH / sum(widths)
    return [*out, table(rows, [w * scale for w in widths], st)]


def signoffs(d: ReportData, st: dict[str, ParagraphStyle]) -> list[Any]:
    out: list[Any] = [Paragraph("5 审核签字 Sign-offs", st["h1"])]
    if not d.signoffs:
        return [*out, Paragraph("本期无签字 No sign-off in this period.", st["base"])]
    for so in d.signoffs:
        state = (
            "<font color='#067647'>签字后未改动 unchanged since signing</font>"
            if so["intact"]
            else f"<font color='#b42318'>签字后有更正 changed since signing: "
            f"{', '.join(so['changed_since'])}</font>"
        )
        out.append(
            Paragraph(
                f"{so['building']} {so['period']} {so['start']} – {so['end']}: 签字人 signed by "
                f"<b>{so['signed_by']}</b> at {local(so['signed_at'], d.tz)}; hash "
                f"{so['content_hash'][:16]}…; {so['comment']} | {state}",
                st["base"],
            )
        )
        for c in so["corrections"]:
            ch = "; ".join(f"{k}: {a} → {b}" for k, (a, b) in c["changes"].items())[:400]
            out.append(
                Paragraph(
                    f"&nbsp;&nbsp;更正 correction {c['ref']} by {c['by']} at "
                    f"{local(c['at'], d.tz)}: {c['reason']} ({ch})",
                    st["small"],
                )
            )
    return out


def findings(d: ReportData, st: dict[str, ParagraphStyle]) -> list[Any]:
    out: list[Any] = [Paragraph("6 缺数与发现 Gaps and findings", st["h1"])]
    gaps: list[list[Any]] = [["设备 device", "从 from", "到 to", "未知 unknown"]]
    for r in d.days:
        for g in r.figures.gaps:
            gaps.append([r.dev.name, local(g.start, d.tz), local(g.end, d.tz), dur(g.seconds)])
    if len(gaps) > 1:
        out.append(
            Paragraph(
                "缺数（计为未知，不计为合规）Gaps: counted as unknown, never in range", st["h2"]
            )
        )
        out.append(table(gaps, [w * WIDTH / 100 for w in (25, 28, 28, 19)], st))
    if not d.findings:
        return [*out, Paragraph("无其他发现 No other findings.", st["base"])]
    rows: list[list[Any]] = [["日期 day", "类别 kind", "说明 detail", "通知 notified"]]
    for f in d.findings:
        rows.append(
            [f["day"], f["kind"], f["detail"], local(f["notified_at"], d.tz, "%m-%d %H:%M")]
        )
    widths = [18, 24, 110, 20]
    scale = WIDTH / sum(widths)
    return [*out, table(rows, [w * scale for w in widths], st)]


def chain(d: ReportData, st: dict[str, ParagraphStyle]) -> list[Any]:
    v = d.verification
    out: list[Any] = [
        Paragraph("7 防篡改 Tamper evidence", st["h1"]),
        Paragraph(
            ("审计链完整 The audit chain verifies: " if v.ok else "审计链不一致 FAILED: ")
            + (f"{v.entries} entries, {v.records} records as stored." if v.ok else str(v.first_bad))
            + f" 站点公钥指纹 site key fingerprint: <b>{d.key_id}</b>. 本文件末尾附 Ed25519 签名；"
            "用 <i>facility audit verify --report FILE</i> 离线核验 (verify this file offline).",
            st["base"],
        ),
    ]
    if d.heads:
        rows: list[list[Any]] = [["日期 day", "链头 head entry", "哈希 hash", "签名 signature"]]
        for h in d.heads:
            rows.append([str(h.day), f"#{h.seq}", h.entry_hash[:32] + "…", h.signature[:40] + "…"])
        widths = [18, 16, 60, 70]
        scale = WIDTH / sum(widths)
        out.append(table(rows, [w * scale for w in widths], st))
    return out
