"""The prospective space-time scans, checked against brute force and planted clusters.

1. Brute force: on a 4 x 4 grid over 6 weeks, every circle and every prospective
   cylinder is enumerated in plain Python (its own haversine, sets and loops); the
   vectorised scans must find the same zones, the same LLR for every cylinder, and the
   same most likely cylinder.
2. The LLR for high rates against values worked out by hand.
3. A cluster planted across the border of two "countries" is found, significant, and
   flagged cross-border; one planted on real registry units (Cambodia and Thailand) too.
4. Under the null, p-values are roughly uniform (loose check over a few hundred runs).
5. The same seed gives the same result; parameters the scans cannot use are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import product

import numpy as np
import pytest

from epibridge.algorithms.scan import (
    DISTANCE_TOLERANCE_KM,
    EARTH_RADIUS_KM,
    ScanAreas,
    ScanParameterError,
    ScanResult,
    candidate_zones,
    llr_high,
    poisson_scan,
    space_time_permutation_scan,
)
from epibridge.registry import geography

Cylinder = tuple[frozenset[int], int]  # (areas, window length in time points)


def _grid(side: int, step: float = 1.0, border: float | None = None) -> ScanAreas:
    """side x side centroids near the equator; columns left of ``border`` are country AAA."""
    cut = side / 2 if border is None else border
    codes, countries, lon, lat = [], [], [], []
    for row, col in product(range(side), range(side)):
        codes.append(f"G{row}{col}")
        countries.append("AAA" if col < cut else "BBB")
        lon.append(100.0 + col * step)
        lat.append(10.0 + row * step)
    return ScanAreas.of(codes, countries, lon, lat)


# ---------------------------------------------------------------- brute force


def _haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def _brute_zones(areas: ScanAreas, max_share: float, weights: list[float]) -> set[frozenset[int]]:
    """Every circle centred on a centroid through another centroid, at most max_share."""
    n = len(areas.codes)
    lon, lat = [float(v) for v in areas.lon], [float(v) for v in areas.lat]
    zones: set[frozenset[int]] = set()
    for centre in range(n):
        d = [_haversine(lon[centre], lat[centre], lon[k], lat[k]) for k in range(n)]
        for edge in range(n):
            inside = frozenset(k for k in range(n) if d[k] <= d[edge] + DISTANCE_TOLERANCE_KM)
            if sum(weights[k] for k in inside) <= max_share * sum(weights) * (1 + 1e-12):
                zones.add(inside)
    return zones


def _llr(c: float, mu: float, total: float) -> float:
    if c <= mu:
        return 0.0
    inside = c * math.log(c / mu) if c > 0 else 0.0
    outside = (total - c) * math.log((total - c) / (total - mu)) if total > c else 0.0
    return inside + outside


def _brute_permutation(
    y: list[list[int]], zones: set[frozenset[int]], max_weeks: int
) -> dict[Cylinder, float]:
    n_time = len(y[0])
    total = sum(map(sum, y))
    area_total = [sum(row) for row in y]
    time_total = [sum(row[t] for row in y) for t in range(n_time)]
    out: dict[Cylinder, float] = {}
    for zone in zones:
        for w in range(1, max_weeks + 1):
            times = range(n_time - w, n_time)
            c = sum(y[a][t] for a in zone for t in times)
            mu = sum(area_total[a] * time_total[t] / total for a in zone for t in times)
            out[(zone, w)] = _llr(c, mu, total)
    return out


def _brute_poisson(
    y: list[list[int]], pop: list[float], zones: set[frozenset[int]], max_weeks: int
) -> dict[Cylinder, float]:
    n_time = len(y[0])
    total = sum(map(sum, y))
    pop_time = sum(pop) * n_time
    out: dict[Cylinder, float] = {}
    for zone in zones:
        for w in range(1, max_weeks + 1):
            times = range(n_time - w, n_time)
            c = sum(y[a][t] for a in zone for t in times)
            mu = total * sum(pop[a] for a in zone for _ in times) / pop_time
            out[(zone, w)] = _llr(c, mu, total)
    return out


def _cylinders(result: ScanResult) -> dict[Cylinder, float]:
    out: dict[Cylinder, float] = {}
    for z, row in enumerate(result.zones.members):
        zone = frozenset(int(i) for i in np.flatnonzero(row))
        for j in range(result.max_weeks):
            out[(zone, j + 1)] = float(result.llr[z, j])
    return out


def _assert_matches_brute_force(result: ScanResult, brute: dict[Cylinder, float]) -> None:
    mine = _cylinders(result)
    assert set(mine) == set(brute)  # the same zones and windows, none repeated
    assert len(mine) == result.llr.size
    for cylinder, value in brute.items():
        assert mine[cylinder] == pytest.approx(value, rel=1e-12, abs=1e-12)
    ranked = sorted(brute.items(), key=lambda kv: -kv[1])
    (best, best_llr), (_, second_llr) = ranked[0], ranked[1]
    assert best_llr - second_llr > 1e-6  # the data have a unique best cylinder
    top = result.most_likely
    assert top is not None
    assert (frozenset(top.area_index), top.length) == best
    assert top.llr == pytest.approx(best_llr, rel=1e-12)
    assert top.end == 5
    assert top.start == 6 - top.length


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_permutation_scan_equals_brute_force(seed: int) -> None:
    areas = _grid(4)
    rng = np.random.default_rng(seed)
    y = rng.poisson(3.0, size=(16, 6))
    y[5, -2:] += 4
    result = space_time_permutation_scan(
        y, areas, np.random.default_rng(0), max_weeks=3, max_share=0.5
    )
    zones = _brute_zones(areas, 0.5, [1.0] * 16)
    _assert_matches_brute_force(result, _brute_permutation(y.tolist(), zones, 3))


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_poisson_scan_equals_brute_force(seed: int) -> None:
    areas = _grid(4)
    rng = np.random.default_rng(seed)
    pop = rng.integers(1_000, 20_000, size=16).astype(float)
    y = rng.poisson(pop[:, None] * 3e-4, size=(16, 6))
    y[10, -1] += 5
    result = poisson_scan(y, pop, areas, np.random.default_rng(0), max_weeks=3, max_share=0.3)
    zones = _brute_zones(areas, 0.3, pop.tolist())  # capped by share of the population
    _assert_matches_brute_force(result, _brute_poisson(y.tolist(), pop.tolist(), zones, 3))


def test_candidate_zones_grow_by_distance_and_enter_ties_together() -> None:
    areas = _grid(3)
    zones = candidate_zones(areas, max_share=1.0)
    centre = zones.members[zones.center == 4]  # the middle area of the 3 x 3 grid
    sizes = centre.sum(axis=1).tolist()
    # itself; then the two neighbours east and west (exactly tied); then north, south...
    assert sizes[0] == 1
    assert sizes == sorted(sizes)
    # the whole map is one zone, produced by the first centre and not repeated
    assert int(zones.members.all(axis=1).sum()) == 1
    assert int(zones.center[zones.members.all(axis=1)][0]) == 0
    east_west = zones.members[(zones.center == 4) & (zones.members.sum(axis=1) == 3)]
    assert np.flatnonzero(east_west[0]).tolist() == [3, 4, 5]
    # no zone is produced twice
    packed = {row.tobytes() for row in zones.members}
    assert len(packed) == zones.members.shape[0]


# ---------------------------------------------------------------- the statistic


def test_llr_for_high_rates_by_hand() -> None:
    # c = 10, mu = 4, C = 50: 10 ln(10/4) + 40 ln(40/46)
    #   = 10 x 0.916290731874155 + 40 x (-0.139761942375159) = 3.572429623735202
    # c = 5, mu = 2, C = 20: 5 ln(2.5) + 15 ln(15/18) = 4.581453659370776 - 2.734823352
    #   = 1.846630307461461
    got = llr_high([10.0, 5.0], [4.0, 2.0], 50.0)
    assert got[0] == pytest.approx(3.572429623735202, rel=1e-13)
    got2 = llr_high(5.0, 2.0, 20.0)
    assert float(got2) == pytest.approx(1.846630307461461, rel=1e-13)
    # no excess, no score; all cases inside: only the first term
    assert llr_high([3.0, 4.0], [4.0, 4.0], 50.0).tolist() == [0.0, 0.0]
    assert float(llr_high(20.0, 10.0, 20.0)) == pytest.approx(20 * math.log(2.0), rel=1e-13)
    # zero cases outside and zero inside are 0 * log(0) = 0, never NaN
    assert float(llr_high(0.0, 1.0, 20.0)) == 0.0


# ---------------------------------------------------------------- planted clusters


def test_planted_cross_border_cluster_is_found_and_flagged() -> None:
    areas = _grid(6)  # columns 0-2 are AAA, 3-5 BBB
    rng = np.random.default_rng(11)
    y = rng.poisson(4.0, size=(36, 16))
    planted = [2 * 6 + 2, 2 * 6 + 3, 3 * 6 + 2, 3 * 6 + 3]  # 2 x 2 block on the border
    y[planted, -3:] += 8
    for scan in ("permutation", "poisson"):
        if scan == "permutation":
            result = space_time_permutation_scan(
                y, areas, np.random.default_rng(1), max_weeks=4, max_share=0.25
            )
        else:
            result = poisson_scan(
                y, np.full(36, 5e4), areas, np.random.default_rng(1), max_weeks=4, max_share=0.25
            )
        top = result.most_likely
        assert top is not None
        assert set(planted) <= set(top.area_index)
        assert top.cross_border
        assert top.countries == ("AAA", "BBB")
        assert top.end == 15
        assert top.p_value == pytest.approx(1 / 1000)
        assert top.recurrence_interval == pytest.approx(1000.0)
        assert top.observed > top.expected
        # secondary clusters share no area with a better one, and rank below it
        seen: set[int] = set()
        for cluster in result.clusters:
            assert seen.isdisjoint(cluster.area_index)
            seen |= set(cluster.area_index)
            assert cluster.p_value >= top.p_value
            assert cluster.cross_border == (len(cluster.countries) >= 2)
        llrs = [c.llr for c in result.clusters]
        assert llrs == sorted(llrs, reverse=True)


def test_a_cluster_inside_one_country_is_not_cross_border() -> None:
    areas = _grid(6)
    y = np.random.default_rng(12).poisson(4.0, size=(36, 12))
    y[[0, 1, 6], -2:] += 10  # corner of AAA
    result = space_time_permutation_scan(
        y, areas, np.random.default_rng(2), max_weeks=3, max_share=0.2
    )
    top = result.most_likely
    assert top is not None
    assert {0, 1, 6} <= set(top.area_index)
    assert top.countries == ("AAA",)
    assert not top.cross_border


def test_planted_cluster_on_registry_units_across_cambodia_and_thailand() -> None:
    units = [
        u
        for u in geography.units("KHM") + geography.units("THA")
        if u.level == 1 and u.lon is not None and u.lat is not None and u.valid_to is None
    ]
    areas = ScanAreas.from_units(units)
    pair = next(
        a
        for a in geography.adjacency(cross_border_only=True)
        if {a.country_a, a.country_b} == {"KHM", "THA"}
        and a.code_a in areas.codes
        and a.code_b in areas.codes
    )
    index = [areas.codes.index(pair.code_a), areas.codes.index(pair.code_b)]
    rng = np.random.default_rng(21)
    pop = rng.integers(200_000, 2_000_000, size=len(units)).astype(float)
    y = rng.poisson(pop[:, None] * 2e-5, size=(len(units), 10))
    y[index, -2:] = rng.poisson(pop[index, None] * 2e-4, size=(2, 2))
    result = poisson_scan(y, pop, areas, np.random.default_rng(3), max_weeks=3, max_share=0.1)
    top = result.most_likely
    assert top is not None
    assert set(index) <= set(top.area_index)
    assert top.cross_border
    assert top.p_value < 0.01


# ---------------------------------------------------------------- null behaviour


@pytest.mark.parametrize("model", ["permutation", "poisson"])
def test_p_values_are_roughly_uniform_under_the_null(model: str) -> None:
    areas = _grid(3)
    pop = np.full(9, 1e4)
    rng = np.random.default_rng(99)
    p_values = []
    for _ in range(200):
        y = rng.poisson(6.0, size=(9, 6))
        if model == "permutation":
            result = space_time_permutation_scan(y, areas, rng, max_weeks=3, max_share=0.5)
        else:
            result = poisson_scan(y, pop, areas, rng, max_weeks=3, max_share=0.5)
        top = result.most_likely
        p_values.append(1.0 if top is None else top.p_value)
    p = np.array(p_values)
    # loose: 200 runs, so the share below 0.1 has sd ~0.021 and the mean ~0.020
    assert 0.03 <= float(np.mean(p <= 0.1)) <= 0.2
    assert 0.01 <= float(np.mean(p <= 0.05)) <= 0.12
    assert 0.4 <= float(p.mean()) <= 0.6


def test_same_seed_same_result() -> None:
    areas = _grid(4)
    y = np.random.default_rng(5).poisson(3.0, size=(16, 8))
    first = space_time_permutation_scan(y, areas, np.random.default_rng(42), max_weeks=3)
    again = space_time_permutation_scan(y, areas, np.random.default_rng(42), max_weeks=3)
    assert np.array_equal(first.null_max_llr, again.null_max_llr)
    assert first.clusters == again.clusters
    pop = np.full(16, 1e3)
    one = poisson_scan(y, pop, areas, np.random.default_rng(7), max_weeks=3)
    two = poisson_scan(y, pop, areas, np.random.default_rng(7), max_weeks=3)
    assert np.array_equal(one.null_max_llr, two.null_max_llr)
    assert one.clusters == two.clusters
    other = poisson_scan(y, pop, areas, np.random.default_rng(8), max_weeks=3)
    assert not np.array_equal(one.null_max_llr, other.null_max_llr)


def test_permutation_replicates_keep_both_marginals() -> None:
    # every replicate's cylinder sums come from a table with the data's margins, so the
    # whole-period column (window = all weeks) of every single-area zone is fixed
    areas = _grid(2)
    y = np.array([[1, 0, 2, 3], [0, 4, 1, 0], [2, 2, 2, 2], [5, 0, 0, 1]])
    result = space_time_permutation_scan(y, areas, np.random.default_rng(0), max_weeks=4)
    # the full-period cylinder of any zone has observed == expected, hence LLR 0
    assert np.all(result.llr[:, -1] == 0.0)
    assert result.null_max_llr.shape == (999,)
    assert np.all(result.null_max_llr >= 0.0)


# ---------------------------------------------------------------- refusals


def test_refusals_have_reasons() -> None:
    areas = _grid(2)
    y = np.ones((4, 4))
    rng = np.random.default_rng(0)
    cases: list[tuple[Callable[[], object], str]] = [
        (
            lambda: space_time_permutation_scan(y, areas, rng, replicates=99),
            "scan_too_few_replicates",
        ),
        (lambda: space_time_permutation_scan(y[:3], areas, rng), "scan_counts_shape"),
        (lambda: space_time_permutation_scan(y * 0.5, areas, rng), "scan_counts_not_whole"),
        (lambda: space_time_permutation_scan(y * 0, areas, rng), "scan_no_cases"),
        (
            lambda: space_time_permutation_scan(y, areas, rng, max_weeks=5),
            "scan_max_weeks_out_of_range",
        ),
        (lambda: poisson_scan(y, np.ones(3), areas, rng), "scan_population_shape"),
        (lambda: candidate_zones(areas, max_share=0.0), "scan_max_share_out_of_range"),
        (lambda: ScanAreas.of(["a", "a"], ["X", "X"], [0, 1], [0, 1]), "scan_duplicate_area"),
        (lambda: ScanAreas.of(["a"], ["X"], [0], [95]), "scan_bad_coordinates"),
    ]
    nan_y = y.copy()
    nan_y[0, 0] = np.nan
    cases.append((lambda: space_time_permutation_scan(nan_y, areas, rng), "scan_missing_count"))
    for call, reason in cases:
        with pytest.raises(ScanParameterError) as err:
            call()
        assert err.value.reason == reason


def test_registry_units_without_coordinates_are_refused() -> None:
    units = [u for u in geography.units("BRA") if u.level == 1][:3]
    with pytest.raises(ScanParameterError) as err:
        ScanAreas.from_units(units)
    assert err.value.reason == "scan_unit_without_coordinates"
