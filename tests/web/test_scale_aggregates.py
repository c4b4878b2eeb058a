"""What the dashboard computes differently at regional scale gives the same answers.

* ``regional.cells_for_burden`` (narrow rows) are ``counts_as_of``'s and give the same
  burden table;
* ``regional.period_totals`` (sums in SQL) equals the burden table's ``total`` rows and
  the overview's sum over the total cells (as does ``regional.total_cell_sums``), on
  cells with totals, sex strata only, both, withheld cells and a revision (on SQLite
  and PostgreSQL);
* a country's reported curve from SQL equals the one from the burden table;
* the map's table is paginated and every area is on exactly one page;
* the scorecards' period rows summed in SQL are the ones Python sums from
  ``counts_as_of`` and ``counts_received``; cached scorecards equal freshly computed
  ones and follow a new submission.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from epibridge.hub import quality
from epibridge.hub.burden import burden
from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import (
    BURDEN_CELLS,
    cells_for_burden,
    counts_as_of,
    period_totals,
    total_cell_sums,
)
from epibridge.model.schema import RELEASE_COUNTS
from epibridge.web import choropleth
from epibridge.web.choropleth import AreaRow, page_of
from epibridge.web.pages_curves import _burden_points, country_points
from tests.hub import test_intake
from tests.hub.payloads import week_cell
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_quality_sql import assert_sql_rows_equal_the_reference
from tests.hub.test_regional import _send
from tests.web.conftest import log_in

world = test_intake.world
hub = test_intake.hub
url = test_intake.url  # SQLite and PostgreSQL

WEEKS = [date(2025, 12, 1) + timedelta(weeks=n) for n in range(6)]


def _mixed(seed: int) -> pa.Table:
    """Totals, sex strata alone, totals with strata, and withheld cells, over six weeks."""
    rng = random.Random(seed)
    rows = []
    for start in WEEKS:
        for n in range(1, 9):
            area = f"KH-{n}"
            withheld = rng.random() < 0.15
            if n <= 4:  # a total cell
                rows.append(week_cell(area, start, None if withheld else rng.randrange(0, 40)))
            if n >= 3:  # sex strata (areas 3 and 4 send both: the total wins)
                for sex in ("F", "M"):
                    hide = withheld and sex == "F"
                    rows.append(
                        week_cell(area, start, None if hide else rng.randrange(0, 20), sex=sex)
                    )
    return pa.Table.from_pylist(rows, schema=RELEASE_COUNTS)


@pytest.fixture
def mixed(hub: Hub, tmp_path: Path) -> Hub:
    _send(hub, tmp_path, "eeeeeeee-0000-4000-8000-000000000001", _mixed(1), at_hours=0)
    revised = _mixed(2).slice(0, 40)  # a revision replaces the first submission entirely
    _send(
        hub,
        tmp_path,
        "eeeeeeee-0000-4000-8000-000000000002",
        revised,
        at_hours=1,
        revision_of="eeeeeeee-0000-4000-8000-000000000001",
    )
    _send(hub, tmp_path, "eeeeeeee-0000-4000-8000-000000000003", _mixed(3), at_hours=2)
    return hub


@pytest.mark.parametrize("hours", [0.5, 1.5, 3])
def test_period_totals_equal_the_burden_total_rows(mixed: Hub, hours: float) -> None:
    engine = mixed.context.store.engine
    at = NOW + timedelta(hours=hours)
    cells = counts_as_of(engine, at)
    expected = {
        (r["period"], r["period_start"], r["period_end"]): (r["cases"], r["areas_withheld"])
        for r in burden(cells, {}).to_pylist()
        if r["status"] == "total"
    }
    summed = period_totals(engine, at)
    got = {
        (r["period"], r["period_start"], r["period_end"]): (r["cases"], r["areas_withheld"])
        for r in summed.to_pylist()
    }
    assert got == expected
    assert len(expected) >= 3
    assert sum(w for _, w in got.values()) > 0  # withheld areas were exercised
    # the overview's sum: the total cells with a number
    overview: dict[str, float] = defaultdict(float)
    numbered: dict[str, int] = defaultdict(int)
    for r in cells.to_pylist():
        if r["sex"] is None and r["age_band"] is None and r["cases"] is not None:
            overview[r["period"]] += r["cases"]
            numbered[r["period"]] += 1
    for r in summed.to_pylist():
        assert r["total_cells"] == numbered[r["period"]]
        assert r["total_cells_cases"] == overview[r["period"]]
    sums = total_cell_sums(engine, at).to_pylist()
    assert {r["period"]: r["total_cells_cases"] for r in sums} == overview
    assert {r["period"]: r["total_cells"] for r in sums} == numbered
    assert [r["period_start"] for r in sums] == sorted(r["period_start"] for r in sums)


@pytest.mark.parametrize("hours", [0.5, 1.5, 3])
def test_narrow_cells_are_the_as_of_cells_and_give_the_same_burden(
    mixed: Hub, hours: float
) -> None:
    engine = mixed.context.store.engine
    at = NOW + timedelta(hours=hours)
    window = Filters(countries=["KHM"], diseases=["DENGUE"], period_from=WEEKS[1])
    wide = counts_as_of(engine, at, window)
    narrow = cells_for_burden(engine, at, window)
    assert narrow.num_rows == wide.num_rows > 0
    assert narrow.equals(wide.select(list(BURDEN_CELLS)))
    assert burden(narrow, {}).equals(burden(wide, {}))
    assert cells_for_burden(engine, NOW - timedelta(hours=1)).num_rows == 0


def test_period_totals_keep_the_filters(mixed: Hub) -> None:
    engine = mixed.context.store.engine
    at = NOW + timedelta(hours=3)
    window = Filters(
        countries=["KHM"], diseases=["DENGUE"], period_from=WEEKS[2], period_to=WEEKS[3]
    )
    assert [r["period_start"] for r in period_totals(engine, at, window).to_pylist()] == WEEKS[2:4]
    assert period_totals(engine, at, Filters(countries=["LAO"])).num_rows == 0
    assert period_totals(engine, NOW - timedelta(hours=1)).num_rows == 0


def test_country_curve_from_sql_equals_the_burden_curve(mixed: Hub, tmp_path: Path) -> None:
    context = replace(mixed.context, folder=tmp_path)
    at = NOW + timedelta(hours=3)
    from_sql = country_points(context, at, "KHM", "DENGUE", WEEKS[1], WEEKS[-1])
    from_burden = _burden_points(
        context, at, "KHM", "DENGUE", WEEKS[1], WEEKS[-1], None, "reported"
    )
    assert from_sql == from_burden
    assert len(from_sql[0]) == len(WEEKS) - 1 and from_sql[1] == "week"


def _row(n: int) -> AreaRow:
    return AreaRow(
        f"X-{n}",
        "KHM",
        f"area {n:03d}",
        None,
        "reported",
        "2026-W02",
        n,
        None,
        None,
        None,
        None,
        False,
    )


def test_pages_cover_every_row_once() -> None:
    rows = [_row(n) for n in range(23)]
    pages = [page_of(rows, n, size=10) for n in (1, 2, 3)]
    assert [p.pages for p in pages] == [3, 3, 3]
    assert [r for p in pages for r in p.rows] == rows
    assert (pages[2].first, pages[2].last, pages[2].total) == (21, 23, 23)
    assert page_of(rows, 99, size=10).number == 3  # out of range: the nearest page
    assert page_of(rows, -1, size=10).number == 1
    empty = page_of([], 1)
    assert (empty.pages, empty.first, empty.last, empty.rows) == (1, 0, 0, [])


def test_map_table_pages_in_the_browser_html(
    client: TestClient, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(choropleth, "PAGE_ROWS", 5)
    log_in(client, "analyst", tokens["analyst"])
    seen: list[str] = []
    first = client.get("/map?sort=area&order=asc").text
    assert 'rel="next"' in first and 'rel="prev"' not in first
    for number in range(1, 6):
        html = client.get(f"/map?sort=area&order=asc&page={number}").text
        seen += [line for line in html.splitlines() if line.startswith('<th scope="row">')]
    last = client.get("/map?sort=area&order=asc&page=5").text
    assert 'rel="prev"' in last and 'rel="next"' not in last
    everything = client.get("/map?sort=area&order=asc&page=1")
    assert everything.status_code == 200
    assert len(seen) == len(set(seen)) == 25  # every KHM province once (reported or imputed)


@pytest.mark.parametrize("hours", [0.5, 1.5, 3])
def test_quality_sums_in_sql_give_the_same_period_rows(mixed: Hub, hours: float) -> None:
    engine = mixed.context.store.engine
    rows = assert_sql_rows_equal_the_reference(engine, NOW + timedelta(hours=hours))
    assert len(rows) >= 3


def test_cached_scorecards_equal_fresh_ones_and_follow_new_data(hub: Hub, tmp_path: Path) -> None:
    engine = hub.context.store.engine
    _send(hub, tmp_path, "eeeeeeee-0000-4000-8000-000000000011", _mixed(1), at_hours=0)
    at = NOW + timedelta(hours=1)
    first = quality.scorecards(engine, at)
    again = quality.scorecards(engine, at + timedelta(minutes=5))  # same data: from the cache
    fresh = quality._compute(engine, at, (), quality.Thresholds())
    for cards in (first, again):
        assert cards.countries == fresh.countries
        assert cards.regional_median == fresh.regional_median
        assert cards.periods.equals(fresh.periods)
    assert again.as_of == at + timedelta(minutes=5)
    again.countries["KHM"].quarantined_by_rule["changed"] = 1  # a caller's copy only
    assert "changed" not in quality.scorecards(engine, at).countries["KHM"].quarantined_by_rule
    later = _mixed(4).slice(0, 10)
    _send(hub, tmp_path, "eeeeeeee-0000-4000-8000-000000000012", later, at_hours=2)
    after = quality.scorecards(engine, NOW + timedelta(hours=3))
    assert (
        after.countries
        == quality._compute(engine, NOW + timedelta(hours=3), (), quality.Thresholds()).countries
    )
    assert after.countries["KHM"].repeated_cells > first.countries["KHM"].repeated_cells
    # a moment before the new submission still sees the old state
    assert quality.scorecards(engine, at).countries == first.countries
