"""The report PDF's look: fonts (STSong-Light, a CID font PDF readers supply themselves:
no font file shipped or embedded), paragraph styles, table style and number formats."""

from __future__ import annotations

from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import (
    Paragraph,
    Table,
    TableStyle,
)

FONT = "STSong-Light"
WIDTH = A4[0] - 30 * mm
GRID = colors.HexColor("#9aa5b1")
HEAD_BG = colors.HexColor("#e4ebf2")
BAD = colors.HexColor("#b42318")
OK = colors.HexColor("#067647")
UNKNOWN = colors.HexColor("#eceff3")  # time without data, in the charts


def styles() -> dict[str, ParagraphStyle]:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    base = ParagraphStyle("base", fontName=FONT, fontSize=8.5, leading=11.5)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=9.5),
        "title": ParagraphStyle("title", parent=base, fontSize=17, leading=22, spaceAfter=2),
        "h1": ParagraphStyle(
            "h1",
            parent=base,
            fontSize=12.5,
            leading=16,
            spaceBefore=8,
            spaceAfter=4,
            keepWithNext=1,
            textColor=colors.HexColor("#1f3a5f"),
        ),
        "h2": ParagraphStyle(
            "h2", parent=base, fontSize=10, leading=13, spaceBefore=6, spaceAfter=2, keepWithNext=1
        ),
    }


def dur(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s"
    return f"{sec} s"


def to(where: str | None) -> str:
    return f"→ {where}" if where else ""


def num(v: float | None, unit: str = "") -> str:
    return "" if v is None else f"{v:.1f}{unit}"


def table(
    rows: list[list[Any]],
    widths: list[float],
    st: dict[str, ParagraphStyle],
    extra: list[tuple[Any, ...]] | None = None,
) -> Table:
    cells = [[c if not isinstance(c, str) else Paragraph(c, st["small"]) for c in r] for r in rows]
    t = Table(cells, colWidths=widths, repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 7.5),
                ("GRID", (0, 0), (-1, -1), 0.4, GRID),
                ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                *(extra or []),
            ]
        )
    )
    return t
