"""The hub's regional tables: every accepted release, row by row, and what was known when.

``insert_payload`` adds the rows of a submission in the transaction that stores the
submission itself, so a submission the hub acknowledged is always integrated. Rows are
never updated or deleted: each keeps its ``submission_id`` and its ``source_row`` (its
position in the released part), and through the submission the agreement and origin.

What the hub knew at a moment ``at`` (**as-of**) is a query:

1. a submission is *live* at ``at`` if it was received at or before ``at`` and no
   submission received at or before ``at`` names it in ``revision_of`` (a correction
   replaces the whole earlier submission, so rows it dropped are dropped);
2. among the live submissions' counts, a cell (country, area, disease, period type,
   calendar, period, sex, age band) reported by several takes its value from the one
   received last.

``at`` defaults to now: the current regional picture. Every row of the answer carries its
lineage (submission, agreement, received time, source row).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Table,
    and_,
    case,
    func,
    insert,
    select,
)
from sqlalchemy import column as sql_column

from epibridge.hub.area_counts import CELL_COLUMNS, PopulationLookup
from epibridge.hub.log import ALWAYS_DIGESTED, RowsDigest
from epibridge.hub.payload import CASE_STRUCTURE, Payload
from epibridge.hub.picture_expr import (
    DatabaseSource,
    Filters,
    Source,
    current_table,
    live,
    ranked,
    source_of,
)
from epibridge.hub.store import read_only
from epibridge.hub.tables import (
    regional_cases_table,
    regional_counts_table,
    regional_denominators_table,
    regional_reporting_table,
    submission_receipts_table,
    submissions_table,
    utc,
)

BATCH = 10_000
_COUNT_COLUMNS = tuple(
    c.name for c in regional_counts_table.columns if c.name not in ("row_id", "submission_id")
)


def _arrow_batches(path: Path, digest: RowsDigest, submission_id: str) -> Iterator[pa.Table]:
    """The rows of a released Parquet part as tables in the digest's columns and types,
    with the submission id and each row's position in the part, ``BATCH`` at a time."""
    offset = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
        t = pa.Table.from_batches([batch])
        n = t.num_rows
        columns = []
        for field in digest.schema:
            if field.name == "submission_id":
                columns.append(pa.array([submission_id] * n, pa.string()))
            elif field.name == "source_row":
                columns.append(pa.array(range(offset, offset + n), pa.int64()))
            elif field.name in t.column_names:
                column = t.column(field.name)
                if pa.types.is_dictionary(column.type):
                    column = column.cast(column.type.value_type)
                columns.append(column.cast(field.type))
            else:
                columns.append(pa.nulls(n, field.type))
        offset += n
        yield pa.Table.from_arrays(columns, schema=digest.schema)


def _bulk_insert(connection: Connection, table: Table, data: pa.Table) -> None:
    """Insert an Arrow table's rows: COPY on PostgreSQL, one executemany on SQLite (the
    per-row parameter handling of a Core insert cost three times the database's work)."""
    names = data.column_names
    columns = [data.column(n).to_pylist() for n in names]
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
        with cursor.copy(statement) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
        return
    converted = []
    for field, column in zip(data.schema, columns, strict=True):
        if pa.types.is_date32(field.type):
            converted.append([None if v is None else v.isoformat() for v in column])
        elif pa.types.is_boolean(field.type):
            converted.append([None if v is None else int(v) for v in column])
        else:
            converted.append(column)
    marks = ", ".join("?" for _ in names)
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})",
        list(zip(*converted, strict=True)),
    )


def insert_payload(connection: Connection, submission_id: str, payload: Payload) -> dict[str, Any]:
    """Insert every released row of ``payload``; the number and digest of the rows of
    each table (``log.RowsDigest``), for the submission's log leaf."""
    counts, cases = RowsDigest(regional_counts_table), RowsDigest(regional_cases_table)
    digests = {"counts": counts, "cases": cases}
    for name, path, table in (
        ("counts", payload.counts, regional_counts_table),
        ("reporting", payload.reporting, regional_reporting_table),
        ("denominators", payload.denominators, regional_denominators_table),
    ):
        if path is None:
            continue
        digest = digests.setdefault(name, RowsDigest(table))
        for data in _arrow_batches(path, digest, submission_id):
            _bulk_insert(connection, table, data)
            digest.add_table(data)
    if payload.cases is not None:
        offset = 0
        for batch in pq.ParquetFile(payload.cases).iter_batches(batch_size=BATCH):
            rows = pa.Table.from_batches([batch]).to_pylist()
            values = []
            for i, row in enumerate(rows):
                other = {k: v for k, v in row.items() if k not in CASE_STRUCTURE and v is not None}
                values.append(
                    {
                        "submission_id": submission_id,
                        "source_row": offset + i,
                        **{c: row[c] for c in CASE_STRUCTURE},
                        "fields": json.dumps(other, sort_keys=True, default=str),
                    }
                )
            offset += len(rows)
            data = pa.Table.from_pylist(
                [{c: v.get(c) for c in cases.columns} for v in values], cases.schema
            )
            _bulk_insert(connection, regional_cases_table, data)
            cases.add_table(data)
    connection.execute(
        insert(submission_receipts_table).values(
            submission_id=submission_id, receipt=json.dumps(payload.receipt, sort_keys=True)
        )
    )
    found: dict[str, Any] = {}
    for name, digest in digests.items():
        if digest.rows or name in ALWAYS_DIGESTED:
            found[f"{name}_rows"] = digest.rows
            found[f"{name}_sha256"] = digest.hexdigest()
    return found


def live_submissions(engine: Engine, at: datetime) -> Any:
    """Submissions received by ``at`` and not replaced by a revision received by ``at``
    (``picture_expr.live``, compiled for ``engine``'s database), as a subquery of
    ``submission_id``, ``agreement_id`` and ``received_at``."""
    source = DatabaseSource(engine)
    s = submissions_table.c
    typed = [sql_column(c.name, c.type) for c in (s.submission_id, s.agreement_id, s.received_at)]
    return source.query(live(source.picture(at))).columns(*typed).subquery("live")


def _current(
    engine: Engine,
    at: datetime,
    filters: Filters,
    columns: Sequence[str] | None = None,
    totals_only: bool = False,
) -> Any:
    """The live cells at ``at`` with their ``rank`` (1: the cell the as-of picture uses)
    as a subquery, restricted by ``filters`` in the SQL; ``columns`` (default: every
    column and the lineage) keeps the rows the window sorts narrow; ``totals_only``: the
    total cells only. The window is ``picture_expr.ranked`` (the one the scorecards and
    Spark run) compiled to the database's SQL and typed here, so that its values come
    back as the tables' types (dates, booleans, instants in UTC) on every database."""
    source = DatabaseSource(engine)
    c = regional_counts_table
    lineage = columns is None
    names = (*_COUNT_COLUMNS, "submission_id") if columns is None else tuple(columns)
    typed = [sql_column(name, c.c[name].type) for name in names]
    if lineage:
        typed += [
            sql_column("agreement_id", submissions_table.c.agreement_id.type),
            sql_column("received_at", submissions_table.c.received_at.type),
        ]
    query = source.query(ranked(source.picture(at), names, filters, totals_only, lineage))
    return query.columns(*typed, sql_column("rank", Integer)).subquery("ranked")


def counts_as_of(engine: Engine, at: datetime, filters: Filters = Filters()) -> pa.Table:
    """The regional counts the hub knew at ``at``, each cell with its lineage."""
    at = utc(at, "the as-of time")
    sub = _current(engine, at, filters)
    query = (
        select(*[col for col in sub.c if col.name != "rank"])
        .where(sub.c.rank == 1)
        .order_by(sub.c.country, sub.c.disease, sub.c.area, sub.c.period_start, sub.c.source_row)
    )
    return _columns(engine, query, COUNTS_AS_OF)


#: The columns of the cells the burden table needs (``area_counts``): no lineage but the
#: submission, so the window sorts narrow rows and no time is read back.
BURDEN_CELLS = CELL_COLUMNS


def current_cells(
    engine: Engine | Source, at: datetime, filters: Filters, columns: Sequence[str]
) -> pa.Table:
    """The cells of ``counts_as_of`` (same rows, same order) in ``columns`` only (names of
    ``COUNTS_AS_OF`` other than the agreement and the received time): the window sorts
    narrower rows and no time is read back, which is most of the cost at regional scale.
    Summed where ``engine`` says: the hub's database, or Spark (``picture_expr``)."""
    at = utc(at, "the as-of time")
    schema = pa.schema([COUNTS_AS_OF.field(name) for name in columns])
    return current_table(source_of(engine), at, filters, schema)


def cells_for_burden(
    engine: Engine | Source, at: datetime, filters: Filters = Filters()
) -> pa.Table:
    """``current_cells`` in the ``BURDEN_CELLS`` columns: what ``burden`` reads."""
    return current_cells(engine, at, filters, BURDEN_CELLS)


PERIOD_TOTALS = pa.schema(
    [
        pa.field("country", pa.string()),
        pa.field("disease", pa.string()),
        pa.field("period_type", pa.string()),
        pa.field("period", pa.string()),
        pa.field("period_start", pa.date32()),
        pa.field("period_end", pa.date32()),
        pa.field("areas", pa.int64()),
        pa.field("areas_withheld", pa.int64()),
        pa.field("cases", pa.int64()),
        pa.field("total_cells", pa.int64()),
        pa.field("total_cells_cases", pa.int64()),
    ],
    metadata={"name": "regional_period_totals", "version": "1"},
)


_TOTALS_COLUMNS = (
    "country",
    "disease",
    "period_type",
    "period",
    "area",
    "period_start",
    "period_end",
    "sex",
    "age_band",
    "cases",
    "cases_suppressed",
)


def period_totals(engine: Engine, at: datetime, filters: Filters = Filters()) -> pa.Table:
    """Per country, disease, period type and period of the as-of picture, summed in the
    database (a country's curve without reading each area's cells):

    * ``cases``: the known cases, as the burden table's ``total`` row counts them
      (``area_counts``: per area the total cell where one was sent, else the sum of its
      sex and age strata, negative counts as 0; an area with a withheld or empty count
      adds nothing and counts in ``areas_withheld``); ``areas``: the areas with a count;
    * ``total_cells`` and ``total_cells_cases``: the total cells (no sex, no age band)
      with a number, and the sum of their cases (what the overview's curve adds up).
    """
    at = utc(at, "the as-of time")
    sub = _current(engine, at, filters, _TOTALS_COLUMNS)
    is_total = and_(sub.c.sex.is_(None), sub.c.age_band.is_(None))
    missing = case((sub.c.cases_suppressed | sub.c.cases.is_(None), 1), else_=0)
    clipped = case((sub.c.cases > 0, sub.c.cases), else_=0)
    # one row per area and period: its total cells and its strata, kept apart
    per_area = (
        select(
            sub.c.country,
            sub.c.disease,
            sub.c.period_type,
            sub.c.period,
            sub.c.area,
            func.min(sub.c.period_start).label("period_start"),
            func.max(sub.c.period_end).label("period_end"),
            func.sum(case((is_total, 1), else_=0)).label("n_total"),
            func.max(case((is_total, missing), else_=0)).label("total_withheld"),
            func.sum(case((is_total, clipped), else_=0)).label("total_cases"),
            func.max(case((is_total, 0), else_=missing)).label("strata_withheld"),
            func.sum(case((is_total, 0), else_=clipped)).label("strata_cases"),
            func.sum(case((and_(is_total, sub.c.cases.is_not(None)), 1), else_=0)).label(
                "numbered_totals"
            ),
            func.sum(case((and_(is_total, sub.c.cases.is_not(None)), sub.c.cases), else_=0)).label(
                "numbered_cases"
            ),
        )
        .where(sub.c.rank == 1)
        .group_by(sub.c.country, sub.c.disease, sub.c.period_type, sub.c.period, sub.c.area)
        .subquery("per_area")
    )
    a = per_area.c
    withheld = case((a.n_total > 0, a.total_withheld), else_=a.strata_withheld)
    known = case((a.n_total > 0, a.total_cases), else_=a.strata_cases)
    query = (
        select(
            a.country,
            a.disease,
            a.period_type,
            a.period,
            func.min(a.period_start).label("period_start"),
            func.max(a.period_end).label("period_end"),
            func.count().label("areas"),
            func.sum(withheld).label("areas_withheld"),
            func.sum(case((withheld == 0, known), else_=0)).label("cases"),
            func.sum(a.numbered_totals).label("total_cells"),
            func.sum(a.numbered_cases).label("total_cells_cases"),
        )
        .group_by(a.country, a.disease, a.period_type, a.period)
        .order_by(a.country, a.disease, func.min(a.period_start), a.period)
    )
    with read_only(engine).connect() as connection:
        rows = connection.execute(query).fetchall()
    if not rows:
        return PERIOD_TOTALS.empty_table()
    columns = list(zip(*rows, strict=True))
    values = {}
    for field, raw in zip(PERIOD_TOTALS, columns, strict=True):
        column = raw
        if pa.types.is_date32(field.type):
            column = tuple(date.fromisoformat(v) if isinstance(v, str) else v for v in raw)
        elif pa.types.is_int64(field.type):
            column = tuple(int(v) for v in raw)
        values[field.name] = pa.array(column, field.type)
    return pa.table(values, schema=PERIOD_TOTALS)


def total_cell_sums(engine: Engine, at: datetime, filters: Filters = Filters()) -> pa.Table:
    """Per period type and period of the as-of picture (over every country and disease
    ``filters`` keep): the total cells (no sex, no age band) with a number and the sum of
    their cases, summed in the database (the overview's regional curve)."""
    at = utc(at, "the as-of time")
    columns = ("period_type", "period", "period_start", "period_end", "cases")
    sub = _current(engine, at, filters, columns, totals_only=True)
    query = (
        select(
            sub.c.period_type,
            sub.c.period,
            sub.c.period_start,
            sub.c.period_end,
            func.count().label("total_cells"),
            func.sum(sub.c.cases).label("total_cells_cases"),
        )
        .where(sub.c.rank == 1, sub.c.cases.is_not(None))
        .group_by(sub.c.period_type, sub.c.period, sub.c.period_start, sub.c.period_end)
        .order_by(sub.c.period_start, sub.c.period)
    )
    with read_only(engine).connect() as connection:
        rows = connection.execute(query).fetchall()
    schema = TOTAL_CELL_SUMS
    if not rows:
        return schema.empty_table()
    return pa.table(
        {
            f.name: pa.array(
                [int(v) for v in column] if pa.types.is_int64(f.type) else column, f.type
            )
            for f, column in zip(schema, zip(*rows, strict=True), strict=True)
        },
        schema=schema,
    )


TOTAL_CELL_SUMS = pa.schema(
    [
        pa.field("period_type", pa.string()),
        pa.field("period", pa.string()),
        pa.field("period_start", pa.date32()),
        pa.field("period_end", pa.date32()),
        pa.field("total_cells", pa.int64()),
        pa.field("total_cells_cases", pa.int64()),
    ],
    metadata={"name": "regional_total_cell_sums", "version": "1"},
)


def _columns(engine: Engine, query: Any, schema: pa.Schema) -> pa.Table:
    """The query's rows as an Arrow table of ``schema``, built column by column (much
    faster than a dict per row for the tens of thousands of cells of a regional picture)."""
    with read_only(engine).connect() as connection:
        result = connection.execute(query)
        names = list(result.keys())
        rows = result.fetchall()
    if not rows:
        return schema.empty_table()
    columns = dict(zip(names, zip(*rows, strict=True), strict=True))
    columns["received_at"] = tuple(
        utc(aware(value), "received_at") for value in columns["received_at"]
    )
    return pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema)


def counts_received(engine: Engine, at: datetime) -> pa.Table:
    """Every count cell of every submission received by ``at``, replaced or not (for
    first arrivals and repetitions), with ``submission_id``, ``received_at`` and
    ``revision_of``."""
    at = utc(at, "the as-of time")
    c, s = regional_counts_table, submissions_table
    query = (
        select(
            *[c.c[name] for name in _COUNT_COLUMNS],
            c.c.submission_id,
            s.c.received_at,
            s.c.revision_of,
        )
        .join(s, s.c.submission_id == c.c.submission_id)
        .where(s.c.received_at <= at)
        .order_by(c.c.row_id)
    )
    with read_only(engine).connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    return pa.Table.from_pylist(rows) if rows else pa.table({})


def cases_as_of(engine: Engine, at: datetime, filters: Filters = Filters()) -> pa.Table:
    """The released line-list rows the hub knew at ``at``, with their lineage."""
    at = utc(at, "the as-of time")
    live = live_submissions(engine, at)
    c = regional_cases_table
    query = (
        select(
            *[c.c[name] for name in (*CASE_STRUCTURE, "fields", "source_row", "submission_id")],
            live.c.agreement_id,
            live.c.received_at,
        )
        .join(live, live.c.submission_id == c.c.submission_id)
        .order_by(c.c.country, c.c.disease, c.c.row_id)
    )
    if filters.countries:
        query = query.where(c.c.country.in_(list(filters.countries)))
    if filters.diseases:
        query = query.where(c.c.disease.in_(list(filters.diseases)))
    with read_only(engine).connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    for row in rows:
        row["received_at"] = utc(aware(row["received_at"]), "received_at")
    return pa.Table.from_pylist(rows, schema=CASES_AS_OF) if rows else CASES_AS_OF.empty_table()


def aware(value: datetime) -> datetime:
    """``value`` with UTC attached when the database gave it back naive (SQLite)."""
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


LINEAGE_FIELDS = [
    pa.field("submission_id", pa.string(), nullable=False),
    pa.field("agreement_id", pa.string(), nullable=False),
    pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
]

#: The position and place of a row of an as-of answer, and its period.
AS_OF_PLACE = [
    pa.field("source_row", pa.int32()),
    pa.field("country", pa.string()),
    pa.field("area", pa.string()),
    pa.field("area_level", pa.int8()),
]
AS_OF_PERIOD = [
    pa.field("period", pa.string()),
    pa.field("period_type", pa.string()),
    pa.field("calendar", pa.string()),
    pa.field("period_start", pa.date32()),
    pa.field("period_end", pa.date32()),
]

COUNTS_AS_OF = pa.schema(
    [
        *AS_OF_PLACE,
        pa.field("disease", pa.string()),
        *AS_OF_PERIOD,
        pa.field("sex", pa.string()),
        pa.field("age_band", pa.string()),
        pa.field("cases", pa.int64()),
        pa.field("cases_suppressed", pa.bool_()),
        pa.field("deaths", pa.int64()),
        pa.field("deaths_suppressed", pa.bool_()),
        *LINEAGE_FIELDS,
    ],
    metadata={"name": "regional_counts_as_of", "version": "1"},
)

CASES_AS_OF = pa.schema(
    [
        pa.field("country", pa.string()),
        pa.field("area", pa.string()),
        pa.field("disease", pa.string()),
        pa.field("period", pa.string()),
        pa.field("case_count", pa.int32()),
        pa.field("fields", pa.string()),
        pa.field("source_row", pa.int32()),
        *LINEAGE_FIELDS,
    ],
    metadata={"name": "regional_cases_as_of", "version": "1"},
)


@dataclass(frozen=True)
class Lineage:
    """What became of one submission: "why was my data not used?"."""

    submission_id: str
    origin_country: str
    agreement_id: str
    received_at: datetime
    revision_of: str | None
    replaced_by: tuple[tuple[str, datetime], ...]  # revisions naming it, with their times
    counts_rows: int
    cases_rows: int
    counts_rows_current: int  # its cells in today's picture (not overridden by later ones)
    reporting_rows: int = 0
    denominators_rows: int = 0


def lineage(engine: Engine, submission_id: str, now: datetime) -> Lineage | None:
    s = submissions_table
    with read_only(engine).connect() as connection:
        row = connection.execute(select(s).where(s.c.submission_id == submission_id)).first()
        if row is None:
            return None
        replaced = connection.execute(
            select(s.c.submission_id, s.c.received_at)
            .where(s.c.revision_of == submission_id)
            .order_by(s.c.received_at)
        ).all()
        counts, cases, reporting, denominators = (
            connection.execute(
                select(func.count()).select_from(t).where(t.c.submission_id == submission_id)
            ).scalar_one()
            for t in (
                regional_counts_table,
                regional_cases_table,
                regional_reporting_table,
                regional_denominators_table,
            )
        )
    current = counts_as_of(engine, now, Filters(countries=[row.origin_country]))
    in_use = sum(1 for sid in current.column("submission_id").to_pylist() if sid == submission_id)
    return Lineage(
        submission_id=submission_id,
        origin_country=row.origin_country,
        agreement_id=row.agreement_id,
        received_at=row.received_at,
        revision_of=row.revision_of,
        replaced_by=tuple((r.submission_id, r.received_at) for r in replaced),
        counts_rows=int(counts),
        cases_rows=int(cases),
        counts_rows_current=in_use,
        reporting_rows=int(reporting),
        denominators_rows=int(denominators),
    )


INCIDENCE = pa.schema(
    [
        pa.field("country", pa.string()),
        pa.field("area", pa.string()),
        pa.field("disease", pa.string()),
        pa.field("period", pa.string()),
        pa.field("period_start", pa.date32()),
        pa.field("period_end", pa.date32()),
        pa.field("cases", pa.int64()),
        pa.field("cases_suppressed", pa.bool_()),
        pa.field("population", pa.int64()),
        pa.field("population_year", pa.int32()),
        pa.field("population_source", pa.string()),
        pa.field("incidence_per_100k", pa.float64()),
        pa.field("submission_id", pa.string()),
    ],
    metadata={"name": "regional_incidence", "version": "1"},
)


def incidence(cells: pa.Table, populations: pa.Table | None = None) -> pa.Table:
    """Reported incidence per 100,000 of each total cell (all sexes, all ages), with the
    population of the area for the period's year, or the nearest year held: the figures
    its country sent (``populations``: rows of ``regional_context.denominators_as_of``)
    where there are any, else the registry's.

    Reported, not corrected: under-reporting and reporting delay are corrected elsewhere.
    A withheld cell, or an area the registry has no population for, has no incidence (its
    ``population`` says which)."""
    countries = set(cells.column("country").to_pylist()) if cells.num_rows else set()
    lookup = PopulationLookup(countries, populations)
    rows = []
    for cell in cells.to_pylist():
        if cell["sex"] is not None or cell["age_band"] is not None:
            continue
        best = lookup(cell["area"], cell["period_start"].year)
        cases = cell["cases"]
        rate = (
            None
            if best is None or cases is None or cell["cases_suppressed"]
            else cases * 100_000 / best.value
        )
        rows.append(
            {
                "country": cell["country"],
                "area": cell["area"],
                "disease": cell["disease"],
                "period": cell["period"],
                "period_start": cell["period_start"],
                "period_end": cell["period_end"],
                "cases": cases,
                "cases_suppressed": cell["cases_suppressed"],
                "population": None if best is None else best.value,
                "population_year": None if best is None else best.year,
                "population_source": None if best is None else best.source,
                "incidence_per_100k": rate,
                "submission_id": cell["submission_id"],
            }
        )
    return pa.Table.from_pylist(rows, INCIDENCE) if rows else INCIDENCE.empty_table()
