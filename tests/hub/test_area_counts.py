"""Whole counts per area and period, and series kept across boundary changes."""

from __future__ import annotations

from datetime import date

from epibridge.hub.area_counts import area_counts, on_current_units
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
