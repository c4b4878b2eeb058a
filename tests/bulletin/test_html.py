"""The HTML bulletin: one self-contained file, nothing fetched from anywhere."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from epibridge.bulletin.content import Bulletin
from epibridge.bulletin.html import render_html
from epibridge.bulletin.text import DISCLAIMER


class _Collect(HTMLParser):
    """Every attribute value and the text of each table row."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[tuple[str, str, str]] = []
        self.rows: dict[str, list[str]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
        if tag == "table":
            self._table = dict(attrs).get("class") or ""
        elif tag == "tr" and self._table is not None:
            self._row = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None and self._table is not None:
            self.rows.setdefault(self._table, []).append(" ".join(self._row))
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and data.strip():
            self._row.append(data.strip())


def test_html_is_self_contained_and_complete(bulletin: Bulletin) -> None:
    page = render_html(bulletin).decode("utf-8")
    assert not re.search(r"https?:", page, re.IGNORECASE)  # no web address at all
    found = _Collect()
    found.feed(page)
    for tag, name, value in found.attributes:
        if name in ("src", "href"):
            raise AssertionError(f"<{tag} {name}={value!r}> loads something")
    assert "<script" not in page and "<link" not in page
    # fonts inline: Latin always, Khmer because Khmer place names are in the table
    faces = re.findall(r"src:url\(data:font/woff;base64,[A-Za-z0-9+/=]+\)", page)
    assert len(faces) == 3
    assert "រាជធានីភ្នំពេញ" in page  # Phnom Penh in Khmer script
    # the map: a path per boundary, the week's classes; curves with provisional bars
    assert page.count('data-boundary="') == len(bulletin.map.paths)
    assert '<svg viewBox="0 0 ' in page and 'class="map"' in page
    assert page.count('class="curve"') == 1
    assert 'stroke-dasharray="2 1.5"' in page  # provisional bars
    assert DISCLAIMER in page and bulletin.boundary_source in page
    # the tables
    [alert_row] = found.rows["alerts"][1:]
    assert "cross-border" in alert_row and "verified" in alert_row
    assert "KHM by Dr Sok Dara" in alert_row and "LAO not yet" in alert_row
    quality = found.rows["quality"]
    assert quality[1].startswith("KHM ") and quality[-1].startswith("regional median ")
    assert "2026-W02" in page and "Test hub" in page and "epibridge 0.1.0" in page


def test_same_bulletin_same_bytes(bulletin: Bulletin) -> None:
    assert render_html(bulletin) == render_html(bulletin)
