"""Whole counts per area and period, and series kept across boundary changes."""

from __future__ import annotations

from datetime import date

from epibridge.hub.area_counts import area_counts, on_current_units, whole_cases
from tests.hub.payloads import as_of_cell


def _vnm(area: str, cases: int | None, week: int) -> dict[str, object]:
    return as_of_cell(area, cases, week=week, country="VNM")


def test_merged_provinces_count_for_their_successor() -> None:
    # Tay Ninh (VN-37) and Long An (VN-41) became VN-N80 on 2025-07-01
    before, after = -40, 0  # weeks from 2026-01-05: 2025-03-31 and 2026-01-05
    counts = area_counts(
        [
            _vnm("VN-37", 5, before),
            _vnm("VN-41", 7, before),
            _vnm("VN-N80", 20, after),
            _vnm("VN-44", 3, before),  # An Giang, merged with Kien Giang into VN-N91
        ]
    )
    current = on_current_units(counts, date(2026, 1, 5))
    got = {(c.area, c.period_start.isoformat()): c.cases for c in current}
    assert got[("VN-N80", "2025-03-31")] == 12
    assert got[("VN-N80", "2026-01-05")] == 20
    assert ("VN-37", "2025-03-31") not in got
    assert len(current) == 3


def test_a_withheld_part_makes_the_merged_count_unknown() -> None:
    counts = area_counts([_vnm("VN-37", 5, -40), _vnm("VN-41", None, -40)])
    (merged,) = on_current_units(counts, date(2026, 1, 5))
    assert merged.area == "VN-N80" and merged.cases is None and merged.cases_known == 5


def test_units_still_valid_and_unknown_areas_stay() -> None:
    counts = area_counts([as_of_cell("KH-1", 4), as_of_cell("ZZ-99", 2)])
    assert [(c.area, c.cases) for c in on_current_units(counts, date(2026, 1, 5))] == [
        ("KH-1", 4),
        ("ZZ-99", 2),
    ]


def test_whole_cases_count_totals_strata_and_levels_once() -> None:
    cells = [
        # KH-1 week 0: a total and its split by sex; the total is the count
        as_of_cell("KH-1", 10, week=0),
        as_of_cell("KH-1", 6, week=0, sex="M"),
        as_of_cell("KH-1", 4, week=0, sex="F"),
        # KH-2 week 0: only strata, so their sum
        as_of_cell("KH-2", 3, week=0, sex="M"),
        as_of_cell("KH-2", 2, week=0, sex="F"),
        # week 1: the province and one of its districts; the coarser level counts
        as_of_cell("KH-1", 7, week=1),
        {**as_of_cell("KH-102", 5, week=1), "area_level": 2},
        # a withheld cell adds nothing known
        as_of_cell("KH-3", None, week=1),
    ]
    assert whole_cases(area_counts(cells)) == {("KHM", "DENGUE", "week"): 10 + 5 + 7}
