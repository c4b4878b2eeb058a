"""The bulletin as an A4 PDF, drawn with fpdf2.

Fonts: the dashboard's Noto subsets (``web/static/fonts``; fpdf2 reads WOFF through
fontTools and embeds its own TrueType subset), Noto Sans for Latin and Vietnamese,
Khmer, Lao and Thai as fallbacks, with text shaping (HarfBuzz through uharfbuzz) so that
stacked consonants and vowel signs of place names are placed as the script requires.
The map and curves are the same SVG as in the HTML (``svg.py``), drawn by fpdf2 as
vectors (not rasterized), without their tooltips. Tables are fpdf2 tables. The creation
date is the as-of time, so the same bulletin gives the same bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from importlib import resources

from fpdf import FPDF
from fpdf.fonts import FontFace

from . import text
from .content import Bulletin
from .svg import curve_svg, legend, map_svg

FAMILY = "NotoSans"
#: (family, style, font file) registered; the script fonts are fallbacks of Noto Sans.
FONTS = (
    (FAMILY, "", "NotoSans-Regular.woff"),
    (FAMILY, "B", "NotoSans-Bold.woff"),
    ("NotoSansKhmer", "", "NotoSansKhmer-Regular.woff"),
    ("NotoSansLao", "", "NotoSansLao-Regular.woff"),
    ("NotoSansThai", "", "NotoSansThai-Regular.woff"),
)
FALLBACKS = ["NotoSansKhmer", "NotoSansLao", "NotoSansThai"]
_TITLE = re.compile(r"<title>.*?</title>", re.DOTALL)
HEADING = FontFace(emphasis="BOLD", fill_color=(244, 245, 247))


class _Document(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FAMILY, "", 7)
        self.set_text_color(91, 100, 114)
        self.cell(0, 4, f"{self.footer_text} \u00b7 page {self.page_no()}", align="C")
        self.set_text_color(0, 0, 0)


def _fonts(pdf: FPDF) -> None:
    folder = resources.files("epibridge.web").joinpath("static", "fonts")
    for family, style, name in FONTS:
        with resources.as_file(folder.joinpath(name)) as path:
            pdf.add_font(family, style, str(path))
    pdf.set_fallback_fonts(FALLBACKS, exact_match=False)
    pdf.set_text_shaping(True)


def _heading(pdf: FPDF, words: str) -> None:
    if pdf.get_y() > pdf.h - 50:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font(FAMILY, "B", 12)
    pdf.cell(0, 7, words, new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(213, 217, 224)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(2)
    pdf.set_font(FAMILY, "", 9)


def _paragraph(pdf: FPDF, words: str, size: float = 9, muted: bool = False) -> None:
    pdf.set_font(FAMILY, "", size)
    if muted:
        pdf.set_text_color(91, 100, 114)
    pdf.multi_cell(0, size * 0.5, words, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(1)


def _svg(pdf: FPDF, svg: str, width: float) -> None:
    """An SVG drawn at ``width`` mm (its tooltips dropped: fpdf2 does not draw them)."""
    data = _TITLE.sub("", svg).encode("utf-8")
    pdf.image(io.BytesIO(data), x=(pdf.w - width) / 2, w=width)


def _table(
    pdf: FPDF, headers: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]
) -> None:
    pdf.set_font(FAMILY, "", 8)
    with pdf.table(
        col_widths=tuple(widths),
        headings_style=HEADING,
        line_height=4.2,
        text_align="LEFT",
        borders_layout="HORIZONTAL_LINES",
        padding=0.8,
    ) as table:
        table.row(list(headers))
        for cells in rows:
            table.row(list(cells))
    pdf.ln(2)


def _figures(pdf: FPDF, b: Bulletin) -> None:
    figures = text.key_figures(b)
    width = (pdf.w - pdf.l_margin - pdf.r_margin - 4 * (len(figures) - 1)) / len(figures)
    top = pdf.get_y()
    for i, f in enumerate(figures):
        x = pdf.l_margin + i * (width + 4)
        pdf.set_draw_color(213, 217, 224)
        pdf.rect(x, top, width, 30)
        pdf.set_xy(x + 2, top + 1.5)
        pdf.set_font(FAMILY, "B", 9)
        pdf.cell(width - 4, 5, f.label)
        pdf.set_xy(x + 2, top + 6.5)
        pdf.set_font(FAMILY, "B", 16)
        pdf.cell(width - 4, 8, f.value)
        pdf.set_xy(x + 2, top + 15)
        pdf.set_font(FAMILY, "", 7)
        pdf.multi_cell(width - 4, 3.3, f.note, align="L", max_line_height=3.3)
    pdf.set_xy(pdf.l_margin, top + 33)


def _legend(pdf: FPDF, b: Bulletin) -> None:
    pdf.set_font(FAMILY, "", 7.5)
    items = [(colour, label, "") for colour, label in legend(b.map.breaks, text.FMT.rate)]
    items += [
        ("#f9c98b", "imputed (did not report)", "dash"),
        ("#b9bec7", "withheld (below threshold)", "dot"),
        ("#eceef1", "no data", ""),
    ]
    x = pdf.l_margin
    y = pdf.get_y()
    for colour, label, line in items:
        room = pdf.get_string_width(label) + 7
        if x + room > pdf.w - pdf.r_margin:
            x, y = pdf.l_margin, y + 5
        red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        pdf.set_fill_color(red, green, blue)
        pdf.set_draw_color(29, 36, 48)
        pdf.set_dash_pattern(dash=1 if line else 0, gap=1 if line else 0)
        pdf.rect(x, y + 0.8, 3.2, 3.2, style="DF" if line else "F")
        pdf.set_dash_pattern()
        pdf.set_xy(x + 4.2, y)
        pdf.cell(room - 4.2, 4.8, label)
        x += room + 2
    pdf.set_xy(pdf.l_margin, y + 6)


def _key_figures(pdf: FPDF, b: Bulletin) -> None:
    _heading(pdf, "Key figures")
    _figures(pdf, b)
    if b.countries:
        _table(
            pdf, text.COUNTRY_HEADERS, [text.country_cells(c) for c in b.countries], [2, 2, 2, 2, 4]
        )


def _map(pdf: FPDF, b: Bulletin) -> None:
    _heading(pdf, f"Corrected incidence per 100,000, {b.week}")
    width = 150.0
    height = width * b.map.height / b.map.width
    if pdf.get_y() + min(height, 170) + 30 > pdf.h - 16:
        pdf.add_page()
    if height > 170:
        width = 170 * b.map.width / b.map.height
    _svg(pdf, map_svg(b.map, "map", tooltips=False), width)
    _legend(pdf, b)
    _paragraph(pdf, text.MAP_UNIT, 7.5, muted=True)
    _paragraph(pdf, f"{text.DISCLAIMER} {text.boundaries(b)}", 7.5, muted=True)
    _heading(pdf, "Areas with the highest corrected incidence")
    rows = [text.area_cells(r) for r in text.top_areas(b)]
    _table(pdf, text.AREA_HEADERS, rows, [5, 2, 2, 2, 4])


def _curves(pdf: FPDF, b: Bulletin) -> None:
    _heading(pdf, f"Epidemic curves, last {b.curve_weeks} weeks")
    _paragraph(pdf, text.curves_note(b), 8, muted=True)
    for c in b.curves:
        if pdf.get_y() + 75 > pdf.h - 16:
            pdf.add_page()
        pdf.set_font(FAMILY, "B", 9)
        pdf.cell(0, 5, c.country, new_x="LMARGIN", new_y="NEXT")
        _svg(pdf, curve_svg(c.model, c.country, tooltips=False), 170)
        pdf.ln(2)


def _alerts_and_quality(pdf: FPDF, b: Bulletin) -> None:
    _heading(pdf, "Alerts")
    if b.alerts:
        _table(pdf, text.ALERT_HEADERS, [text.alert_cells(a) for a in b.alerts], [5, 2, 3, 3, 3, 4])
    else:
        _paragraph(pdf, text.no_alerts(b))
    _heading(pdf, "Data quality")
    _table(
        pdf,
        text.QUALITY_HEADERS,
        [text.quality_cells(q) for q in b.quality] + [text.quality_cells(b.median)],
        [3, 3, 3, 3],
    )
    _heading(pdf, "Methods and notes")
    for words in text.METHODS:
        _paragraph(pdf, words, 8.5)
    pdf.ln(2)
    _paragraph(pdf, text.generated_by(b), 8, muted=True)


def missing_glyphs(pdf: FPDF) -> dict[str, list[str]]:
    """The characters each font was asked for and does not have (after rendering)."""
    found: dict[str, list[str]] = {}
    for key, font in pdf.fonts.items():
        missing = getattr(font, "missing_glyphs", None)
        if missing:
            found[str(key)] = sorted({chr(c) for c in missing})
    return found


def render_pdf(bulletin: Bulletin, compress: bool = True) -> bytes:
    """The bulletin as PDF bytes (``compress`` False leaves the page streams readable)."""
    return bytes(build_pdf(bulletin, compress).output())


def build_pdf(bulletin: Bulletin, compress: bool = True) -> FPDF:
    """The laid-out document (``output()`` gives its bytes)."""
    b = bulletin
    pdf = _Document(f"{text.title(b)} \u00b7 epibridge {b.version}")
    pdf.set_compression(compress)
    pdf.set_creation_date(b.as_of)
    pdf.set_title(text.title(b))
    pdf.set_subject(text.subtitle(b))
    pdf.set_creator(f"epibridge {b.version}")
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(15, 15, 15)
    _fonts(pdf)
    pdf.add_page()
    pdf.set_font(FAMILY, "B", 17)
    pdf.cell(0, 9, text.title(b), new_x="LMARGIN", new_y="NEXT")
    _paragraph(pdf, text.subtitle(b), 9, muted=True)
    _key_figures(pdf, b)
    _map(pdf, b)
    _curves(pdf, b)
    _alerts_and_quality(pdf, b)
    return pdf
