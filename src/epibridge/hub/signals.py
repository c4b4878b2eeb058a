"""Cross-border space-time clusters in what the hub holds.

The regional weekly counts of one disease (``regional.counts_as_of``: every country's
released cells, whichever border they lie on) become an area x week matrix over the
registry's units that have coordinates. Candidate zones are SaTScan's circles around
every centroid, kept only when their areas are connected through shared borders
(``registry.geography.adjacency``, cross-border pairs included), and Kulldorff's
prospective space-time permutation scan (``algorithms/scan.py``) looks for the most
likely clusters in the last weeks. A cluster whose areas belong to two or more countries
is a cross-border signal. The scan's Monte Carlo replicates run here or on Spark
(``engines.block_map``), with the same result.

Cells withheld by disclosure control (1 to k-1 cases) count as 0: the scan can only miss
a small cluster because of them, never invent one. Areas without coordinates in the
registry are left out and listed; a retired area's weeks count for the unit that holds it
on the last week (the registry's crosswalk).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from epibridge.algorithms.scan import (
    MIN_REPLICATES,
    BlockMap,
    ScanAreas,
    ScanResult,
    Zones,
    candidate_zones,
    connected_zones,
    space_time_permutation_scan,
)
from epibridge.hub.area_counts import area_counts, on_current_units
from epibridge.model.errors import EpibridgeError
from epibridge.registry.geography import adjacency, units


class SignalError(EpibridgeError):
    """Nothing to scan (no weekly counts of the disease, no located areas)."""


@dataclass(frozen=True)
class RegionalScan:
    result: ScanResult
    areas: ScanAreas
    weeks: tuple[date, ...]  # the first day of each scanned week
    skipped_areas: tuple[str, ...]  # areas with counts but no coordinates
    suppressed_cells: int


@dataclass(frozen=True)
class ScanGrid:
    """What the scan reads: the area x week matrix of one disease and its zones."""

    disease: str
    matrix: np.ndarray
    areas: ScanAreas
    zones: Zones
    weeks: tuple[date, ...]  # the first day of each scanned week
    skipped_areas: tuple[str, ...]  # areas with counts but no coordinates
    suppressed_cells: int


def scan_grid(
    cells: pa.Table, disease: str, *, weeks: int = 26, max_share: float = 0.25
) -> ScanGrid:
    """The last ``weeks`` weeks of ``disease`` in ``cells`` as a scan's grid; raises
    :class:`SignalError` when there is nothing to scan (before any replicate runs, and
    before a Spark session is worth starting)."""
    weekly = [c for c in area_counts(cells) if c.disease == disease and c.period_type == "week"]
    if not weekly:
        raise SignalError(f"the hub holds no weekly counts of {disease} to scan")
    weekly = on_current_units(weekly, max(c.period_start for c in weekly))
    counts = {(c.area, c.period_start): float(c.cases_known) for c in weekly}
    suppressed = sum(
        1
        for r in cells.to_pylist()
        if r["disease"] == disease and r["period_type"] == "week" and r["cases_suppressed"]
    )
    last = max(start for _, start in counts)
    first = last - timedelta(weeks=weeks - 1)
    week_starts = tuple(first + timedelta(weeks=i) for i in range(weeks))
    located = {u.code: u for u in units() if u.lon is not None and u.lat is not None}
    areas_seen = sorted({area for area, _ in counts})
    skipped = tuple(a for a in areas_seen if a not in located)
    codes = [a for a in areas_seen if a in located]
    if len(codes) < 2:
        raise SignalError(
            f"fewer than two areas with {disease} counts have coordinates in the registry"
        )
    areas = ScanAreas.from_units([located[c] for c in codes])
    column = {start: j for j, start in enumerate(week_starts)}
    row = {code: i for i, code in enumerate(areas.codes)}
    matrix = np.zeros((len(areas.codes), weeks))
    for (area, start), cases in counts.items():
        if area in row and start in column:
            matrix[row[area], column[start]] = cases
    if matrix.sum() <= 0:
        raise SignalError(f"no {disease} cases in the last {weeks} weeks to scan")
    edges = [(a.code_a, a.code_b) for a in adjacency()]
    zones = connected_zones(candidate_zones(areas, max_share), areas, edges)
    return ScanGrid(disease, matrix, areas, zones, week_starts, skipped, suppressed)


def scan_of(
    grid: ScanGrid,
    rng: np.random.Generator,
    *,
    max_weeks: int | None = 4,
    replicates: int = MIN_REPLICATES,
    map_blocks: BlockMap | None = None,
) -> RegionalScan:
    """Kulldorff's prospective permutation scan of ``grid``; ``map_blocks`` runs its
    Monte Carlo blocks (``engines.block_map``), with the same result anywhere."""
    result = space_time_permutation_scan(
        grid.matrix,
        grid.areas,
        rng,
        max_weeks=max_weeks,
        replicates=replicates,
        zones=grid.zones,
        map_blocks=map_blocks,
    )
    return RegionalScan(result, grid.areas, grid.weeks, grid.skipped_areas, grid.suppressed_cells)


def regional_scan(
    cells: pa.Table,
    disease: str,
    rng: np.random.Generator,
    *,
    weeks: int = 26,
    max_weeks: int | None = 4,
    max_share: float = 0.25,
    replicates: int = MIN_REPLICATES,
    map_blocks: BlockMap | None = None,
) -> RegionalScan:
    """Scan the last ``weeks`` weeks of ``disease`` in ``cells`` for space-time clusters
    (:func:`scan_grid`, then :func:`scan_of`)."""
    grid = scan_grid(cells, disease, weeks=weeks, max_share=max_share)
    return scan_of(grid, rng, max_weeks=max_weeks, replicates=replicates, map_blocks=map_blocks)
