"""Burden estimation: incidence per 100,000 by area and period, reported and corrected.

The table the regional map is drawn from. For each disease, country, period (week or
month, as released) and area of the level the country releases:

* **reported**: the whole count the hub holds (``area_counts``), the registry population
  and the incidence per 100,000 with its exact Poisson (Garwood) 95% interval;
* **corrected for reporting completeness**: the hub's scorecards measure completeness per
  country, disease and period as areas reported over areas expected (DHIS2's reporting
  rate; ``quality.expected_areas``). An expected area that sent nothing for a period its
  country reported is not a zero: it gets an ``imputed`` row whose count is the
  country's pooled rate that period (the reporting areas' cases over their population)
  times its population, with the uncertainty of the pooled count. Summed over a
  country's areas this equals the reported total divided by the population share that
  reported;
* **corrected for under-ascertainment**: times the country's expansion factor for the
  disease (``registry.expansion``), whose interval enters as a log-normal uncertainty
  (``algorithms/burden.py``). A country without a factor is corrected for completeness
  only, and says so (``expansion_factor`` empty).

Each country also gets a ``total`` row per period (area = the country code, level 0):
its ``cases`` are the known ones and ``areas_withheld`` says how many areas' counts were
withheld. Rows whose count was withheld for disclosure control (1 to k-1 cases,
``withheld``) keep their place on the map without a number. Areas without a registry population have
counts but no rates. Reporting delay is not corrected here (see nowcasting): the most
recent periods are provisional.
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


def _period_groups(counts: list[AreaCount]) -> dict[tuple[str, str, str, str], list[AreaCount]]:
    groups: dict[tuple[str, str, str, str], list[AreaCount]] = defaultdict(list)
    for c in counts:
        groups[(c.country, c.disease, c.period_type, c.period)].append(c)
    return groups


def burden(
    cells: pa.Table,
    factors: Mapping[tuple[str, str], ExpansionFactor],
    *,
    level: float = LEVEL,
    corrected_intervals: bool = True,
) -> pa.Table:
    """The burden table (``BURDEN``) of the cells of ``regional.counts_as_of``.

    ``corrected_intervals=False`` leaves the corrected intervals (``cases_corrected_low``
    ... ``incidence_corrected_high``) empty: they are most of the table's cost, and a
    page showing reported incidence does not show them. Every other column is the same."""
    counts = area_counts(cells)
    if not counts:
        return BURDEN.empty_table()
    lookup = PopulationLookup({c.country for c in counts})
    seen: dict[tuple[str, int], set[str]] = defaultdict(set)
    for c in counts:
        seen[(c.country, c.area_level)].add(c.area)
    rows: list[_Row] = []
    for (country, disease, _, _), group in _period_groups(counts).items():
        rows.extend(_group_rows(country, disease, group, seen, lookup, factors))
    return _finish(rows, level, corrected_intervals)


def _group_rows(
    country: str,
    disease: str,
    group: list[AreaCount],
    seen: Mapping[tuple[str, int], set[str]],
    lookup: PopulationLookup,
    factors: Mapping[tuple[str, str], ExpansionFactor],
) -> list[_Row]:
    first = group[0]
    start: date = first.period_start
    reported = {c.area for c in group}
    expected = expected_areas(
        country, first.area_level, start, set(seen[(country, first.area_level)])
    )
    areas_expected = max(len(expected), len(reported))
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
        "completeness": len(reported) / areas_expected if areas_expected else None,
        "expansion_factor": ef.factor if ef else None,
        "expansion_low": ef.low if ef else None,
        "expansion_high": ef.high if ef else None,
        "expansion_source": ef.source if ef else None,
    }
    out: list[_Row] = []
    pool_cases = pool_population = 0
    known_cases = 0
    withheld = 0
    for c in group:
        pop = lookup(c.area, start.year)
        status = "withheld" if c.withheld else "reported"
        if c.cases is not None:
            known_cases += c.cases
            if pop is not None:
                pool_cases += c.cases
                pool_population += pop.value
        else:
            withheld += 1
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
                1.0,
                factor,
                sigma,
                float("nan") if c.cases is None else float(c.cases),
                1.0,
                float(pop.value) if pop else float("nan"),
                float(pop.value) if pop else float("nan"),
            )
        )
    imputed_cases = 0.0
    missing_population = 0
    for area in sorted(expected - reported):
        pop = lookup(area, start.year)
        if pop is None or pool_population <= 0:
            continue
        scale = pop.value / pool_population
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
    # the country's total: the known count scaled up by the imputed share
    total_population = pool_population + missing_population
    scale = 1.0 + (imputed_cases / known_cases if known_cases else 0.0)
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
            float(known_cases),
            scale,
            factor,
            sigma,
            float(pool_cases),
            total_population / pool_population if pool_population else 1.0,
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
