"""The scorecards' per-period sums, computed where the cells are (the hub's database or
Spark).

``quality`` scores each country, disease and period from two sets of cells: the current
picture at ``as_of`` (``picture_expr.current``) and every cell received by ``as_of``,
replaced or not (for first arrivals and repetitions). Reading either into Python takes
minutes and gigabytes at regional scale (millions of cells), so the sums are taken by
``GROUP BY`` where the cells are and only one row per country, disease and period (a few
thousand) comes back, with what ``quality`` needs to finish the row in Python
(completeness against the registry, delay, the jump over consecutive periods).

The sums are Ibis expressions (``picture_expr``): the same ones run on SQLite,
PostgreSQL and Spark. Cell keys are compared null-safe (``IS NOT DISTINCT FROM``) and
grouped with ``GROUP BY``, which puts the cells without a sex or age band together, as
Python's tuples with ``None`` did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import ibis
import ibis.expr.types as ir
from sqlalchemy import Engine

from epibridge.hub.picture_expr import (
    CELL_KEY,
    Filters,
    Picture,
    Source,
    as_date,
    as_instant,
    current,
    live,
    received,
    same_key,
    source_of,
)

__all__ = ["CELL_KEY", "PeriodSums", "areas_seen", "as_date", "period_sums", "source_of"]

#: The columns of the current cells the sums read (narrow rows sort faster in the window).
_CURRENT = (
    *CELL_KEY,
    "area_level",
    "period_start",
    "period_end",
    "cases",
    "cases_suppressed",
    "deaths",
)
_FIRST = ("area", "period", "period_start", "period_end", "area_level", "source_row")
_BATCH = 100


@dataclass(frozen=True)
class PeriodSums:
    """One country, disease and period of the current picture, summed over its cells.

    ``period_start``, ``period_end`` and ``area_level`` are those of the period's first
    cell in the picture's order (area, period start, source row), as the scorecards
    always took them; ``arrived`` is the first time any received cell of the period came.
    """

    country: str
    disease: str
    period: str
    period_start: date
    period_end: date
    area_level: int
    areas_reported: int
    cells: int
    cells_suppressed: int
    duplicate_cells: int
    repeated_cells: int
    deaths_over_cases: int
    total_cells_cases: int  # over the cells without sex or age band; None counts 0
    all_cells_cases: int  # over every cell; None counts 0
    arrived: datetime | None
    first_area: str = ""
    first_source_row: int = 0


def _flag(condition: ir.BooleanValue) -> ir.IntegerValue:
    return ibis.ifelse(condition, 1, 0)


def _revised(p: Picture) -> ir.Table:
    """The submissions named in ``revision_of`` by a submission received by ``at`` that
    sent count cells (the scorecards have always read revisions off the received cells,
    so a revision without counts does not count as one here)."""
    s, c = p.submissions, p.counts
    sent = (c.submission_id == s.submission_id).any()
    return s.filter(s.received_at <= p.at, s.revision_of.notnull(), sent).select(
        revised=s.revision_of
    )


def _repetitions(p: Picture) -> ir.Table:
    """Per cell key received by ``at`` that was sent more than once: ``duplicates`` (the
    submissions that sent it more than once), ``senders`` (the submissions not revised
    that sent it) and ``uncertain`` (1 when ``duplicates`` may be more than 1); only keys
    where either says something.

    One ``GROUP BY`` over the cells: a key sent ``n`` times by ``u`` submissions was sent
    more than once by none of them when ``n == u``, by exactly one when ``n == u + 1``;
    beyond that only ``_repetitions_exact`` can say (rare: a cell sent three times in one
    submission, or twice by each of two)."""
    cells = received(p, (*CELL_KEY, "submission_id"))
    revised = _revised(p).revised
    kept = ibis.ifelse(cells.submission_id.isin(revised), ibis.null("string"), cells.submission_id)
    grouped = cells.group_by(list(CELL_KEY)).aggregate(
        excess=cells.count() - cells.submission_id.nunique(), senders=kept.nunique()
    )
    return grouped.filter((grouped.excess > 0) | (grouped.senders > 1)).select(
        *CELL_KEY,
        duplicates=_flag(grouped.excess > 0),
        senders=grouped.senders,
        uncertain=_flag(grouped.excess > 1),
    )


def _repetitions_exact(p: Picture) -> ir.Table:
    """``_repetitions`` counted per submission first (two ``GROUP BY``: slower, exact)."""
    cells = received(p, (*CELL_KEY, "submission_id"))
    per = cells.group_by([*CELL_KEY, "submission_id"]).aggregate(n=cells.count())
    revised = _revised(p).revised
    grouped = per.group_by(list(CELL_KEY)).aggregate(
        duplicates=_flag(per.n > 1).sum(),
        senders=ibis.ifelse(per.submission_id.isin(revised), 0, 1).sum(),
    )
    return grouped.filter((grouped.duplicates > 0) | (grouped.senders > 1)).mutate(
        uncertain=ibis.literal(0)
    )


def _sums(p: Picture, exact: bool) -> ir.Table:
    """One row per country, disease and period of the current picture at ``at``, ordered
    by country, disease and first area (the engine's collation, as the picture's);
    ``exact``: count duplicates with ``_repetitions_exact``."""
    cur = current(p, _CURRENT)
    rep = (_repetitions_exact if exact else _repetitions)(p)
    joined = cur.left_join(rep, same_key(cur, rep)).select(
        *[cur[name] for name in _CURRENT],
        duplicates=rep.duplicates,
        senders=rep.senders,
        uncertain=rep.uncertain,
    )
    j = joined
    total = j.sex.isnull() & j.age_band.isnull()
    cases = j.cases.fill_null(0)
    sums = j.group_by(["country", "disease", "period"]).aggregate(
        first_area=j.area.min(),
        start_lo=j.period_start.min(),
        start_hi=j.period_start.max(),
        end_lo=j.period_end.min(),
        end_hi=j.period_end.max(),
        level_lo=j.area_level.min(),
        level_hi=j.area_level.max(),
        areas=j.area.nunique(),
        cells=j.count(),
        suppressed=_flag(j.cases_suppressed).sum(),
        duplicates=j.duplicates.sum().fill_null(0),
        repeated=_flag(j.senders > 1).sum(),
        deaths_over=_flag(j.deaths > j.cases).sum(),
        total_cases=ibis.ifelse(total, cases, 0).sum(),
        all_cases=cases.sum(),
        uncertain=j.uncertain.sum().fill_null(0),
    )
    return sums.order_by(["country", "disease", "first_area", "period"])


def _arrivals(p: Picture) -> ir.Table:
    """The first time a cell of each country, disease and period was received by ``at``."""
    cells = received(p, ("country", "disease", "period"))
    return cells.group_by(["country", "disease", "period"]).aggregate(first=cells.received_at.min())


def _first_cells(
    source: Source, p: Picture, wanted: Sequence[PeriodSums]
) -> dict[tuple[str, str, str], PeriodSums]:
    """The periods of ``wanted`` with the start, end, level and source row of their first
    cell read from the cell itself (for a period whose cells disagree on them, or whose
    order against another period depends on it): a query per country and disease (per
    ``_BATCH`` periods, to keep the condition short)."""
    by_series: dict[tuple[str, str], list[PeriodSums]] = defaultdict(list)
    for row in wanted:
        by_series[(row.country, row.disease)].append(row)
    exact: dict[tuple[str, str, str], PeriodSums] = {}
    batches = [
        (country, disease, rows[i : i + _BATCH])
        for (country, disease), rows in by_series.items()
        for i in range(0, len(rows), _BATCH)
    ]
    for country, disease, rows in batches:
        cur = current(p, _FIRST, Filters(countries=[country], diseases=[disease]))
        chosen = [(cur.period == r.period) & (cur.area == r.first_area) for r in rows]
        condition = chosen[0]
        for one in chosen[1:]:
            condition = condition | one
        query = cur.filter(condition).order_by(["period", "area", "period_start", "source_row"])
        firsts: dict[str, dict[str, Any]] = {}
        for cell in source.rows(query):
            firsts.setdefault(cell["period"], cell)
        for r in rows:
            cell = firsts[r.period]
            exact[(country, disease, r.period)] = replace(
                r,
                period_start=as_date(cell["period_start"]),
                period_end=as_date(cell["period_end"]),
                area_level=int(cell["area_level"]),
                first_source_row=int(cell["source_row"]),
            )
    return exact


def period_sums(where: Engine | Source, at: datetime) -> list[PeriodSums]:
    """Every country, disease and period of the current picture at ``at`` (UTC), summed
    where the cells are, ordered by country, disease and the start of the period's first
    cell (periods starting the same day: in the order of their first cells)."""
    source = source_of(where)
    p = source.picture(at)
    rows: list[PeriodSums] = []
    uneven: list[PeriodSums] = []
    arrived = {
        (r["country"], r["disease"], r["period"]): as_instant(r["first"])
        for r in source.rows(_arrivals(p))
    }
    result = source.rows(_sums(p, exact=source.hashes))
    if not source.hashes and any(raw["uncertain"] for raw in result):  # recount exactly
        result = source.rows(_sums(p, exact=True))
    for raw in result:
        key = (raw["country"], raw["disease"], raw["period"])
        row = PeriodSums(
            country=raw["country"],
            disease=raw["disease"],
            period=raw["period"],
            first_area=raw["first_area"],
            period_start=as_date(raw["start_lo"]),
            period_end=as_date(raw["end_lo"]),
            area_level=int(raw["level_lo"]),
            areas_reported=int(raw["areas"]),
            cells=int(raw["cells"]),
            cells_suppressed=int(raw["suppressed"]),
            duplicate_cells=int(raw["duplicates"]),
            repeated_cells=int(raw["repeated"]),
            deaths_over_cases=int(raw["deaths_over"]),
            total_cells_cases=int(raw["total_cases"]),
            all_cells_cases=int(raw["all_cases"]),
            arrived=arrived.get(key),
        )
        rows.append(row)
        low = (raw["start_lo"], raw["end_lo"], raw["level_lo"])
        if low != (raw["start_hi"], raw["end_hi"], raw["level_hi"]):
            uneven.append(row)
    exact = _first_cells(source, p, uneven)
    rows = [exact.get((r.country, r.disease, r.period), r) for r in rows]
    # Periods that start the same day with the same first area are ordered by the
    # source row of their first cell: read it for them (rare: weeks and months).
    same: dict[tuple[Any, ...], list[PeriodSums]] = defaultdict(list)
    for r in rows:
        same[(r.country, r.disease, r.period_start, r.first_area)].append(r)
    tied = [r for group in same.values() if len(group) > 1 for r in group]
    exact.update(_first_cells(source, p, tied))
    rows = [exact.get((r.country, r.disease, r.period), r) for r in rows]
    # The engine's order of first areas (its collation) breaks ties of start days.
    place: dict[tuple[str, str, str], int] = {}
    for r in rows:
        place.setdefault((r.country, r.disease, r.first_area), len(place))
    return sorted(
        rows,
        key=lambda r: (
            r.country,
            r.disease,
            r.period_start,
            place[(r.country, r.disease, r.first_area)],
            r.first_source_row,
        ),
    )


def areas_seen(
    where: Engine | Source, at: datetime, countries: Sequence[str]
) -> dict[tuple[str, int], set[str]]:
    """The areas of the current picture at ``at`` of each of ``countries``, per country
    and area level (what a country ever reported at a level the registry does not hold).

    Every area of a live submission's cells is an area of the picture (area is part of
    a cell's key), so one ``GROUP BY`` over those cells gives them, without ranking;
    only a country that sent an area at several levels needs the picture's own cells
    (which level the cell in use has)."""
    if not countries:
        return {}
    source = source_of(where)
    p = source.picture(at)
    alive = live(p)
    c = p.counts.filter(p.counts.country.isin(list(countries)))
    cells = c.join(alive, c.submission_id == alive.submission_id).select(
        c.country, c.area, c.area_level
    )
    query = cells.group_by(["country", "area"]).aggregate(
        low=cells.area_level.min(), high=cells.area_level.max()
    )
    seen: dict[tuple[str, int], set[str]] = defaultdict(set)
    mixed: set[str] = set()
    for r in source.rows(query):
        if r["low"] != r["high"]:
            mixed.add(r["country"])
        seen[(r["country"], int(r["low"]))].add(r["area"])
    if mixed:
        for key in [key for key in seen if key[0] in mixed]:
            del seen[key]
        cur = current(p, ("country", "area_level", "area"), Filters(countries=sorted(mixed)))
        for r in source.rows(cur.distinct()):
            seen[(r["country"], int(r["area_level"]))].add(r["area"])
    return dict(seen)
