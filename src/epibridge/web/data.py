"""What the pages read: only the weeks and countries a page shows.

Every query is bounded. Which diseases exist comes from the agreements (not a scan of
the counts); the latest week is one index probe per country and disease
(``ix_regional_counts_series``: country, disease, period_start); cells come from
``regional.cells_for_burden`` (the rows of ``counts_as_of`` in the columns the burden
table reads) with period bounds applied in the SQL (``Filters``), so a
one-week map reads one week (plus the month around it for countries releasing
monthly), and a curve reads its window, never the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import pyarrow as pa
from sqlalchemy import func, select

from epibridge.hub.burden import burden
from epibridge.hub.intake import HubContext
from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import BURDEN_CELLS, COUNTS_AS_OF, cells_for_burden
from epibridge.hub.regional_context import burden_inputs
from epibridge.hub.store import read_only
from epibridge.hub.tables import regional_counts_table, submissions_table
from epibridge.model.errors import SourceError
from epibridge.registry.expansion import expansion_factors
from epibridge.web.viewer import FolderError

#: No cells, in the columns ``cells`` returns.
EMPTY = pa.schema([COUNTS_AS_OF.field(name) for name in BURDEN_CELLS]).empty_table()
#: How far back a monthly period may start and still hold a week's first day.
MONTH_REACH = timedelta(days=31)


def countries_in_scope(context: HubContext, visible: frozenset[str] | None) -> list[str]:
    """Countries that sent the hub something and that the viewer may see."""
    s = submissions_table
    with read_only(context.store.engine).connect() as c:
        senders = {r[0] for r in c.execute(select(s.c.origin_country).distinct())}
    return sorted(senders if visible is None else senders & visible)


def diseases(context: HubContext, countries: Iterable[str]) -> list[str]:
    """Diseases the agreements of ``countries`` cover (the agreements say what may come)."""
    wanted = set(countries)
    found = {d for a, _ in context.agreements.values() if a.sender in wanted for d in a.diseases}
    return sorted(found)


def latest_start(context: HubContext, countries: Iterable[str], disease: str) -> date | None:
    """The first day of the latest period any of ``countries`` sent for ``disease``."""
    t = regional_counts_table
    latest: date | None = None
    with read_only(context.store.engine).connect() as c:
        for country in countries:
            found = c.execute(
                select(func.max(t.c.period_start)).where(
                    t.c.country == country, t.c.disease == disease
                )
            ).scalar_one()
            if isinstance(found, str):
                found = date.fromisoformat(found)
            if found is not None and (latest is None or found > latest):
                latest = found
    return latest


def cells(
    context: HubContext,
    at: datetime,
    countries: list[str],
    disease: str,
    first: date,
    last: date,
) -> pa.Table:
    """The cells of ``countries`` and ``disease`` whose period starts in [first, last], in
    the columns the burden table reads (``regional.cells_for_burden``)."""
    if not countries:
        return EMPTY
    filters = Filters(countries=countries, diseases=[disease], period_from=first, period_to=last)
    return cells_for_burden(context.store.engine, at, filters)


def week_cells(
    context: HubContext, at: datetime, countries: list[str], disease: str, week: date
) -> pa.Table:
    """The cells covering the week starting ``week``: that week, or the month holding it.

    Countries whose agreements all release weekly are read for that one week; the others
    from ``MONTH_REACH`` before it (a month that started earlier may hold the week)."""
    weekly = {a.sender for a, _ in context.agreements.values() if a.time_resolution == "week"} - {
        a.sender for a, _ in context.agreements.values() if a.time_resolution != "week"
    }
    parts = [
        cells(context, at, [c for c in countries if c in weekly], disease, week, week),
        cells(
            context,
            at,
            [c for c in countries if c not in weekly],
            disease,
            week - MONTH_REACH,
            week,
        ),
    ]
    table = pa.concat_tables([p for p in parts if p.num_rows] or parts[:1])
    if table.num_rows == 0:
        return table
    keep = [
        start <= week <= end
        for start, end in zip(
            table.column("period_start").to_pylist(),
            table.column("period_end").to_pylist(),
            strict=True,
        )
    ]
    return table.filter(pa.array(keep, pa.bool_()))


def burden_of(
    context: HubContext, table: pa.Table, at: datetime, *, corrected: bool = True
) -> pa.Table:
    """Reported and corrected incidence of ``table``'s cells (``hub/burden.py``) with the
    reporting and populations the hub held at ``at``; the corrected intervals only when
    the page shows them (``corrected``)."""
    try:
        factors = expansion_factors(context.folder)
    except SourceError as error:
        raise FolderError(str(error)) from None
    extra = burden_inputs(context.store.engine, at, table)
    return burden(table, factors, corrected_intervals=corrected, **extra)
