"""Prospective space-time scan statistics over harmonized areas, across national borders.

Why this module exists: an outbreak near a border is split between two national
surveillance systems, and each country's own detector sees only half of it. Scanning the
harmonized areas of several countries together, with circles drawn from the geography
registry's coordinates whatever the border, finds such clusters and flags those that
span two or more countries as cross-border signals.

Two of SaTScan's prospective space-time scans are implemented, both as pure NumPy
functions (counts and parameters in, a result out; no I/O, no clock, randomness only from
the ``numpy.random.Generator`` passed in):

* :func:`space_time_permutation_scan` (Kulldorff et al. 2005): cases only, no population.
  The expected count of a cylinder is (cases in its zone over the whole period) x (cases
  in its time window over all areas) / (all cases); the null distribution comes from
  permuting the case times, which keeps both marginals.
* :func:`poisson_scan` (Kulldorff 2001): cases and population. The expected count of a
  cylinder is C x (its population-time) / (all population-time), C the total count; the
  null distribution comes from drawing C cases multinomially in proportion to
  population-time.

Candidate zones (:func:`candidate_zones`) are SaTScan's circles: centred on each area's
centroid, the radius grows through the great-circle distances to the other centroids, and
a circle holds every area whose centroid lies within it (tied areas enter together). A
circle is kept while it holds at most ``max_share`` of the areas (or of a weight such as
the population); identical sets from different centres are kept once. Cylinders are a
zone x a time window that ends at the last time point (prospective), 1 .. ``max_weeks``
time points long.

Both scans score a cylinder with observed c, expected mu and total C by the
log-likelihood ratio for high rates

    LLR = c ln(c / mu) + (C - c) ln((C - c) / (C - mu))   if c > mu, else 0,

evaluated for all cylinders at once: case counts are summed backwards over time (the last
w points of each area), and a sparse zone x area membership matrix turns those area sums
into cylinder sums for the observed data and for every Monte Carlo replicate. The
p-value of a cluster is rank / (R + 1), its rank being 1 + the number of replicates whose
*largest* LLR is at least its own (SaTScan's rule, also for secondary clusters), and its
recurrence interval is 1 / p analysis periods (one analysis per time point).

The replicates are drawn in blocks of at most ``REPLICATES_PER_BLOCK`` (fewer when a
block's cylinder sums would outgrow ``_CHUNK_CELLS``), each from its own child stream of
the generator passed in (``Generator.spawn``). The split depends on the scan's size only,
so the blocks can run anywhere — in turn in this process, or as Spark tasks
(``engines.block_map``) — and give the same p-values.

Secondary clusters are the next-best cylinders sharing no area with a better one
(SaTScan's "no geographical overlap"); since every window ends at the last time point,
any two cylinders overlap in time.

References:
    Kulldorff M (1997). A spatial scan statistic. Commun Stat Theory Methods 26(6):
    1481-1496.
    Kulldorff M (2001). Prospective time periodic geographical disease surveillance using
    a scan statistic. J R Stat Soc A 164(1): 61-72.
    Kulldorff M, Heffernan R, Hartman J, Assuncao R, Mostashari F (2005). A space-time
    permutation scan statistic for disease outbreak detection. PLoS Med 2(3): e59.
    Kulldorff M. SaTScan User Guide for version 10 (www.satscan.org).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.special import xlogy

from epibridge.model.errors import ReasonedError

Model = Literal["space-time permutation", "poisson"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]

#: mean Earth radius (IUGG), km
EARTH_RADIUS_KM: Final = 6371.0088
#: centroids this close (km) to a circle's edge count as on it, so ties enter together
DISTANCE_TOLERANCE_KM: Final = 1e-6
#: the fewest Monte Carlo replicates accepted (SaTScan's recommended minimum)
MIN_REPLICATES: Final = 999
#: cylinder sums held at once while simulating (zones x windows x replicates), ~32 MB
_CHUNK_CELLS: Final = 4_000_000
#: Monte Carlo replicates drawn together from one random stream of their own: the unit
#: the null distribution is split into (run in turn here; one Spark task each on Spark)
REPLICATES_PER_BLOCK: Final = 100

_T = TypeVar("_T")
_R = TypeVar("_R")


class BlockMap(Protocol):
    """Runs ``work`` on every item and returns the results in the items' order: here
    (:func:`run_here`) or on Spark (``engines.block_map``)."""

    def __call__(self, work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]: ...


class ScanParameterError(ReasonedError, ValueError):
    """A parameter or input the scan statistics cannot use; ``reason`` says which."""


class _Located(Protocol):
    """What :meth:`ScanAreas.from_units` needs of a unit (the registry's ``Unit`` has it)."""

    @property
    def code(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def lon(self) -> float | None: ...
    @property
    def lat(self) -> float | None: ...


@dataclass(frozen=True, eq=False)
class ScanAreas:
    """The areas scanned, in the row order of the count matrix: code, country, centroid."""

    codes: tuple[str, ...]
    countries: tuple[str, ...]
    lon: FloatArray
    lat: FloatArray

    @classmethod
    def of(
        cls,
        codes: Sequence[str],
        countries: Sequence[str],
        lon: ArrayLike,
        lat: ArrayLike,
    ) -> ScanAreas:
        """Checked areas: one code, country, longitude and latitude (degrees) per area."""
        lons = np.array(lon, dtype=np.float64).reshape(-1)
        lats = np.array(lat, dtype=np.float64).reshape(-1)
        n = len(codes)
        if n == 0:
            raise ScanParameterError("scan_no_areas", "there are no areas to scan")
        if not len(countries) == lons.size == lats.size == n:
            raise ScanParameterError(
                "scan_areas_misaligned",
                f"codes ({n}), countries ({len(countries)}), lon ({lons.size}) and lat "
                f"({lats.size}) must have one entry per area",
            )
        if len(set(codes)) != n:
            raise ScanParameterError("scan_duplicate_area", "area codes must be unique")
        bad = ~np.isfinite(lons) | ~np.isfinite(lats) | (np.abs(lats) > 90) | (np.abs(lons) > 180)
        if bad.any():
            raise ScanParameterError(
                "scan_bad_coordinates",
                f"area {codes[int(np.argmax(bad))]} has no valid centroid: give lon in "
                "[-180, 180] and lat in [-90, 90] degrees",
            )
        return cls(tuple(codes), tuple(countries), lons, lats)

    @classmethod
    def from_units(cls, units: Iterable[_Located]) -> ScanAreas:
        """Areas from geography-registry units (``epibridge.registry.geography.Unit``).

        Refuses units without coordinates: they cannot be placed in any circle.
        """
        chosen = list(units)
        missing = [u.code for u in chosen if u.lon is None or u.lat is None]
        if missing:
            raise ScanParameterError(
                "scan_unit_without_coordinates",
                f"{len(missing)} unit(s) have no lon/lat in the geography registry "
                f"(first: {missing[0]}); scan only units with coordinates",
            )
        return cls.of(
            [u.code for u in chosen],
            [u.country for u in chosen],
            [float(u.lon or 0.0) for u in chosen],  # None refused above
            [float(u.lat or 0.0) for u in chosen],
        )


@dataclass(frozen=True, eq=False)
class Zones:
    """Candidate zones: ``members`` (zone x area) is True where the area is in the zone."""

    members: BoolArray
    center: IntArray
    radius_km: FloatArray


@dataclass(frozen=True)
class Cluster:
    """One reported cylinder: a zone over the window ``start`` .. ``end`` (0-based, inclusive).

    ``recurrence_interval`` is 1 / ``p_value`` in analysis periods (the time unit of the
    count matrix: weeks for weekly counts): how often a cluster this strong would arise by
    chance if the analysis were repeated every period. ``cross_border`` is True when the
    areas belong to two or more countries.
    """

    areas: tuple[str, ...]
    area_index: tuple[int, ...]
    countries: tuple[str, ...]
    center: str
    radius_km: float
    start: int
    end: int
    length: int
    observed: float
    expected: float
    relative_risk: float
    llr: float
    p_value: float
    recurrence_interval: float
    cross_border: bool


@dataclass(frozen=True, eq=False)
class ScanResult:
    """A scan's clusters (most likely first), with what the p-values were computed from.

    ``llr`` and ``expected`` are (zone x window) arrays over every cylinder, window j
    being the last j + 1 time points; ``null_max_llr`` holds the largest LLR of each
    Monte Carlo replicate.
    """

    model: Model
    replicates: int
    max_weeks: int
    zones: Zones
    llr: FloatArray
    expected: FloatArray
    null_max_llr: FloatArray
    clusters: tuple[Cluster, ...]

    @property
    def most_likely(self) -> Cluster | None:
        """The cylinder with the largest LLR, or None when no cylinder has an excess."""
        return self.clusters[0] if self.clusters else None


def great_circle_km(lon: FloatArray, lat: FloatArray) -> FloatArray:
    """All pairwise great-circle (haversine) distances in km between centroids."""
    lam, phi = np.radians(lon), np.radians(lat)
    dphi = phi[:, None] - phi[None, :]
    dlam = lam[:, None] - lam[None, :]
    h = np.sin(dphi / 2) ** 2 + np.cos(phi)[:, None] * np.cos(phi)[None, :] * np.sin(dlam / 2) ** 2
    angle: FloatArray = np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return 2 * EARTH_RADIUS_KM * angle


def candidate_zones(
    areas: ScanAreas, max_share: float = 0.5, weights: ArrayLike | None = None
) -> Zones:
    """SaTScan's circular zones around every centroid, each at most ``max_share`` in size.

    Size is the number of areas, or the sum of ``weights`` (e.g. population) when given,
    as a share of the total. Zones are ordered by centre (area order), then radius;
    a set already produced by an earlier centre is not repeated.
    """
    n = len(areas.codes)
    if not 0.0 < max_share <= 1.0:
        raise ScanParameterError(
            "scan_max_share_out_of_range", f"max_share must lie in (0, 1], not {max_share}"
        )
    w = np.ones(n) if weights is None else np.array(weights, dtype=np.float64).reshape(-1)
    if w.size != n or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ScanParameterError(
            "scan_bad_zone_weights",
            f"weights must be {n} finite non-negative numbers with a positive sum",
        )
    cap = max_share * w.sum() * (1 + 1e-12)
    dist = great_circle_km(areas.lon, areas.lat)
    seen: set[bytes] = set()
    rows: list[BoolArray] = []
    centers: list[int] = []
    radii: list[float] = []
    for c in range(n):
        d = dist[c]
        previous = -np.inf
        for r in np.unique(d):
            if r <= previous + DISTANCE_TOLERANCE_KM:
                continue  # within tolerance of the previous radius: the same circle
            previous = float(r)
            inside = d <= r + DISTANCE_TOLERANCE_KM
            if w[inside].sum() > cap:
                break  # circles only grow: every larger one is too big as well
            key = np.packbits(inside).tobytes()
            if key not in seen:
                seen.add(key)
                rows.append(inside)
                centers.append(c)
                radii.append(float(r))
    if not rows:
        raise ScanParameterError(
            "scan_no_zones",
            f"no area alone fits within max_share={max_share} of the total weight; raise max_share",
        )
    return Zones(np.array(rows), np.array(centers, dtype=np.intp), np.array(radii))


def llr_high(observed: ArrayLike, expected: ArrayLike, total: float) -> FloatArray:
    """Kulldorff's log-likelihood ratio for high rates; 0 where observed <= expected."""
    c = np.asarray(observed, dtype=np.float64)
    mu = np.asarray(expected, dtype=np.float64)
    rest_c = total - c
    rest_mu = total - mu
    with np.errstate(divide="ignore", invalid="ignore"):
        value = xlogy(c, c / mu) + xlogy(rest_c, rest_c / rest_mu)
    high = (c > mu) & (mu > 0)
    return np.asarray(np.where(high, value, 0.0), dtype=np.float64)


def connected_zones(zones: Zones, areas: ScanAreas, edges: Iterable[tuple[str, str]]) -> Zones:
    """Only the zones whose areas form one connected piece of the adjacency graph.

    A circle of centroids can jump a river, a mountain range or a gap between two
    countries' units that share no border; with ``edges`` (pairs of area codes that
    share a border, across national borders too: ``registry.geography.adjacency``) a
    zone is kept only if its areas are connected through shared borders. Single areas are
    always kept.
    """
    index = {code: i for i, code in enumerate(areas.codes)}
    n = len(areas.codes)
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges:
        if a in index and b in index:
            neighbours[index[a]].add(index[b])
            neighbours[index[b]].add(index[a])
    keep = []
    for row in zones.members:
        members = set(np.flatnonzero(row).tolist())
        start = next(iter(members))
        reached, frontier = {start}, [start]
        while frontier:
            here = frontier.pop()
            for there in neighbours[here] & members:
                if there not in reached:
                    reached.add(there)
                    frontier.append(there)
        keep.append(len(reached) == len(members))
    mask = np.array(keep, dtype=np.bool_)
    return Zones(zones.members[mask], zones.center[mask], zones.radius_km[mask])


def space_time_permutation_scan(
    counts: ArrayLike,
    areas: ScanAreas,
    rng: np.random.Generator,
    *,
    max_weeks: int | None = None,
    max_share: float = 0.5,
    replicates: int = MIN_REPLICATES,
    max_clusters: int = 10,
    zones: Zones | None = None,
    map_blocks: BlockMap | None = None,
) -> ScanResult:
    """Kulldorff's prospective space-time permutation scan of ``counts`` (area x time).

    ``max_weeks`` is the longest window (default half the period, as SaTScan);
    ``max_share`` the largest zone as a share of the areas (ignored when ``zones`` is
    given); ``replicates`` the number of Monte Carlo permutations (at least 999), drawn
    in blocks (:func:`replicate_blocks`) that ``map_blocks`` runs (default: in turn, here;
    ``engines.block_map`` for Spark): each block has its own child stream of ``rng``, so
    the result is the same wherever the blocks run.
    """
    y = _checked_counts(counts, areas)
    weeks = _checked_weeks(max_weeks, y.shape[1])
    _checked_replicates(replicates, max_clusters)
    total = float(y.sum())
    zone_set = candidate_zones(areas, max_share) if zones is None else _checked_zones(zones, y)
    member = sparse.csr_matrix(zone_set.members.astype(np.float64))
    # expected: (zone total over the whole period) x (window total over all zones) / C
    zone_total = _zone_sums(member, y.sum(axis=1))
    window_total = np.cumsum(y.sum(axis=0)[::-1])[:weeks]
    expected = np.outer(zone_total, window_total) / total
    observed = _zone_sums(member, _recent_sums(y, weeks))
    llr = llr_high(observed, expected, total)

    # The null's margins: each area's cases and the cases of each recent time point
    # (`_PermutationDraws` says how replicates are drawn from them).
    area_totals = y.sum(axis=1).astype(np.int64)
    recent = y[:, ::-1][:, :weeks].sum(axis=0)
    cell_totals = np.append(recent, y.sum() - recent.sum()).astype(np.int64)

    draws = _PermutationDraws(area_totals, cell_totals, weeks)
    null_max = _null_maxima(draws, member, expected, total, replicates, rng, map_blocks)
    return _result(
        "space-time permutation",
        areas,
        zone_set,
        weeks,
        llr,
        observed,
        expected,
        null_max,
        max_clusters,
        total,
        y.shape[1],
    )


def poisson_scan(
    counts: ArrayLike,
    population: ArrayLike,
    areas: ScanAreas,
    rng: np.random.Generator,
    *,
    max_weeks: int | None = None,
    max_share: float = 0.5,
    replicates: int = MIN_REPLICATES,
    max_clusters: int = 10,
    zones: Zones | None = None,
    map_blocks: BlockMap | None = None,
) -> ScanResult:
    """Kulldorff's prospective Poisson space-time scan of ``counts`` (area x time).

    ``population`` is one figure per area (constant over time) or an (area x time)
    matrix of population-time. ``max_share`` caps zones as a share of the population
    (SaTScan's "percent of the population at risk"; ignored when ``zones`` is given).
    Other parameters as in :func:`space_time_permutation_scan`.
    """
    y = _checked_counts(counts, areas)
    weeks = _checked_weeks(max_weeks, y.shape[1])
    _checked_replicates(replicates, max_clusters)
    pop = _checked_population(population, y.shape)
    total = float(y.sum())
    zone_set = (
        candidate_zones(areas, max_share, weights=pop.mean(axis=1))
        if zones is None
        else _checked_zones(zones, y)
    )
    member = sparse.csr_matrix(zone_set.members.astype(np.float64))
    share = pop / pop.sum()  # each cell's share of all population-time
    expected = _zone_sums(member, total * _recent_sums(share, weeks))
    observed = _zone_sums(member, _recent_sums(y, weeks))
    llr = llr_high(observed, expected, total)

    recent = share[:, ::-1][:, :weeks]  # area x (0 = last time point .. weeks - 1)
    pvals = np.append(recent.ravel(), max(0.0, 1.0 - float(recent.sum())))
    pvals /= pvals.sum()
    n_cases = int(total)

    draws = _PoissonDraws(n_cases, pvals, y.shape[0], weeks)
    null_max = _null_maxima(draws, member, expected, total, replicates, rng, map_blocks)
    return _result(
        "poisson",
        areas,
        zone_set,
        weeks,
        llr,
        observed,
        expected,
        null_max,
        max_clusters,
        total,
        y.shape[1],
    )


def _zone_sums(member: sparse.csr_matrix, values: FloatArray) -> FloatArray:
    """Sums over each zone's areas: (zone x area membership) @ (area x ...)."""
    return np.asarray(member @ values, dtype=np.float64)


def _recent_sums(values: FloatArray, weeks: int) -> FloatArray:
    """(area x window): column j sums each row's last j + 1 time points."""
    return np.cumsum(values[:, ::-1], axis=1)[:, :weeks]


@dataclass(frozen=True)
class _PermutationDraws:
    """Permutation-null replicates: cumulative recent sums (replicate x area x window).

    Shuffling the cases' times among the cases, area totals and time totals fixed, makes
    the table of counts multivariate hypergeometric. Only the last ``weeks`` time points
    are told apart (cell j = j + 1 points back; cell ``weeks`` = all earlier ones), so
    each replicate is drawn area by area and cell by cell with hypergeometric draws
    vectorized over the replicates: the cost grows with areas x weeks, not with the
    number of cases.
    """

    area_totals: NDArray[np.int64]
    cell_totals: NDArray[np.int64]
    weeks: int

    def __call__(self, rng: np.random.Generator, n: int) -> FloatArray:
        weeks = self.weeks
        remaining = np.broadcast_to(self.cell_totals, (n, weeks + 1)).copy()
        table = np.zeros((n, self.area_totals.size, weeks + 1), dtype=np.int64)
        for i, cases in enumerate(self.area_totals):
            if cases == 0:
                continue
            left = np.full(n, cases, dtype=np.int64)
            pool = remaining.sum(axis=1)
            for j in range(weeks):
                good = remaining[:, j]
                pool = pool - good
                drawn = rng.hypergeometric(good, pool, left)
                table[:, i, j] = drawn
                remaining[:, j] -= drawn
                left -= drawn
            table[:, i, weeks] = left
            remaining[:, weeks] -= left
        return np.cumsum(table[:, :, :weeks], axis=2).astype(np.float64)


@dataclass(frozen=True)
class _PoissonDraws:
    """Poisson-null replicates: the C cases drawn multinomially over population-time."""

    n_cases: int
    pvals: FloatArray
    n_areas: int
    weeks: int

    def __call__(self, rng: np.random.Generator, n: int) -> FloatArray:
        draws = rng.multinomial(self.n_cases, self.pvals, size=n)[:, :-1]
        table = draws.reshape(n, self.n_areas, self.weeks)
        return np.cumsum(table, axis=2).astype(np.float64)


@dataclass(frozen=True)
class NullBlock:
    """The largest LLR of each replicate of one block, drawn from the block's own stream.

    Everything a block needs travels with it (the draws, the zones, the expected
    counts), so a block runs the same wherever it runs: in this process or as a Spark
    task (``engines.block_map``).
    """

    draws: Callable[[np.random.Generator, int], FloatArray]
    member: sparse.csr_matrix
    expected: FloatArray
    total: float

    def __call__(self, block: tuple[np.random.Generator, int]) -> FloatArray:
        rng, n = block
        n_zones, weeks = self.expected.shape
        sums = self.draws(rng, n)  # (n, area, window)
        flat = np.transpose(sums, (1, 0, 2)).reshape(sums.shape[1], n * weeks)
        observed = _zone_sums(self.member, flat).reshape(n_zones, n, weeks)
        scores = llr_high(observed, self.expected[:, None, :], self.total)
        return np.asarray(scores.max(axis=(0, 2)), dtype=np.float64)


def replicate_blocks(replicates: int, n_zones: int, weeks: int) -> list[int]:
    """The replicates' split into blocks: at most ``REPLICATES_PER_BLOCK`` each, fewer
    when one block's cylinder sums would outgrow ``_CHUNK_CELLS``. It depends on the
    scan's size only, never on the machine or engine, so the result does not either."""
    size = max(1, min(REPLICATES_PER_BLOCK, _CHUNK_CELLS // max(1, n_zones * weeks)))
    whole, rest = divmod(replicates, size)
    return [size] * whole + ([rest] if rest else [])


def run_here(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """The default ``map_blocks``: every block in turn, in this process."""
    return [work(item) for item in items]


def _null_maxima(
    draws: Callable[[np.random.Generator, int], FloatArray],
    member: sparse.csr_matrix,
    expected: FloatArray,
    total: float,
    replicates: int,
    rng: np.random.Generator,
    map_blocks: BlockMap | None,
) -> FloatArray:
    """The largest LLR of each replicate: blocks of replicates, each drawn from its own
    child of ``rng`` (``Generator.spawn``) and run by ``map_blocks``, in order."""
    sizes = replicate_blocks(replicates, *expected.shape)
    blocks = list(zip(rng.spawn(len(sizes)), sizes, strict=True))
    work = NullBlock(draws, member, expected, total)
    parts = (map_blocks or run_here)(work, blocks)
    return np.concatenate(parts)


def _result(
    model: Model,
    areas: ScanAreas,
    zones: Zones,
    weeks: int,
    llr: FloatArray,
    observed: FloatArray,
    expected: FloatArray,
    null_max: FloatArray,
    max_clusters: int,
    total: float,
    n_time: int,
) -> ScanResult:
    """The most likely and the secondary clusters (no shared area), with p-values."""
    n_time_cols = llr.shape[1]
    order = np.argsort(-llr.ravel(), kind="stable")
    used = np.zeros(len(areas.codes), dtype=bool)
    clusters: list[Cluster] = []
    for flat in order:
        if len(clusters) >= max_clusters:
            break
        z, j = divmod(int(flat), n_time_cols)
        score = float(llr[z, j])
        if score <= 0.0:
            break
        inside = zones.members[z]
        if (used & inside).any():
            continue
        used |= inside
        index = tuple(int(i) for i in np.flatnonzero(inside))
        countries = tuple(sorted({areas.countries[i] for i in index}))
        p = (1 + int(np.count_nonzero(null_max >= score))) / (null_max.size + 1)
        c, mu = float(observed[z, j]), float(expected[z, j])
        clusters.append(
            Cluster(
                areas=tuple(areas.codes[i] for i in index),
                area_index=index,
                countries=countries,
                center=areas.codes[int(zones.center[z])],
                radius_km=float(zones.radius_km[z]),
                start=n_time - 1 - j,
                end=n_time - 1,
                length=j + 1,
                observed=c,
                expected=mu,
                relative_risk=_relative_risk(c, mu, total),
                llr=score,
                p_value=p,
                recurrence_interval=1.0 / p,
                cross_border=len(countries) >= 2,
            )
        )
    return ScanResult(model, null_max.size, weeks, zones, llr, expected, null_max, tuple(clusters))


def _relative_risk(c: float, mu: float, total: float) -> float:
    """SaTScan's relative risk: the rate inside the cylinder over the rate outside it."""
    outside = (total - c) / (total - mu) if total > mu else np.nan
    return float((c / mu) / outside) if outside > 0 else float("inf")


def _checked_counts(counts: ArrayLike, areas: ScanAreas) -> FloatArray:
    try:
        y = np.array(counts, dtype=np.float64)  # a copy: never alias the caller's data
    except (TypeError, ValueError) as exc:
        raise ScanParameterError(
            "scan_counts_not_numeric", f"counts must be whole numbers of cases: {exc}"
        ) from exc
    if y.ndim != 2 or y.shape[0] != len(areas.codes) or y.shape[1] == 0:
        raise ScanParameterError(
            "scan_counts_shape",
            f"counts must be an (area x time) matrix with {len(areas.codes)} rows (one per "
            f"area, in the order of areas.codes), got shape {y.shape}",
        )
    if not np.isfinite(y).all():
        raise ScanParameterError(
            "scan_missing_count",
            "counts hold a missing or infinite value; the scan needs every cell (use 0 for "
            "a reported zero, or drop the area or the time point)",
        )
    if (y < 0).any() or (y != np.round(y)).any():
        raise ScanParameterError(
            "scan_counts_not_whole", "counts must be whole numbers of cases, >= 0"
        )
    if y.sum() <= 0:
        raise ScanParameterError("scan_no_cases", "there are no cases to scan")
    return y


def _checked_weeks(max_weeks: int | None, n_time: int) -> int:
    weeks = max(1, n_time // 2) if max_weeks is None else max_weeks
    if isinstance(weeks, bool) or not isinstance(weeks, int | np.integer):
        raise ScanParameterError(
            "scan_max_weeks_not_integer", f"max_weeks must be a whole number, not {weeks!r}"
        )
    if not 1 <= weeks <= n_time:
        raise ScanParameterError(
            "scan_max_weeks_out_of_range",
            f"max_weeks must lie between 1 and the {n_time} time points, not {weeks}",
        )
    return int(weeks)


def _checked_replicates(replicates: int, max_clusters: int) -> None:
    if isinstance(replicates, bool) or not isinstance(replicates, int | np.integer):
        raise ScanParameterError(
            "scan_replicates_not_integer",
            f"replicates must be a whole number, not {replicates!r}",
        )
    if replicates < MIN_REPLICATES:
        raise ScanParameterError(
            "scan_too_few_replicates",
            f"use at least {MIN_REPLICATES} Monte Carlo replicates (e.g. 999 or 9999), "
            f"not {replicates}",
        )
    if max_clusters < 1:
        raise ScanParameterError(
            "scan_max_clusters_out_of_range", f"max_clusters must be >= 1, not {max_clusters}"
        )


def _checked_population(population: ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    try:
        pop = np.array(population, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ScanParameterError(
            "scan_population_not_numeric", f"population must be numbers: {exc}"
        ) from exc
    if pop.ndim == 1 and pop.shape[0] == shape[0]:
        pop = np.repeat(pop[:, None], shape[1], axis=1)
    if pop.shape != shape:
        raise ScanParameterError(
            "scan_population_shape",
            f"population must have one figure per area ({shape[0]}) or one per area and "
            f"time point {shape}, got shape {pop.shape}",
        )
    if not np.isfinite(pop).all() or (pop < 0).any() or (pop.sum(axis=1) <= 0).any():
        raise ScanParameterError(
            "scan_bad_population",
            "population must be finite, >= 0, and positive for every area over the period",
        )
    return pop


def _checked_zones(zones: Zones, y: FloatArray) -> Zones:
    members = np.asarray(zones.members, dtype=bool)
    if members.ndim != 2 or members.shape[1] != y.shape[0] or members.shape[0] == 0:
        raise ScanParameterError(
            "scan_zones_shape",
            f"zones.members must be a (zone x area) boolean matrix with {y.shape[0]} "
            f"columns and at least one zone, got shape {members.shape}",
        )
    if not members.any(axis=1).all():
        raise ScanParameterError("scan_empty_zone", "every zone must hold at least one area")
    return Zones(
        members,
        np.asarray(zones.center, dtype=np.intp),
        np.asarray(zones.radius_km, dtype=np.float64),
    )
