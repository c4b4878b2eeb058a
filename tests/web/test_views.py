"""What the pages draw: the map's paths and disclaimer, the curve's provisional weeks,
languages, and the bounded queries behind them."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pyarrow as pa
from fastapi.testclient import TestClient

from epibridge.hub.burden import BURDEN
from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import counts_as_of
from epibridge.web.choropleth import breaks_of, build_map, holder_of
from epibridge.web.geo import boundary_codes
from epibridge.web.i18n import Formatter, gettext_of, negotiate
from tests.hub.test_intake import NOW, Hub
from tests.web.conftest import REPORTING, WEEKS, WITHHELD, log_in


def _paths(html: str) -> list[str]:
    return re.findall(r"<path [^>]*>", html)


def test_the_map_has_one_path_per_boundary_unit_with_data(
    client: TestClient, tokens: dict[str, str]
) -> None:
    log_in(client, "khm_manager", tokens["khm_manager"])
    html = client.get("/map?measure=corrected").text
    with_data = re.findall(r'data-area="([^"]+)"', html)
    khm_polygons = {c for c in boundary_codes() if c.startswith("KH-")}
    # Every Cambodian province with a polygon has data (reported, withheld or imputed),
    # each exactly once; KH-25 has no polygon and is in the table only.
    assert sorted(with_data) == sorted(khm_polygons)
    assert "KH-25" not in khm_polygons and 'data-area="KH-25"' not in html
    assert "Tbong Khmum" in html and "not in the boundary file" in html
    classes = {re.search(r'class="([^"]+)"', p).group(1) for p in _paths(html)}  # type: ignore[union-attr]
    assert "withheld" in classes and any(c.startswith("imp ") for c in classes)
    withheld = next(p for p in _paths(html) if f'data-area="{WITHHELD}"' in p)
    assert 'class="withheld"' in withheld
    assert "boundaries and names shown do not imply official endorsement or acceptance" in html
    assert "Natural Earth" in html
    # Corrected values carry their 95% interval in the tooltip.
    titles = re.findall(r"<title>([^<]+)</title>", html)
    assert any(re.search(r"per 100,000 \(\d[\d.,]*\u2013\d[\d.,]*\)", t) for t in titles)
    # The table sorts on the server.
    ascending = client.get("/map?sort=cases&order=asc").text
    cases = [
        int(c.replace(",", ""))
        for c in re.findall(
            r'<td class="num">([\d,]+)</td>\s*<td class="num">[\d,]+</td>', ascending
        )
    ]
    assert cases == sorted(cases) and len(cases) >= 10


def test_the_curve_marks_provisional_weeks(client: TestClient, tokens: dict[str, str]) -> None:
    log_in(client, "khm_epi", tokens["khm_epi"])
    html = client.get("/curves?disease=DENGUE&country=KHM").text
    bars = re.findall(r'<rect [^>]*class="bar[^"]*"', html)
    assert len(bars) == len(WEEKS)
    # The rule: a week that ended less than 28 days before now (2026-01-07).
    late = [w for w in WEEKS if w + timedelta(days=6) > date(2025, 12, 10)]
    assert len(late) == 5
    assert sum("provisional" in b for b in bars) == len(late)
    assert all("provisional" in b for b in bars[-len(late) :])
    assert "provisional: the period ended less than 28 days ago" in html
    corrected = client.get("/curves?disease=DENGUE&country=KHM&measure=corrected").text
    assert len(re.findall(r'class="whisker"', corrected)) == len(WEEKS)


def test_languages(client: TestClient, tokens: dict[str, str]) -> None:
    log_in(client, "khm_epi", tokens["khm_epi"])
    for lang, script in (("km", r"[\u1780-\u17FF]"), ("vi", r"[ạ-ỹăđơư]")):
        translated = gettext_of(lang)("Incidence map")
        assert translated != "Incidence map" and re.search(script, translated)
        html = client.get(f"/map?lang={lang}").text
        assert f'<html lang="{lang}">' in html and translated in html
        # The choice is remembered.
        assert f'<html lang="{lang}">' in client.get("/log").text
    client.cookies.delete("epibridge_lang")
    html = client.get("/log", headers={"Accept-Language": "km-KH,km;q=0.9,en;q=0.5"}).text
    assert '<html lang="km">' in html
    assert negotiate(None, None, "fr, vi;q=0.4, km;q=0.3") == "vi"
    assert negotiate("xx", None, "de") == "en"
    # Local-script names beside English ones.
    page = client.get("/map?lang=en").text
    assert 'Banteay Meanchey</a> <span class="local">បន្ទាយមានជ័យ</span>' in page


def test_numbers_follow_the_language() -> None:
    assert Formatter("en").number(12345.5, 1) == "12,345.5"
    assert Formatter("vi").number(12345.5, 1) == "12.345,5"
    assert Formatter("en").rate(0) == "0" and Formatter("en").rate(3.14159) == "3.14"


def test_vietnam_polygons_take_the_unit_holding_them() -> None:
    before, after = date(2025, 6, 2), date(2025, 7, 7)
    assert holder_of("VN-01", before) == "VN-01"
    assert holder_of("VN-01", after) == "VN-N12"
    row: dict[str, object] = {name: None for name in BURDEN.names}
    row.update(
        country="VNM",
        area="VN-N12",
        area_level=1,
        disease="DENGUE",
        period="2025-W28",
        period_start=after,
        status="reported",
        cases=40,
        population=500_000,
        incidence_per_100k=8.0,
        incidence_low=5.7,
        incidence_high=10.9,
    )
    table = pa.Table.from_pylist([row], BURDEN)
    model = build_map(table, "reported", after, ["VNM"], None, str, Formatter("en"))
    held = [p for p in model.paths if p.has_data]
    assert {p.code for p in held} == {"VN-01"} and held[0].holder == "VN-N12"
    assert "8.00 per 100,000 (5.70\u201310.9)" in held[0].title
    old = build_map(table, "reported", before, ["VNM"], None, str, Formatter("en"))
    assert not any(p.has_data for p in old.paths)


def test_breaks_are_rounded_quantiles() -> None:
    assert breaks_of([]) == []
    assert breaks_of([0.0, 0.0]) == []
    assert breaks_of([1.234, 2.0, 3.0, 40.0, 55.5, 123.0]) == [2.0, 3.0, 40.0, 56.0]


def test_period_filters_read_only_the_weeks_asked(hub: Hub, tokens: dict[str, str]) -> None:
    engine = hub.context.store.engine
    at = NOW + timedelta(hours=1)
    one = counts_as_of(engine, at, Filters(period_from=WEEKS[-1], period_to=WEEKS[-1]))
    assert set(one.column("period_start").to_pylist()) == {WEEKS[-1]}
    assert one.num_rows == len(REPORTING)
    window = counts_as_of(engine, at, Filters(countries=["KHM"], period_from=WEEKS[-3]))
    assert window.num_rows == 3 * len(REPORTING)
    assert counts_as_of(engine, at, Filters(period_to=WEEKS[0])).num_rows == len(REPORTING)
