"""Cross-border clusters in the regional counts: a planted cluster on a real border pair
is found and flagged; zones follow shared borders."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from epibridge.algorithms.scan import ScanAreas, candidate_zones, connected_zones
from epibridge.hub.regional import COUNTS_AS_OF
from epibridge.hub.signals import SignalError, regional_scan
from epibridge.registry.geography import adjacency, units
from tests.hub.payloads import as_of_cell

START = date(2026, 1, 5)


def _cell(area: str, week: int, cases: int | None, country: str) -> dict[str, Any]:
    return as_of_cell(area, cases, week=week, country=country)


def _border_region() -> tuple[list[str], dict[str, str], tuple[str, str]]:
    """KHM and THA provinces with coordinates, and one cross-border adjacent pair."""
    located = {u.code: u for u in units() if u.lon is not None and u.level == 1}
    pair = next(
        (a.code_a, a.code_b)
        for a in adjacency(cross_border_only=True)
        if {a.country_a, a.country_b} == {"KHM", "THA"}
        and a.code_a in located
        and a.code_b in located
    )
    codes = [c for c, u in located.items() if u.country in ("KHM", "THA")]
    return codes, {c: located[c].country for c in codes}, pair


def test_a_planted_cross_border_cluster_is_found() -> None:
    codes, country, pair = _border_region()
    rng = np.random.default_rng(7)
    rows = []
    for code in codes:
        for week in range(20):
            cases = int(rng.poisson(4))
            if code in pair and week >= 18:
                cases += 30
            rows.append(_cell(code, week, cases, country[code]))
    rows.append(_cell(codes[0], 19, None, country[codes[0]]))  # a withheld cell
    scan = regional_scan(
        pa.Table.from_pylist(rows, COUNTS_AS_OF), "DENGUE", np.random.default_rng(1), weeks=20
    )
    top = scan.result.most_likely
    assert top is not None
    assert set(pair) <= set(top.areas) and top.cross_border
    assert top.p_value <= 0.01 and top.end == 19
    assert scan.skipped_areas == () and scan.suppressed_cells == 1


def test_zones_follow_shared_borders() -> None:
    codes, _, _ = _border_region()
    located = {u.code: u for u in units()}
    areas = ScanAreas.from_units([located[c] for c in codes])
    circles = candidate_zones(areas, 0.2)
    edges = [(a.code_a, a.code_b) for a in adjacency()]
    joined = connected_zones(circles, areas, edges)
    assert 0 < len(joined.members) < len(circles.members)
    assert (joined.members.sum(axis=1) == 1).sum() == len(codes)  # single areas all kept


def test_nothing_to_scan_is_a_clear_error() -> None:
    with pytest.raises(SignalError, match="no weekly counts of CHOLERA"):
        regional_scan(COUNTS_AS_OF.empty_table(), "CHOLERA", np.random.default_rng(1))
