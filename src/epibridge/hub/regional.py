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
from sqlalchemy import Connection, Engine, Table, and_, exists, func, insert, select
from sqlalchemy.orm import aliased

from epibridge.hub.area_counts import PopulationLookup
from epibridge.hub.log import RowsDigest
from epibridge.hub.payload import CASE_STRUCTURE, Payload
from epibridge.hub.tables import (
    regional_cases_table,
    regional_counts_table,
    submission_receipts_table,
    submissions_table,
    utc,
)

BATCH = 10_000
_COUNT_COLUMNS = tuple(
    c.name for c in regional_counts_table.columns if c.name not in ("row_id", "submission_id")
)
_KEY = ("country", "area", "disease", "period_type", "calendar", "period", "sex", "age_band")


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
    if payload.counts is not None:
        for data in _arrow_batches(payload.counts, counts, submission_id):
            _bulk_insert(connection, regional_counts_table, data)
            counts.add_table(data)
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
    return {
        "counts_rows": counts.rows,
        "counts_sha256": counts.hexdigest(),
        "cases_rows": cases.rows,
        "cases_sha256": cases.hexdigest(),
    }


@dataclass(frozen=True)
class Filters:
    """Optional restrictions of an as-of query. ``period_from`` and ``period_to`` (used by
    ``counts_as_of`` only) keep the cells whose period starts on or between them
    (inclusive); the restriction is in the SQL, so a one-week map reads one week (index
    ``ix_regional_counts_series``)."""

    countries: Sequence[str] = ()
    diseases: Sequence[str] = ()
    period_from: date | None = None
    period_to: date | None = None


def _live(at: datetime) -> Any:
    """Submissions received by ``at`` and not replaced by a revision received by ``at``."""
    s = submissions_table
    r = aliased(submissions_table)
    replaced = exists().where(and_(r.c.revision_of == s.c.submission_id, r.c.received_at <= at))
    return (
        select(s.c.submission_id, s.c.agreement_id, s.c.received_at)
        .where(s.c.received_at <= at, ~replaced)
        .subquery("live")
    )


def counts_as_of(engine: Engine, at: datetime, filters: Filters = Filters()) -> pa.Table:
    """The regional counts the hub knew at ``at``, each cell with its lineage."""
    at = utc(at, "the as-of time")
    live = _live(at)
    c = regional_counts_table
    ranked = select(
        *[c.c[name] for name in _COUNT_COLUMNS],
        c.c.submission_id,
        live.c.agreement_id,
        live.c.received_at,
        func.row_number()
        .over(
            partition_by=[c.c[k] for k in _KEY],
            order_by=[live.c.received_at.desc(), c.c.submission_id.desc()],
        )
        .label("rank"),
    ).join(live, live.c.submission_id == c.c.submission_id)
    if filters.countries:
        ranked = ranked.where(c.c.country.in_(list(filters.countries)))
    if filters.diseases:
        ranked = ranked.where(c.c.disease.in_(list(filters.diseases)))
    if filters.period_from is not None:
        ranked = ranked.where(c.c.period_start >= filters.period_from)
    if filters.period_to is not None:
        ranked = ranked.where(c.c.period_start <= filters.period_to)
    sub = ranked.subquery("ranked")
    query = (
        select(*[col for col in sub.c if col.name != "rank"])
        .where(sub.c.rank == 1)
        .order_by(sub.c.country, sub.c.disease, sub.c.area, sub.c.period_start, sub.c.source_row)
    )
    return _columns(engine, query, COUNTS_AS_OF)


def _columns(engine: Engine, query: Any, schema: pa.Schema) -> pa.Table:
    """The query's rows as an Arrow table of ``schema``, built column by column (much
    faster than a dict per row for the tens of thousands of cells of a regional picture)."""
    with engine.connect() as connection:
        result = connection.execute(query)
        names = list(result.keys())
        rows = result.fetchall()
    if not rows:
        return schema.empty_table()
    columns = dict(zip(names, zip(*rows, strict=True), strict=True))
    columns["received_at"] = tuple(
        utc(_aware(value), "received_at") for value in columns["received_at"]
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
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    return pa.Table.from_pylist(rows) if rows else pa.table({})


def cases_as_of(engine: Engine, at: datetime, filters: Filters = Filters()) -> pa.Table:
    """The released line-list rows the hub knew at ``at``, with their lineage."""
    at = utc(at, "the as-of time")
    live = _live(at)
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
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(query)]
    for row in rows:
        row["received_at"] = utc(_aware(row["received_at"]), "received_at")
    return pa.Table.from_pylist(rows, schema=CASES_AS_OF) if rows else CASES_AS_OF.empty_table()


def _aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_LINEAGE_FIELDS = [
    pa.field("submission_id", pa.string(), nullable=False),
    pa.field("agreement_id", pa.string(), nullable=False),
    pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
]

COUNTS_AS_OF = pa.schema(
    [
        pa.field("source_row", pa.int32()),
        pa.field("country", pa.string()),
        pa.field("area", pa.string()),
        pa.field("area_level", pa.int8()),
        pa.field("disease", pa.string()),
        pa.field("period", pa.string()),
        pa.field("period_type", pa.string()),
        pa.field("calendar", pa.string()),
        pa.field("period_start", pa.date32()),
        pa.field("period_end", pa.date32()),
        pa.field("sex", pa.string()),
        pa.field("age_band", pa.string()),
        pa.field("cases", pa.int64()),
        pa.field("cases_suppressed", pa.bool_()),
        pa.field("deaths", pa.int64()),
        pa.field("deaths_suppressed", pa.bool_()),
        *_LINEAGE_FIELDS,
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
        *_LINEAGE_FIELDS,
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


def lineage(engine: Engine, submission_id: str, now: datetime) -> Lineage | None:
    s = submissions_table
    with engine.connect() as connection:
        row = connection.execute(select(s).where(s.c.submission_id == submission_id)).first()
        if row is None:
            return None
        replaced = connection.execute(
            select(s.c.submission_id, s.c.received_at)
            .where(s.c.revision_of == submission_id)
            .order_by(s.c.received_at)
        ).all()
        counts = connection.execute(
            select(func.count())
            .select_from(regional_counts_table)
            .where(regional_counts_table.c.submission_id == submission_id)
        ).scalar_one()
        cases = connection.execute(
            select(func.count())
            .select_from(regional_cases_table)
            .where(regional_cases_table.c.submission_id == submission_id)
        ).scalar_one()
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


def incidence(cells: pa.Table) -> pa.Table:
    """Reported incidence per 100,000 of each total cell (all sexes, all ages), with the
    registry's population of the area for the period's year, or the nearest year it has.

    Reported, not corrected: under-reporting and reporting delay are corrected elsewhere.
    A withheld cell, or an area the registry has no population for, has no incidence (its
    ``population`` says which)."""
    lookup = PopulationLookup(set(cells.column("country").to_pylist()) if cells.num_rows else ())
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
