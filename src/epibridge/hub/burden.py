"""Burden estimation: incidence per 100,000 by area and period, reported and corrected.

The table the regional map is drawn from. For each disease, country, period (week or
month, as released) and area of the level the country releases:

* **reported**: the whole count the hub holds (``area_counts``), the registry population
  and the incidence per 100,000 with its exact Poisson (Garwood) 95% interval;
* **corrected for reporting completeness**, in one of two ways
  (``completeness_basis``):

  - ``reports``, where the country sends its reporting (reports expected and received
    per area and period, ``regional_context``): an area that received r of its e
    expected reports counts e / r times its reported cases (the reports that did not
    come are assumed to carry cases at the rate of those that did, as WHO's malaria
    reports adjust for reporting completeness); an area that sent reports but no count
    cell reported zero cases; an area that sent no report at all is imputed (below).
    Completeness is reports received over expected (DHIS2's reporting rate);
  - ``areas``, otherwise: completeness is areas reported over areas expected
    (``quality.expected_areas``), and every expected area that sent nothing is imputed.

  An ``imputed`` area is not a zero: its count is the country's pooled rate that period
  (the reporting areas' cases, corrected as above, over their population) times its
  population, with the uncertainty of the pooled count. Summed over a country's areas
  this equals the corrected total divided by the population share that reported;
* **corrected for under-ascertainment**: times the country's expansion factor for the
  disease (``registry.expansion``), whose interval enters as a log-normal uncertainty
  (``algorithms/burden.py``). A country without a factor is corrected for completeness
  only, and says so (``expansion_factor`` empty).

Each country also gets a ``total`` row per period (area = the country code, level 0):
its ``cases`` are the known ones and ``areas_withheld`` says how many areas' counts were
withheld; its corrected cases count each withheld area at the least a withheld cell
holds (1 case), so that the corrected total is never below what is known to exist.
Rows whose count was withheld for disclosure control (1 to k-1 cases, ``withheld``) keep
their place on the map without a number. Populations are those the countries sent where
they did (``denominators``), else the registry's; areas without either have counts but
no rates. Reporting delay is not corrected here (see nowcasting): the most recent
periods are provisional.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from epibridge.algorithms.burden import LEVEL, corrected_interval, poisson_interval
from epibridge.hub.area_counts import AreaCount, PopulationLookup, area_counts
from epibridge.hub.quality import expected_areas
from epibridge.hub.reporting_index import PeriodReports, Reports
from epibridge.registry.expansion import ExpansionFactor

PER = 100_000
STATUSES = ("reported", "withheld", "imputed", "total")

BURDEN = pa.schema(
    [
        pa.field("country", pa.string()),
        pa.field("area", pa.string()),
        pa.field("area_level", pa.int8()),
        pa.field("disease", pa.string()),
        pa.field("period_type", pa.string()),
        pa.field("period", pa.string()),
        pa.field("period_start", pa.date32()),
        pa.field("period_end", pa.date32()),
        pa.field("status", pa.string()),
        pa.field("cases", pa.int64()),
        pa.field("areas_withheld", pa.int32()),
        pa.field("population", pa.int64()),
        pa.field("population_year", pa.int32()),
        pa.field("incidence_per_100k", pa.float64()),
        pa.field("incidence_low", pa.float64()),
        pa.field("incidence_high", pa.float64()),
        pa.field("areas_reported", pa.int32()),
        pa.field("areas_expected", pa.int32()),
        pa.field("completeness", pa.float64()),
        pa.field("completeness_basis", pa.string()),
        pa.field("expansion_factor", pa.float64()),
        pa.field("expansion_low", pa.float64()),
        pa.field("expansion_high", pa.float64()),
        pa.field("expansion_source", pa.string()),
        pa.field("cases_corrected", pa.float64()),
        pa.field("cases_corrected_low", pa.float64()),
        pa.field("cases_corrected_high", pa.float64()),
        pa.field("incidence_corrected", pa.float64()),
        pa.field("incidence_corrected_low", pa.float64()),
        pa.field("incidence_corrected_high", pa.float64()),
    ],
    metadata={"name": "regional_burden", "version": "1", "interval_level": str(LEVEL)},
)


@dataclass
class _Row:
    """One output row before its intervals are computed (all at once, vectorized)."""

    base: dict[str, Any]
    count: float  # the count the cases' interval is computed from (NaN: none)
    scale: float  # corrected cases = count * scale * factor
    factor: float
    sigma: float
    # rates: reported = rate_count / reported_population (NaN: none),
    # corrected = rate_count * rate_scale * factor / corrected_population
    rate_count: float
    rate_scale: float
    reported_population: float
    corrected_population: float


@dataclass(frozen=True)
class _Period:
    """One country, disease and period of the table, and the level its areas are at."""

    country: str
    disease: str
    period_type: str
    period: str
    period_start: date
    period_end: date
    area_level: int


def _period_groups(counts: list[AreaCount], reports: Reports) -> dict[_Period, list[AreaCount]]:
    """The count cells by period; and an empty group for each period a country sent
    reports for but no cell of a disease it releases (it reported, and had no cases)."""
    groups: dict[_Period, list[AreaCount]] = defaultdict(list)
    for c in counts:
        key = _Period(
            c.country, c.disease, c.period_type, c.period, c.period_start, c.period_end,
            c.area_level,
        )  # fmt: skip
        groups[key].append(c)
    if not reports.by_period:
        return groups
    have = {(p.country, p.disease, p.period_type, p.period) for p in groups}
    released = {(p.country, p.disease, p.period_type) for p in groups}
    for (country, disease, period_type, period), found in reports.by_period.items():
        for d in sorted({d for c, d, t in released if c == country and t == period_type}):
            if (disease is not None and d != disease) or (country, d, period_type, period) in have:
                continue
            if reports.find(country, d, period_type, period) is not found:
                continue  # the disease's own reports make their own group
            key = _Period(
                country, d, period_type, period, found.period_start, found.period_end,
                found.area_level,
            )  # fmt: skip
            groups[key] = []
            have.add((country, d, period_type, period))
    return groups


def burden(
    cells: pa.Table,
    factors: Mapping[tuple[str, str], ExpansionFactor],
    *,
    level: float = LEVEL,
    corrected_intervals: bool = True,
    reporting: pa.Table | None = None,
    populations: pa.Table | None = None,
) -> pa.Table:
    """The burden table (``BURDEN``) of the cells of ``regional.counts_as_of``.

    ``reporting`` and ``populations`` are the rows of ``regional_context.reporting_as_of``
    and ``denominators_as_of`` for the same moment and countries (``burden_inputs``):
    completeness is then taken from the reports, and populations from the countries'
    own figures, where they exist.

    ``corrected_intervals=False`` leaves the corrected intervals (``cases_corrected_low``
    ... ``incidence_corrected_high``) empty: they are most of the table's cost, and a
    page showing reported incidence does not show them. Every other column is the same."""
    counts = area_counts(cells)
    if not counts:
        return BURDEN.empty_table()
    lookup = PopulationLookup({c.country for c in counts}, populations)
    reports = Reports(reporting)
    seen: dict[tuple[str, int], set[str]] = defaultdict(set)
    for c in counts:
        seen[(c.country, c.area_level)].add(c.area)
    rows: list[_Row] = []
    for period, group in _period_groups(counts, reports).items():
        found = reports.find(period.country, period.disease, period.period_type, period.period)
        rows.extend(_group_rows(period, group, seen, lookup, factors, found))
    return _finish(rows, level, corrected_intervals)


def _coverage(
    first: _Period,
    counted: set[str],
    seen: Mapping[tuple[str, int], set[str]],
    found: PeriodReports | None,
) -> tuple[set[str], set[str], int, float | None]:
    """The areas expected and those that reported, how many are expected, and the
    completeness: from the reports where the country sent them (an area that sent any
    report reported, a zero where it sent no cell), else from the areas."""
    if found is not None:
        expected = {a for a, r in found.areas.items() if r.expected > 0} | counted
        reported = counted | {a for a, r in found.areas.items() if r.received > 0}
        return expected, reported, len(expected), found.received / found.expected
    expected = expected_areas(
        first.country,
        first.area_level,
        first.period_start,
        set(seen[(first.country, first.area_level)]),
    )
    n = max(len(expected), len(counted))
    return expected, counted, n, len(counted) / n if n else None


def _group_rows(
    first: _Period,
    group: list[AreaCount],
    seen: Mapping[tuple[str, int], set[str]],
    lookup: PopulationLookup,
    factors: Mapping[tuple[str, str], ExpansionFactor],
    found: PeriodReports | None,
) -> list[_Row]:
    country, disease = first.country, first.disease
    start: date = first.period_start
    counted = {c.area for c in group}
    expected, reported, areas_expected, completeness = _coverage(first, counted, seen, found)
    ef = factors.get((country, disease))
    factor, sigma = (ef.factor, ef.sigma) if ef else (1.0, 0.0)
    common = {
        "country": country,
        "disease": disease,
        "period_type": first.period_type,
        "period": first.period,
        "period_start": start,
        "period_end": first.period_end,
        "areas_reported": len(reported),
        "areas_expected": areas_expected,
        "completeness": completeness,
        "completeness_basis": "areas" if found is None else "reports",
        "expansion_factor": ef.factor if ef else None,
        "expansion_low": ef.low if ef else None,
        "expansion_high": ef.high if ef else None,
        "expansion_source": ef.source if ef else None,
    }
    out: list[_Row] = []
    pool_cases = pool_population = 0
    pool_adjusted = 0.0  # the pool's cases, each area's times its reporting scale
    known_cases = 0
    known_adjusted = 0.0
    withheld = 0
    withheld_adjusted = 0.0  # withheld areas at the least they hold (1), times their scale
    for c in group:
        pop = lookup(c.area, start.year)
        scale = found.scale(c.area) if found is not None else 1.0
        status = "withheld" if c.withheld else "reported"
        if c.cases is not None:
            known_cases += c.cases
            known_adjusted += c.cases * scale
            if pop is not None:
                pool_cases += c.cases
                pool_adjusted += c.cases * scale
                pool_population += pop.value
        else:
            withheld += 1
            withheld_adjusted += scale
        out.append(
            _Row(
                {
                    **common,
                    "area": c.area,
                    "area_level": c.area_level,
                    "status": status,
                    "cases": c.cases,
                    "areas_withheld": int(c.withheld),
                    "population": pop.value if pop else None,
                    "population_year": pop.year if pop else None,
                },
                float("nan") if c.cases is None else float(c.cases),
                scale,
                factor,
                sigma,
                float("nan") if c.cases is None else float(c.cases),
                scale,
                float(pop.value) if pop else float("nan"),
                float(pop.value) if pop else float("nan"),
            )
        )
    for area in sorted(reported - counted):
        # sent its reports and no count cell: it reported zero cases
        pop = lookup(area, start.year)
        if pop is not None:
            pool_population += pop.value
        out.append(
            _Row(
                {
                    **common,
                    "area": area,
                    "area_level": first.area_level,
                    "status": "reported",
                    "cases": 0,
                    "areas_withheld": 0,
                    "population": pop.value if pop else None,
                    "population_year": pop.year if pop else None,
                },
                0.0,
                1.0,
                factor,
                sigma,
                0.0,
                1.0,
                float(pop.value) if pop else float("nan"),
                float(pop.value) if pop else float("nan"),
            )
        )
    # the pool's rate, corrected for the reports that did not come
    adjust = pool_adjusted / pool_cases if pool_cases else 1.0
    imputed_cases = 0.0
    missing_population = 0
    for area in sorted(expected - reported):
        pop = lookup(area, start.year)
        if pop is None or pool_population <= 0:
            continue
        scale = adjust * pop.value / pool_population
        imputed_cases += pool_cases * scale
        missing_population += pop.value
        out.append(
            _Row(
                {
                    **common,
                    "area": area,
                    "area_level": first.area_level,
                    "status": "imputed",
                    "cases": None,
                    "areas_withheld": 0,
                    "population": pop.value,
                    "population_year": pop.year,
                },
                float(pool_cases),
                scale,
                factor,
                sigma,
                float(pool_cases),
                scale,
                float("nan"),  # nothing was reported there
                float(pop.value),
            )
        )
    # the country's total: the known count, plus each withheld area at the least a
    # withheld cell holds (1 case), scaled up by the reports that did not come and the
    # imputed areas
    total_population = pool_population + missing_population
    least = known_cases + withheld
    scale = (known_adjusted + withheld_adjusted + imputed_cases) / least if least else 1.0
    out.append(
        _Row(
            {
                **common,
                "area": country,
                "area_level": 0,
                "status": "total",
                "cases": known_cases,
                "areas_withheld": withheld,
                "population": total_population if total_population else None,
                "population_year": start.year if total_population else None,
            },
            float(least),
            scale,
            factor,
            sigma,
            float(pool_cases),
            adjust * total_population / pool_population if pool_population else 1.0,
            float(pool_population) if pool_population else float("nan"),
            float(total_population) if pool_population else float("nan"),
        )
    )
    return out


def _finish(rows: list[_Row], level: float, corrected_intervals: bool) -> pa.Table:
    def column(name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.array([getattr(r, name) for r in rows], dtype=np.float64)

    count, scale, factor, sigma = (
        column("count"),
        column("scale"),
        column("factor"),
        column("sigma"),
    )
    rate_count, rate_scale = column("rate_count"), column("rate_scale")
    per_reported = PER / column("reported_population")
    per_corrected = PER / column("corrected_population")
    reported_low, reported_high = poisson_interval(rate_count, level)
    if corrected_intervals:
        cases_low, cases_high = corrected_interval(count, factor, sigma, scale, level)
        rate_low, rate_high = corrected_interval(rate_count, factor, sigma, rate_scale, level)
    else:
        cases_low = cases_high = rate_low = rate_high = np.full(len(rows), np.nan)
    with np.errstate(invalid="ignore"):
        columns = {
            "incidence_per_100k": rate_count * per_reported,
            "incidence_low": reported_low * per_reported,
            "incidence_high": reported_high * per_reported,
            "cases_corrected": count * scale * factor,
            "cases_corrected_low": cases_low,
            "cases_corrected_high": cases_high,
            "incidence_corrected": rate_count * rate_scale * factor * per_corrected,
            "incidence_corrected_low": rate_low * per_corrected,
            "incidence_corrected_high": rate_high * per_corrected,
        }
    base = pa.Table.from_pylist(
        [r.base for r in rows],
        pa.schema([f for f in BURDEN if f.name not in columns]),
    )
    for name, values in columns.items():
        base = base.append_column(
            BURDEN.field(name), pa.array(values, type=pa.float64(), mask=np.isnan(values))
        )
    return base.select(BURDEN.names).cast(BURDEN)
