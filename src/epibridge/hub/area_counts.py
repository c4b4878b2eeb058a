"""Whole counts per area and period, and the population each area is divided by.

Agreements release counts either as area totals or split by sex and age band. Maps,
burden, scans and detectors need one number per area and period: the total cell where a
country sent one, else the sum of its strata. A part withheld by disclosure control (1 to
k-1 cases) leaves the whole count unknown; ``cases_known`` keeps the sum of what is
known (a lower bound) and ``withheld`` says a part is missing, so each consumer decides
(a scan may count the known part, a detector or a rate must treat the count as missing).

Populations come from the figures the countries sent (``regional_context.
denominators_as_of``: each country's own count of its people) where a country sent a
figure for the area, else from the geography registry: the area's figure for the
period's year, or the nearest year held (the later one on a tie).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pyarrow as pa

from epibridge.registry.geography import population, to_current


@dataclass
class AreaCount:
    country: str
    area: str
    area_level: int
    disease: str
    period_type: str
    period: str
    period_start: date
    period_end: date
    calendar: str | None = None
    cases_known: int = 0  # the sum of the known parts
    withheld: bool = False  # a part (or the total) was withheld for disclosure control
    from_total: bool = False  # a total cell was sent (else: the sum of strata)
    submissions: tuple[str, ...] = ()

    @property
    def cases(self) -> int | None:
        """The whole count, or None when a part of it was withheld."""
        return None if self.withheld else self.cases_known


#: The columns of ``regional.counts_as_of`` that whole counts need (``regional`` reads
#: only these when a page needs no other lineage than the submission).
CELL_COLUMNS = (
    "country",
    "area",
    "area_level",
    "disease",
    "period_type",
    "period",
    "period_start",
    "period_end",
    "calendar",
    "sex",
    "age_band",
    "cases",
    "cases_suppressed",
    "submission_id",
)


def area_counts(cells: pa.Table | Iterable[dict[str, Any]]) -> list[AreaCount]:
    """One whole count per (country, area, disease, period type, period) of ``cells``
    (rows of ``regional.counts_as_of``), in a stable order."""
    rows = (
        cells.select([c for c in CELL_COLUMNS if c in cells.column_names]).to_pylist()
        if isinstance(cells, pa.Table)
        else cells
    )
    totals: dict[tuple[str, ...], AreaCount] = {}
    strata: dict[tuple[str, ...], AreaCount] = {}
    for r in rows:
        key = (r["country"], r["area"], r["disease"], r["period_type"], r["period"])
        is_total = r["sex"] is None and r["age_band"] is None
        target = totals if is_total else strata
        count = target.get(key)
        if count is None:
            count = target[key] = AreaCount(
                r["country"],
                r["area"],
                int(r["area_level"]),
                r["disease"],
                r["period_type"],
                r["period"],
                r["period_start"],
                r["period_end"],
                r.get("calendar"),
                from_total=is_total,
            )
        if r["cases_suppressed"] or r["cases"] is None:
            count.withheld = True
        else:
            count.cases_known += max(int(r["cases"]), 0)
        if r.get("submission_id") and r["submission_id"] not in count.submissions:
            count.submissions = (*count.submissions, r["submission_id"])
    merged = {**strata, **totals}  # a total, where sent, wins over the sum of its strata
    return sorted(
        merged.values(), key=lambda c: (c.country, c.disease, c.period_start, c.area, c.period)
    )


def whole_cases(counts: Iterable[AreaCount]) -> dict[tuple[str, str, str], int]:
    """Known cases per (country, disease, period type): each period's whole counts summed
    at the coarsest area level the country sent for that period, so that neither strata
    beside their total nor two levels of the same place add up twice."""
    by_period: dict[tuple[str, str, str, str], list[AreaCount]] = defaultdict(list)
    for c in counts:
        by_period[(c.country, c.disease, c.period_type, c.period)].append(c)
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    for (country, disease, period_type, _), group in by_period.items():
        level = min(c.area_level for c in group)
        totals[(country, disease, period_type)] += sum(
            c.cases_known for c in group if c.area_level == level
        )
    return dict(totals)


def on_current_units(counts: list[AreaCount], on: date) -> list[AreaCount]:
    """The same counts re-keyed to the units valid on ``on``: a retired unit's counts go
    to its successors (the registry's crosswalk, e.g. Viet Nam's 2025 merger of 63
    provinces into 34), so that a series keeps its history across a boundary change.
    Successor shares below 1 (a split) are rounded to whole cases; counts that land on
    the same unit and period are added (withheld if any part was). Areas the registry
    does not know stay as they are."""
    merged: dict[tuple[str, str, str, str, str], AreaCount] = {}
    successors: dict[str, list[tuple[str, float]]] = {}
    borrowed: set[tuple[str, str, str, str, str]] = set()  # keys holding the caller's object
    for c in counts:
        targets = successors.get(c.area)
        if targets is None:
            try:
                targets = to_current(c.area, on) or [(c.area, 1.0)]
            except KeyError:
                targets = [(c.area, 1.0)]
            successors[c.area] = targets
        if targets == [(c.area, 1.0)]:
            key = (c.country, c.area, c.disease, c.period_type, c.period)
            if key not in merged:
                merged[key] = c  # unchanged and alone so far: no copy needed
                borrowed.add(key)
                continue
        for code, weight in targets:
            key = (c.country, code, c.disease, c.period_type, c.period)
            into = merged.get(key)
            cases = c.cases_known if weight == 1.0 else round(c.cases_known * weight)
            if into is None:
                merged[key] = replace(c, area=code, cases_known=cases)
            else:
                if key in borrowed:  # never change the caller's counts
                    merged[key] = into = replace(into)
                    borrowed.discard(key)
                into.cases_known += cases
                into.withheld = into.withheld or c.withheld
                into.from_total = into.from_total and c.from_total
                into.submissions = tuple(dict.fromkeys((*into.submissions, *c.submissions)))
    return sorted(
        merged.values(), key=lambda c: (c.country, c.disease, c.period_start, c.area, c.period)
    )


@dataclass(frozen=True)
class Population:
    value: int
    year: int
    source: str


class PopulationLookup:
    """The population of an area for a year (nearest year held): the figures a country
    sent for the area (``sent``: rows of ``denominators_as_of``; totals only, no sex or
    age band) where there are any, else the registry's."""

    def __init__(self, countries: Iterable[str], sent: pa.Table | None = None) -> None:
        self._by_area: dict[str, list[Population]] = defaultdict(list)
        self._memo: dict[tuple[str, int], Population | None] = {}
        wanted = set(countries)
        own: dict[str, list[Population]] = defaultdict(list)
        for row in [] if sent is None else sent.to_pylist():
            if (
                row["country"] not in wanted
                or row["age_band"] is not None
                or row["sex"] is not None
            ):
                continue
            source = f"{row['source']} (sent by {row['country']})"
            own[row["area"]].append(Population(int(row["population"]), int(row["year"]), source))
        for country in wanted:
            for row in population(country):
                if row.code not in own:
                    self._by_area[row.code].append(Population(row.population, row.year, row.source))
        self._by_area.update(own)

    def __call__(self, area: str, year: int) -> Population | None:
        key = (area, year)
        if key in self._memo:
            return self._memo[key]
        known = self._by_area.get(area)
        best = min(known, key=lambda p: (abs(p.year - year), -p.year)) if known else None
        found = best if best is not None and best.value > 0 else None
        self._memo[key] = found
        return found
