"""The bulletin as one self-contained HTML file: it opens from a USB stick, offline.

Everything is inside the file: the stylesheet inline, the map and curves as inline SVG
(``svg.py``), the fonts as ``data:`` URIs (the dashboard's WOFF subsets of Noto Sans,
Khmer, Lao and Thai, ``web/static/fonts``; a script's font only when the bulletin has
text in it). The file names no web address at all, so a browser fetches nothing.
"""

from __future__ import annotations

import base64
import functools
import re
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape

from . import text
from .content import Bulletin
from .svg import curve_svg, legend, map_svg

#: (font file, CSS family weight, the characters it serves) of the embedded fonts.
FONTS = (
    ("NotoSans-Regular.woff", 400, None),
    ("NotoSans-Bold.woff", 700, None),
    ("NotoSansKhmer-Regular.woff", 400, re.compile("[\u1780-\u17ff\u19e0-\u19ff]")),
    ("NotoSansLao-Regular.woff", 400, re.compile("[\u0e80-\u0eff]")),
    ("NotoSansThai-Regular.woff", 400, re.compile("[\u0e00-\u0e7f]")),
)


@functools.cache
def _font(name: str) -> bytes:
    return resources.files("epibridge.web").joinpath("static", "fonts", name).read_bytes()


def font_faces(body: str) -> str:
    """``@font-face`` rules with the fonts ``body`` needs, each as a data: URI."""
    rules = []
    for name, weight, needed in FONTS:
        if needed is not None and needed.search(body) is None:
            continue
        data = base64.b64encode(_font(name)).decode("ascii")
        rules.append(
            "@font-face{font-family:'Bulletin Sans';font-style:normal;"
            f"font-weight:{weight};src:url(data:font/woff;base64,{data}) format('woff')}}"
        )
    return "\n".join(rules)


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("epibridge.bulletin", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(bulletin: Bulletin) -> bytes:
    """The bulletin as UTF-8 HTML."""
    template = _environment().get_template("bulletin.html")
    context = {
        "b": bulletin,
        "t": text,
        "fmt": text.FMT,
        "map_svg": map_svg(bulletin.map, "Corrected incidence per 100,000 by area"),
        "legend": legend(bulletin.map.breaks, text.FMT.rate),
        "curves": [
            (c, curve_svg(c.model, f"{c.country}: cases reported per period"))
            for c in bulletin.curves
        ],
    }
    body = template.render(fonts="", **context)
    return template.render(fonts=font_faces(body), **context).encode("utf-8")
