"""The report as an A4 PDF (reportlab): a summary, a chart per device with its compliance
limits drawn over its daily figures, then the sections of report_sections.py; Chinese in
STSong-Light (report_style.py)."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer

from server.coldchain import report_sections as sections
from server.coldchain.report import ReportData, local
from server.coldchain.report_style import BAD, FONT, UNKNOWN, WIDTH, dur, num, styles, table


def _chart(d: ReportData, dev: Any) -> Drawing:
    pts = d.series.get(dev.id, [])
    h = 46 * mm
    drawing = Drawing(WIDTH, h)
    start = datetime.combine(d.start, datetime.min.time(), d.tz)
    end = min(
        datetime.combine(d.end + timedelta(days=1), datetime.min.time(), d.tz),
        max(d.generated_at, start + timedelta(hours=1)),
    )
    x0, x1 = start.timestamp(), end.timestamp()
    lim = [v for v in (dev.limits.min, dev.limits.max) if v is not None]
    values = [v for _, v in pts] + lim
    lo, hi = min(values) - 1.0, max(values) + 1.0
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 12 * mm, 7 * mm, WIDTH - 16 * mm, h - 12 * mm
    series = [(t.timestamp(), v) for t, v in pts] or [(x0, lo)]
    plot.data = [series]
    plot.lines[0].strokeColor = colors.HexColor("#1f6feb")
    plot.lines[0].strokeWidth = 0.7
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = x0, x1
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = lo, hi
    span = x1 - x0
    step = 3600 * (3 if span <= 86400 * 1.01 else 24 if span <= 86400 * 8 else 24 * 7)
    ticks = [x0 + i * step for i in range(int(span // step) + 1)]
    plot.xValueAxis.valueSteps = ticks
    fmt = "%H:%M" if step < 86400 else "%m-%d"
    plot.xValueAxis.labelTextFormat = lambda x: datetime.fromtimestamp(x, d.tz).strftime(fmt)
    plot.xValueAxis.labels.fontName = plot.yValueAxis.labels.fontName = FONT
    plot.xValueAxis.labels.fontSize = plot.yValueAxis.labels.fontSize = 6.5
    plot.yValueAxis.labelTextFormat = "%.0f" if hi - lo >= 6 else "%.1f"
    # Unknown time (no data) shaded, so a flat line is never read across a gap.
    for r in d.days:
        if r.dev.id != dev.id:
            continue
        for g in r.figures.gaps:
            a = max(g.start.timestamp(), x0)
            b = min(g.end.timestamp(), x1)
            if b > a:
                xa = plot.x + (a - x0) / (x1 - x0) * plot.width
                xb = plot.x + (b - x0) / (x1 - x0) * plot.width
                drawing.add(
                    Rect(xa, plot.y, xb - xa, plot.height, fillColor=UNKNOWN, strokeColor=None)
                )
    drawing.add(plot)

    def y_of(v: float) -> float:
        return float(plot.y + (v - lo) / (hi - lo) * plot.height)

    for v, label in ((dev.limits.max, "上限 max"), (dev.limits.min, "下限 min")):
        if v is None:
            continue
        y = y_of(v)
        drawing.add(
            Line(
                plot.x,
                y,
                plot.x + plot.width,
                y,
                strokeColor=BAD,
                strokeWidth=0.8,
                strokeDashArray=[3, 2],
            )
        )
        drawing.add(
            String(
                plot.x + plot.width - 2,
                y + 1.5,
                f"{label} {v:g} ℃",
                fontName=FONT,
                fontSize=6.5,
                fillColor=BAD,
                textAnchor="end",
            )
        )
    if not pts:
        drawing.add(
            String(
                plot.x + plot.width / 2,
                plot.y + plot.height / 2,
                "无原始读数 no raw readings kept for this period",
                fontName=FONT,
                fontSize=8,
                fillColor=colors.grey,
                textAnchor="middle",
            )
        )
    return drawing


def render(d: ReportData) -> bytes:
    st = styles()
    buf = io.BytesIO()
    tz = d.tz
    title = f"冷链温度记录报告 Cold-chain temperature record — {d.site_name}"

    def page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(
            15 * mm, 9 * mm, f"{d.site_name} | {d.start} – {d.end} | 签名密钥 key {d.key_id}"
        )
        canvas.drawRightString(A4[0] - 15 * mm, 9 * mm, f"第 {doc.page} 页 page {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=14 * mm,
        bottomMargin=16 * mm,
        title=title,
        author=d.site_name,
        subject="HACCP cold-chain record",
    )
    v = d.verification
    story: list[Any] = [
        Paragraph("冷链温度记录报告 Cold-chain temperature record", st["title"]),
        Paragraph(
            f"{d.site_name} ({d.site}) | 期间 period {d.start} – {d.end} | "
            f"生成 generated {local(d.generated_at, tz, '%Y-%m-%d %H:%M')} "
            f"by {d.generated_by} | 时区 {tz.key}",
            st["base"],
        ),
        Spacer(1, 3 * mm),
    ]
    chain = (
        f"<font color='#067647'>完整 intact</font>: {v.entries} entries, {v.records} "
        f"records checked"
        if v.ok
        else f"<font color='#b42318'>不一致 FAILED</font>: {v.first_bad}"
    )
    open_actions = sum(1 for e in d.excursions if e["status"] == "open")
    summary = [
        ["审计链 Audit chain", chain],
        ["超标 Excursions", f"{len(d.excursions)} (未处理 without action: {open_actions})"],
        ["缺数 Gaps", str(sum(len(r.figures.gaps) for r in d.days))],
        ["留样 Samples", str(len(d.samples))],
        ["签核 Sign-offs", str(len(d.signoffs))],
        ["发现 Findings", str(len(d.findings))],
    ]
    story.append(
        table([["", ""], *summary], [38 * mm, WIDTH - 38 * mm], st)
        if False
        else table(
            summary, [38 * mm, WIDTH - 38 * mm], st, [("BACKGROUND", (0, 0), (-1, 0), colors.white)]
        )
    )
    story += _devices(d, st)
    story += sections.excursions(d, st)
    story += sections.samples(d, st)
    story += sections.calibrations(d, st)
    story += sections.signoffs(d, st)
    story += sections.findings(d, st)
    story += sections.chain(d, st)
    doc.build(story, onFirstPage=page, onLaterPages=page)
    return buf.getvalue()


def _devices(d: ReportData, st: dict[str, ParagraphStyle]) -> list[Any]:
    out: list[Any] = [Paragraph("1 每日记录 Daily record per device", st["h1"])]
    for dev in d.devices:
        lim = " – ".join(
            x for x in (num(dev.limits.min, " ℃") or "", num(dev.limits.max, " ℃")) if x
        )
        head = Paragraph(
            f"<b>{dev.name}</b> ({dev.id}, {dev.device_class}) | 合规限值 compliance "
            f"{'≥ ' if dev.limits.max is None else ''}{'≤ ' if dev.limits.min is None else ''}"
            f"{lim} | 缺数阈值 gap after {dur(dev.limits.max_gap.total_seconds())}"
            " | 灰底 = 无数据 grey: no data",
            st["h2"],
        )
        rows: list[list[Any]] = [
            [
                "日期 day",
                "最低 min",
                "最高 max",
                "平均 mean",
                "合规 in range",
                "超标 out",
                "未知 unknown",
                "完整度 complete",
                "迟到 late",
                "超标次 exc.",
                "校准 calib.",
            ]
        ]
        for r in [x for x in d.days if x.dev.id == dev.id]:
            f = r.figures
            comp = "" if f.completeness_pct is None else f"{f.completeness_pct:.1f}%"
            rows.append(
                [
                    f"{r.day}{' *' if r.status == 'provisional' else ''}",
                    num(f.min),
                    num(f.max),
                    num(f.mean),
                    dur(f.in_range_s),
                    _flag(dur(f.out_of_range_s), f.out_of_range_s > 0),
                    _flag(dur(f.unknown_s), f.unknown_s > 0),
                    f"{comp} ({f.readings}/{f.expected or '?'})",
                    str(f.late),
                    str(len(r.excursion_ids)),
                    _flag("过期 overdue", True) if r.calibration_overdue else "",
                ]
            )
        widths = [21, 12, 12, 12, 20, 19, 19, 31, 9, 10, 13]
        scale = WIDTH / sum(widths)
        # The heading stays with its chart; a month's table flows on (its header repeats).
        out.append(KeepTogether([head, _chart(d, dev)]))
        out.append(table(rows, [w * scale for w in widths], st))
    if any(r.status == "provisional" for r in d.days):
        out.append(
            Paragraph("* 当日未结束，数据为临时 provisional: the day was still open.", st["small"])
        )
    return out


def _flag(text: str, bad: bool) -> str:
    return f"<font color='#b42318'>{text}</font>" if bad else text
