"""The PDF bulletin: a valid A4 file, its words, and place names in their own scripts."""

from __future__ import annotations

import io
import logging
import re
from importlib import resources

import pytest
import uharfbuzz as hb  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from epibridge.bulletin.content import Bulletin
from epibridge.bulletin.pdf import FONTS, build_pdf, missing_glyphs, render_pdf
from epibridge.bulletin.text import DISCLAIMER
from epibridge.registry.geography import units
from tests.bulletin.pdftext import objects, page_count, text


def test_pdf_is_valid_and_says_what_the_bulletin_says(
    bulletin: Bulletin, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="fpdf"):
        document = build_pdf(bulletin, compress=False)
        data = bytes(document.output())
    assert [r.getMessage() for r in caplog.records] == []  # no unsupported SVG, no missing glyph
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert b"trailer" in data and b"startxref" in data
    assert 2 <= page_count(data) <= 6
    mediabox = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data)
    assert mediabox is not None  # A4: 595.28 x 841.89 points
    assert round(float(mediabox.group(1))) == 595 and round(float(mediabox.group(2))) == 842
    words = text(data)
    assert "DENGUE weekly bulletin, 2026-W02" in words
    assert "Test hub" in words and "2026-01-07 14:00 UTC" in words
    assert "Mondulkiri មណ្ឌលគិរី" in words  # Khmer decoded through the font's ToUnicode map
    assert "DENGUE-2026-W01-" in words and "KHM by Dr Sok Dara" in words
    assert "regional median" in words
    assert " ".join(words.split()).count(" ".join(DISCLAIMER.split()[:6])) == 1
    assert "epibridge 0.1.0" in words
    assert missing_glyphs(document) == {}
    # the map and the curve are vector drawings, not images
    assert not any(b"/Subtype /Image" in body for body in objects(data).values())


def test_same_bulletin_same_bytes(bulletin: Bulletin) -> None:
    assert render_pdf(bulletin) == render_pdf(bulletin)


def _shaper(name: str) -> hb.Font:
    font = TTFont(
        io.BytesIO(resources.files("epibridge.web").joinpath("static", "fonts", name).read_bytes())
    )
    font.flavor = None
    out = io.BytesIO()
    font.save(out)
    return hb.Font(hb.Face(hb.Blob(out.getvalue())))


def test_every_local_place_name_shapes_without_missing_glyphs() -> None:
    """Each registry name in Khmer, Lao or Thai script, shaped with the font that serves it."""
    by_country = {"KHM": "NotoSansKhmer", "LAO": "NotoSansLao", "THA": "NotoSansThai"}
    files = {family: name for family, _, name in FONTS}
    checked = 0
    for country, family in by_country.items():
        font = _shaper(files[family])
        for unit in units(country):
            local = unit.name_local.strip()
            if not local:
                continue
            buffer = hb.Buffer()
            buffer.add_str(local)
            buffer.guess_segment_properties()
            hb.shape(font, buffer, {})
            glyphs = [i.codepoint for i in buffer.glyph_infos]
            assert glyphs and 0 not in glyphs, f"{unit.code} {local}: a glyph is missing"
            checked += 1
    assert checked > 100
