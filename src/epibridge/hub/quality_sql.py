"""The scorecards' per-period sums, computed in the database (SQLite and PostgreSQL).

``quality`` scores each country, disease and period from two sets of cells: the current
picture at ``as_of`` (``regional._current``: rank 1 is the cell in use) and every cell
received by ``as_of``, replaced or not (for first arrivals and repetitions). Reading
either into Python takes minutes and gigabytes at regional scale (millions of cells), so
the sums are taken by ``GROUP BY`` here and only one row per country, disease and period
(a few thousand) comes back, with what ``quality`` needs to finish the row in Python
(completeness against the registry, delay, the jump over consecutive periods).

Cell keys are compared null-safe (``IS NOT DISTINCT FROM``) and grouped with ``GROUP BY``,
which puts the cells without a sex or age band together, as Python's tuples with ``None``
did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, distinct, exists, func, literal, or_, select
from sqlalchemy.orm import aliased

from epibridge.hub.regional import Filters, _current, live_submissions
from epibridge.hub.tables import regional_counts_table, submissions_table

#: A cell's key: a cell sent again has the same key (``regional._KEY``).
CELL_KEY = ("country", "area", "disease", "period_type", "calendar", "period", "sex", "age_band")
_NULLABLE = ("sex", "age_band")
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


def as_date(value: Any) -> date:
    """A date as the driver gives it (SQLite may give the ISO text of an aggregate)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _revised(at: datetime) -> Any:
    """The submissions named in ``revision_of`` by a submission received by ``at`` that
    sent count cells (the scorecards have always read revisions off the received cells,
    so a revision without counts does not count as one here)."""
    revision = aliased(submissions_table)
    cells = aliased(regional_counts_table)
    return select(revision.c.revision_of).where(
        revision.c.received_at <= at,
        revision.c.revision_of.is_not(None),
        exists().where(cells.c.submission_id == revision.c.submission_id),
    )


def _repetitions(at: datetime) -> Any:
    """Per cell key received by ``at`` that was sent more than once: ``duplicates`` (the
    submissions that sent it more than once), ``senders`` (the submissions not revised
    that sent it) and ``uncertain`` (1 when ``duplicates`` may be more than 1); only keys
    where either says something.

    One ``GROUP BY`` over the cells: a key sent ``n`` times by ``u`` submissions was sent
    more than once by none of them when ``n == u``, by exactly one when ``n == u + 1``;
    beyond that only ``_repetitions_exact`` can say (rare: a cell sent three times in one
    submission, or twice by each of two)."""
    c, s = regional_counts_table, submissions_table
    kept = case((c.c.submission_id.in_(_revised(at)), None), else_=c.c.submission_id)
    excess = func.count() - func.count(distinct(c.c.submission_id))
    senders = func.count(distinct(kept))
    return (
        select(
            *[c.c[k] for k in CELL_KEY],
            case((excess > 0, 1), else_=0).label("duplicates"),
            senders.label("senders"),
            case((excess > 1, 1), else_=0).label("uncertain"),
        )
        .join(s, s.c.submission_id == c.c.submission_id)
        .where(s.c.received_at <= at)
        .group_by(*[c.c[k] for k in CELL_KEY])
        .having(or_(excess > 0, senders > 1))
        .subquery("repetitions")
    )


def _repetitions_exact(at: datetime) -> Any:
    """``_repetitions`` counted per submission first (two ``GROUP BY``: slower, exact)."""
    c, s = regional_counts_table, submissions_table
    per_submission = (
        select(*[c.c[k] for k in CELL_KEY], c.c.submission_id, func.count().label("n"))
        .join(s, s.c.submission_id == c.c.submission_id)
        .where(s.c.received_at <= at)
        .group_by(*[c.c[k] for k in CELL_KEY], c.c.submission_id)
        .subquery("per_submission")
    )
    p = per_submission.c
    duplicates = func.sum(case((p.n > 1, 1), else_=0))
    senders = func.sum(case((p.submission_id.in_(_revised(at)), 0), else_=1))
    return (
        select(
            *[p[k] for k in CELL_KEY],
            duplicates.label("duplicates"),
            senders.label("senders"),
            literal(0).label("uncertain"),
        )
        .group_by(*[p[k] for k in CELL_KEY])
        .having(or_(duplicates > 0, senders > 1))
        .subquery("repetitions")
    )


def _sums(at: datetime, exact: bool) -> Any:
    """One row per country, disease and period of the current picture at ``at``, ordered
    by country, disease and first area (the database's collation, as the picture's);
    ``exact``: count duplicates with ``_repetitions_exact``."""
    cur = _current(at, Filters(), _CURRENT)
    rep = _repetitions_exact(at) if exact else _repetitions(at)
    same_key = and_(
        *[
            cur.c[k].is_not_distinct_from(rep.c[k]) if k in _NULLABLE else cur.c[k] == rep.c[k]
            for k in CELL_KEY
        ]
    )
    total = and_(cur.c.sex.is_(None), cur.c.age_band.is_(None))
    cases = func.coalesce(cur.c.cases, 0)
    return (
        select(
            cur.c.country,
            cur.c.disease,
            cur.c.period,
            func.min(cur.c.area).label("first_area"),
            func.min(cur.c.period_start).label("start_lo"),
            func.max(cur.c.period_start).label("start_hi"),
            func.min(cur.c.period_end).label("end_lo"),
            func.max(cur.c.period_end).label("end_hi"),
            func.min(cur.c.area_level).label("level_lo"),
            func.max(cur.c.area_level).label("level_hi"),
            func.count(distinct(cur.c.area)).label("areas"),
            func.count().label("cells"),
            func.sum(case((cur.c.cases_suppressed, 1), else_=0)).label("suppressed"),
            func.coalesce(func.sum(rep.c.duplicates), 0).label("duplicates"),
            func.sum(case((rep.c.senders > 1, 1), else_=0)).label("repeated"),
            func.sum(case((cur.c.deaths > cur.c.cases, 1), else_=0)).label("deaths_over"),
            func.sum(case((total, cases), else_=0)).label("total_cases"),
            func.sum(cases).label("all_cases"),
            func.coalesce(func.sum(rep.c.uncertain), 0).label("uncertain"),
        )
        .select_from(cur.outerjoin(rep, same_key))
        .where(cur.c.rank == 1)
        .group_by(cur.c.country, cur.c.disease, cur.c.period)
        .order_by(cur.c.country, cur.c.disease, "first_area", cur.c.period)
    )


def _arrivals(at: datetime) -> Any:
    """The first time a cell of each country, disease and period was received by ``at``."""
    c, s = regional_counts_table, submissions_table
    return (
        select(c.c.country, c.c.disease, c.c.period, func.min(s.c.received_at))
        .join(s, s.c.submission_id == c.c.submission_id)
        .where(s.c.received_at <= at)
        .group_by(c.c.country, c.c.disease, c.c.period)
    )


def _first_cells(
    connection: Connection, at: datetime, wanted: Sequence[PeriodSums]
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
        cur = _current(at, Filters(countries=[country], diseases=[disease]), _FIRST)
        query = (
            select(*[cur.c[name] for name in _FIRST])
            .where(
                cur.c.rank == 1,
                or_(*[and_(cur.c.period == r.period, cur.c.area == r.first_area) for r in rows]),
            )
            .order_by(cur.c.period, cur.c.area, cur.c.period_start, cur.c.source_row)
        )
        firsts: dict[str, Any] = {}
        for cell in connection.execute(query):
            firsts.setdefault(cell.period, cell)
        for r in rows:
            cell = firsts[r.period]
            exact[(country, disease, r.period)] = replace(
                r,
                period_start=as_date(cell.period_start),
                period_end=as_date(cell.period_end),
                area_level=int(cell.area_level),
                first_source_row=int(cell.source_row),
            )
    return exact


def period_sums(engine: Engine, at: datetime) -> list[PeriodSums]:
    """Every country, disease and period of the current picture at ``at`` (UTC), summed
    in the database, ordered by country, disease and the start of the period's first
    cell (periods starting the same day: in the order of their first cells)."""
    rows: list[PeriodSums] = []
    uneven: list[PeriodSums] = []
    with engine.connect() as connection:
        arrived = {
            (country, disease, period): first
            for country, disease, period, first in connection.execute(_arrivals(at))
        }
        # PostgreSQL hashes the two GROUP BY of the exact count faster than it sorts for
        # count(DISTINCT); SQLite sorts for both, and the one pass is the faster there
        hashed = connection.dialect.name != "sqlite"
        result = connection.execute(_sums(at, exact=hashed)).fetchall()
        if not hashed and any(raw.uncertain for raw in result):  # duplicates uncertain: recount
            result = connection.execute(_sums(at, exact=True)).fetchall()
        for raw in result:
            row = PeriodSums(
                country=raw.country,
                disease=raw.disease,
                period=raw.period,
                first_area=raw.first_area,
                period_start=as_date(raw.start_lo),
                period_end=as_date(raw.end_lo),
                area_level=int(raw.level_lo),
                areas_reported=int(raw.areas),
                cells=int(raw.cells),
                cells_suppressed=int(raw.suppressed),
                duplicate_cells=int(raw.duplicates),
                repeated_cells=int(raw.repeated),
                deaths_over_cases=int(raw.deaths_over),
                total_cells_cases=int(raw.total_cases),
                all_cells_cases=int(raw.all_cases),
                arrived=arrived.get((raw.country, raw.disease, raw.period)),
            )
            rows.append(row)
            if (raw.start_lo, raw.end_lo, raw.level_lo) != (raw.start_hi, raw.end_hi, raw.level_hi):
                uneven.append(row)
        exact = _first_cells(connection, at, uneven)
        rows = [exact.get((r.country, r.disease, r.period), r) for r in rows]
        # Periods that start the same day with the same first area are ordered by the
        # source row of their first cell: read it for them (rare: weeks and months).
        same: dict[tuple[Any, ...], list[PeriodSums]] = defaultdict(list)
        for r in rows:
            same[(r.country, r.disease, r.period_start, r.first_area)].append(r)
        tied = [r for group in same.values() if len(group) > 1 for r in group]
        exact.update(_first_cells(connection, at, tied))
    rows = [exact.get((r.country, r.disease, r.period), r) for r in rows]
    # The database's order of first areas (its collation) breaks ties of start days.
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
    engine: Engine, at: datetime, countries: Sequence[str]
) -> dict[tuple[str, int], set[str]]:
    """The areas of the current picture at ``at`` of each of ``countries``, per country
    and area level (what a country ever reported at a level the registry does not hold).

    Every area of a live submission's cells is an area of the picture (area is part of
    a cell's key), so one ``GROUP BY`` over those cells gives them, without ranking;
    only a country that sent an area at several levels needs the picture's own cells
    (which level the cell in use has)."""
    if not countries:
        return {}
    live = live_submissions(at)
    c = regional_counts_table
    query = (
        select(c.c.country, c.c.area, func.min(c.c.area_level), func.max(c.c.area_level))
        .join(live, live.c.submission_id == c.c.submission_id)
        .where(c.c.country.in_(list(countries)))
        .group_by(c.c.country, c.c.area)
    )
    seen: dict[tuple[str, int], set[str]] = defaultdict(set)
    mixed: set[str] = set()
    with engine.connect() as connection:
        for country, area, low, high in connection.execute(query):
            if low != high:
                mixed.add(country)
            seen[(country, int(low))].add(area)
        if mixed:
            for key in [key for key in seen if key[0] in mixed]:
                del seen[key]
            cur = _current(at, Filters(countries=sorted(mixed)), ("country", "area_level", "area"))
            exact = (
                select(cur.c.country, cur.c.area_level, cur.c.area)
                .where(cur.c.rank == 1)
                .distinct()
            )
            for country, level, area in connection.execute(exact):
                seen[(country, int(level))].add(area)
    return dict(seen)
