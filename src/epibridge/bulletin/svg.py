"""The bulletin's map and curves as standalone SVG, drawn the same in HTML and in PDF.

The dashboard's SVG (``web/templates/_map.html``, ``_curve.html``) is styled by the
page's stylesheet and hatches with ``<pattern>`` fills; fpdf2 draws neither CSS classes
nor patterns. So the bulletin draws the same models (``web.choropleth.build_map``,
``web.curve.build_curve``) with presentation attributes only: a colour per class, imputed
areas in their class colour, lighter and with a dashed outline, withheld areas grey with
a dotted outline, provisional bars lighter with a dashed outline. No ``xmlns`` (inline SVG
in HTML needs none, nor does fpdf2), so the files hold no web address at all. Tooltips
(``<title>``) are kept for the HTML only: fpdf2 does not draw them.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from epibridge.web.choropleth import CLASSES, MapModel
from epibridge.web.curve import CurveModel

#: Colours of the dashboard's stylesheet (``web/static/style.css``), classes q0..q4.
CLASS_COLOURS = ("#fdeccd", "#f9c98b", "#f29a52", "#d9602b", "#9e2f12")
NO_VALUE = "#d9dce2"
NO_DATA = "#eceef1"
HIDDEN = "#f7f7f8"
WITHHELD = "#b9bec7"
OUTLINE = "#ffffff"
INK = "#1d2430"
MUTED = "#5b6472"
GRID = "#d5d9e0"
BAR = "#0b5d8a"
PROVISIONAL = "#8db7d1"
FONT = "NotoSans"

assert len(CLASS_COLOURS) == CLASSES


def _attr(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _title(text: str, tooltips: bool) -> str:
    return f"<title>{escape(text)}</title>" if tooltips else ""


def map_style(classes: str) -> str:
    """Presentation attributes of a map path from its dashboard classes."""
    names = set(classes.split())
    if "hidden" in names:
        return f'fill="{HIDDEN}" stroke="{OUTLINE}" stroke-width="0.6"'
    if "nodata" in names:
        return f'fill="{NO_DATA}" stroke="{OUTLINE}" stroke-width="0.6"'
    if "withheld" in names:
        return f'fill="{WITHHELD}" stroke="{INK}" stroke-width="0.8" stroke-dasharray="1 1.5"'
    level = next((n for n in names if n.startswith("q") and n[1:].isdigit()), None)
    colour = CLASS_COLOURS[int(level[1:])] if level else NO_VALUE
    if "imp" in names:
        return (
            f'fill="{colour}" fill-opacity="0.55" stroke="{INK}" stroke-width="0.7" '
            'stroke-dasharray="3 2"'
        )
    return f'fill="{colour}" stroke="{OUTLINE}" stroke-width="0.6"'


def map_svg(model: MapModel, title: str, tooltips: bool = True) -> str:
    """The choropleth: one path per boundary polygon, coloured by its class."""
    width, height = round(model.width), round(model.height)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" class="map">',
        _title(title, tooltips),
    ]
    for p in model.paths:
        parts.append(
            f'<path d="{p.path}" {map_style(p.classes)} data-boundary="{escape(p.code)}">'
            f"{_title(p.title, tooltips)}</path>"
        )
    for label in model.labels:
        parts.append(
            f'<text x="{_attr(label.x)}" y="{_attr(label.y)}" font-family="{FONT}" '
            f'font-size="7" fill="{INK}" text-anchor="middle">{escape(label.text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(breaks: list[float], rate: Callable[[float | None], str]) -> list[tuple[str, str]]:
    """(colour, label) of each class of the map: ``0-b1``, ``b1-b2``, ..., ``> bn``."""
    if not breaks:
        return [(CLASS_COLOURS[0], "all values")]
    out = []
    lower = 0.0
    for i, upper in enumerate(breaks):
        out.append((CLASS_COLOURS[i], f"{rate(lower)}\u2013{rate(upper)}"))
        lower = upper
    out.append((CLASS_COLOURS[len(breaks)], f"> {rate(breaks[-1])}"))
    return out


def curve_svg(model: CurveModel, title: str, tooltips: bool = True) -> str:
    """The epidemic curve: bars, interval whiskers, provisional bars lighter and dashed."""
    width, height = round(model.width), round(model.height)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" class="curve">',
        _title(title, tooltips),
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for y, label in model.ticks:
        parts.append(
            f'<line x1="44" x2="{width}" y1="{_attr(y)}" y2="{_attr(y)}" stroke="{GRID}" '
            'stroke-width="0.8"/>'
            f'<text x="40" y="{_attr(y + 4)}" font-family="{FONT}" font-size="10" '
            f'fill="{MUTED}" text-anchor="end">{escape(label)}</text>'
        )
    for bar in model.bars:
        if bar.withheld:
            style = f'fill="{WITHHELD}"'
        elif bar.provisional:
            style = (
                f'fill="{PROVISIONAL}" stroke="{BAR}" stroke-width="0.8" stroke-dasharray="2 1.5"'
            )
        else:
            style = f'fill="{BAR}"'
        note = (" \u00b7 provisional" if bar.provisional else "") + (
            " \u00b7 withheld" if bar.withheld else ""
        )
        parts.append(
            f'<rect x="{_attr(bar.x)}" y="{_attr(bar.y)}" width="{_attr(bar.w)}" '
            f'height="{_attr(bar.h)}" {style}>{_title(bar.title + note, tooltips)}</rect>'
        )
        if bar.whisker is not None:
            middle = _attr(bar.x + bar.w / 2)
            parts.append(
                f'<line x1="{middle}" x2="{middle}" y1="{_attr(bar.whisker[0])}" '
                f'y2="{_attr(bar.whisker[1])}" stroke="{INK}" stroke-width="1"/>'
            )
    for x, label in model.labels:
        parts.append(
            f'<text x="{_attr(x)}" y="{height - 8}" font-family="{FONT}" font-size="10" '
            f'fill="{MUTED}" text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
