"""The hub's as-of picture as Ibis expressions, run on the hub's database or on Spark.

The scorecards' sums (``quality_sql``) read every cell the hub holds. They are written
once, as Ibis expressions over two tables (``regional_counts`` and ``submissions``), and a
``Source`` runs them where those tables are:

* ``DatabaseSource``: the hub's own database (SQLite or PostgreSQL). The expressions are
  built on unbound tables of the hub's schema and compiled to the database's SQL dialect
  (Ibis's compiler, every string a bound parameter), then run through the hub's
  SQLAlchemy engine: no second connection, and the read-only transactions of
  ``store.read_only``;
* ``SparkSource``: a Spark session reading a Parquet snapshot of the same two tables
  (``export_tables``), for a hub whose cells outgrow one machine (``docs/scaling.md``).

The one difference the expressions see is how an instant is stored: SQLite keeps a UTC
wall time as text (``tables.UTCDateTime``), which sorts like the instant, so there the
as-of time is compared as text of the same form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import ibis
import ibis.backends.sql.compilers as sql_compilers
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot.expressions as sge
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Engine,
    Integer,
    SmallInteger,
    Table,
    TextClause,
    bindparam,
    select,
    text,
)

from epibridge.backend import to_arrow
from epibridge.hub.store import read_only
from epibridge.hub.tables import UTCDateTime, regional_counts_table, submissions_table

#: A cell's key: a cell sent again has the same key; the picture holds one cell per key.
CELL_KEY = ("country", "area", "disease", "period_type", "calendar", "period", "sex", "age_band")
#: The key's columns that may be empty (compared null-safe).
NULLABLE = ("sex", "age_band")
#: The tables the expressions read.
TABLES = (regional_counts_table, submissions_table)
_SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime on SQLite
_EXPORT_BATCH = 100_000


@dataclass(frozen=True)
class Picture:
    """The two tables and the as-of time in the type the tables store it in."""

    counts: ir.Table
    submissions: ir.Table
    at: Any


@dataclass(frozen=True)
class Filters:
    """Optional restrictions of an as-of query, applied to the cells before ranking (a
    cell's key holds its country, disease and period, so a restricted picture ranks as
    among all cells). ``period_from`` and ``period_to`` keep the cells whose period
    starts on or between them (inclusive): a one-week map reads one week (index
    ``ix_regional_counts_series``)."""

    countries: Sequence[str] = ()
    diseases: Sequence[str] = ()
    period_from: date | None = None
    period_to: date | None = None

    def __post_init__(self) -> None:
        # Country (ISO3) and regional disease codes are stored upper-case: "khm" and
        # "dengue" from a command line mean KHM and DENGUE, not nothing.
        object.__setattr__(self, "countries", tuple(c.upper() for c in self.countries))
        object.__setattr__(self, "diseases", tuple(d.upper() for d in self.diseases))


class Source(Protocol):
    """Where the expressions run."""

    #: whether the engine hashes a two-level ``GROUP BY`` faster than it sorts for a
    #: ``COUNT(DISTINCT)`` (``quality_sql`` then counts duplicates exactly at once)
    hashes: bool

    def picture(self, at: datetime) -> Picture: ...

    def rows(self, expr: ir.Table) -> list[dict[str, Any]]: ...

    def table(self, expr: ir.Table, schema: pa.Schema) -> pa.Table: ...


def source_of(where: Engine | Source) -> Source:
    """``where`` as a ``Source``: a SQLAlchemy engine is the hub's database."""
    return DatabaseSource(where) if isinstance(where, Engine) else where


def arrow_schema(table: Table, sqlite: bool = False) -> pa.Schema:
    """The Arrow schema of one of the hub's tables (on SQLite an instant is text)."""
    return pa.schema(
        [
            pa.field(
                c.name,
                pa.string() if sqlite and isinstance(c.type, UTCDateTime) else _arrow_type(c),
            )
            for c in table.columns
        ]
    )


def ibis_schema(table: Table, sqlite: bool = False) -> ibis.Schema:
    """The Ibis schema of one of the hub's tables (on SQLite an instant is text)."""
    return ibis.Schema.from_pyarrow(arrow_schema(table, sqlite))


class DatabaseSource:
    """The hub's database: expressions compiled to its dialect, run through ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = read_only(engine)
        name = engine.dialect.name
        self.sqlite = name == "sqlite"
        self.dialect = "sqlite" if self.sqlite else "postgres"
        # PostgreSQL hashes the two GROUP BY of the exact count faster than it sorts for
        # count(DISTINCT); SQLite sorts for both, and the one pass is the faster there
        self.hashes = not self.sqlite
        self._tables = {
            t.name: ibis.table(ibis_schema(t, self.sqlite), name=t.name) for t in TABLES
        }

    def picture(self, at: datetime) -> Picture:
        stored: Any = at.astimezone(UTC).strftime(_SQLITE_INSTANT) if self.sqlite else at
        return Picture(self._tables["regional_counts"], self._tables["submissions"], stored)

    def rows(self, expr: ir.Table) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(self.query(expr)).mappings()]

    def query(self, expr: ir.Table) -> TextClause:
        """``expr`` in the database's SQL, every string in it a bound parameter: the
        filters hold what a user asked for (a country code from the API), which is
        passed to the driver as a value, never spliced into the SQL's text."""
        compiler = getattr(sql_compilers, self.dialect).compiler
        tree = compiler.to_sqlglot(expr.unbind())
        values: dict[str, Any] = {}

        def bind(node: sge.Expression) -> sge.Expression:
            if isinstance(node, sge.Literal) and node.is_string:
                name = f"p{len(values)}"
                values[name] = node.this
                return sge.Var(this=f":{name}")
            return node

        sql = tree.transform(bind).sql(dialect=compiler.dialect)
        return text(sql).bindparams(*[bindparam(k, v) for k, v in values.items()])

    def table(self, expr: ir.Table, schema: pa.Schema) -> pa.Table:
        """The rows of ``expr`` (``schema``'s columns) as an Arrow table of ``schema``:
        the driver's values (SQLite's text dates, integer booleans) cast."""
        with self.engine.connect() as connection:
            rows = connection.execute(self.query(expr)).fetchall()
        if not rows:
            return schema.empty_table()
        columns = zip(*rows, strict=True)
        return pa.table(
            [_cast(values, f.type) for values, f in zip(columns, schema, strict=True)],
            schema=schema,
        )


class SparkSource:
    """A Spark session reading the Parquet snapshot in ``folder`` (``export_tables``)."""

    hashes = True

    def __init__(self, spark: Any, folder: Path) -> None:
        self.con = ibis.pyspark.connect(spark)
        self._tables: dict[str, ir.Table] = {}
        for table in TABLES:
            path = folder / f"{table.name}.parquet"
            if not path.exists():
                raise FileNotFoundError(
                    f"{path}: no snapshot of the hub's {table.name} table\n"
                    "  what to do: export the hub's tables first (export_tables; the hub "
                    "commands' --engine spark does)"
                )
            self._tables[table.name] = self.con.read_parquet(path)

    def picture(self, at: datetime) -> Picture:
        return Picture(self._tables["regional_counts"], self._tables["submissions"], at)

    def rows(self, expr: ir.Table) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = to_arrow(expr).to_pylist()
        return rows

    def table(self, expr: ir.Table, schema: pa.Schema) -> pa.Table:
        """The rows of ``expr`` as an Arrow table of ``schema`` (cast)."""
        got = to_arrow(expr)
        return got.cast(schema) if got.num_rows else schema.empty_table()


def _cast(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """A column of a driver's values as ``kind`` (SQLite gives dates as ISO text and
    booleans as 0 and 1)."""
    if pa.types.is_date32(kind) and any(isinstance(v, str) for v in values):
        return pa.array(values, pa.string()).cast(kind)
    if pa.types.is_boolean(kind) and any(type(v) is int for v in values):  # not bool
        return pa.array(values, pa.int64()).cast(kind)
    return pa.array(values, kind)


def _arrow_type(column: Any) -> pa.DataType:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(kind, Date):
        return pa.date32()
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, SmallInteger):
        return pa.int16()
    if isinstance(kind, BigInteger | Integer):
        return pa.int64()
    return pa.string()


def export_tables(
    engine: Engine,
    folder: Path,
    tables: Iterable[Table] = TABLES,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """A Parquet snapshot of ``tables`` of the hub's database in ``folder`` (one file per
    table, read in batches in one read-only transaction); the rows written per table.
    ``progress(table, rows so far)`` is called after each batch."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    with read_only(engine).connect() as connection:
        for table in tables:
            schema = arrow_schema(table)
            path = folder / f"{table.name}.parquet"
            partial = path.with_suffix(".parquet.partial")
            result = connection.execution_options(stream_results=True).execute(select(table))
            n = 0
            with pq.ParquetWriter(partial, schema) as writer:
                while batch := result.fetchmany(_EXPORT_BATCH):
                    columns = list(zip(*batch, strict=True))
                    arrays = [pa.array(v, f.type) for v, f in zip(columns, schema, strict=True)]
                    writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                    n += len(batch)
                    if progress is not None:
                        progress(table.name, n)
            partial.replace(path)
            written[table.name] = n
    return written


def live(p: Picture) -> ir.Table:
    """Submissions received by ``at`` and not replaced by a revision received by ``at``."""
    s = p.submissions
    r = s.view()
    replaced = ((r.revision_of == s.submission_id) & (r.received_at <= p.at)).any()
    return s.filter(s.received_at <= p.at, ~replaced).select(
        "submission_id", "agreement_id", "received_at"
    )


def received(p: Picture, columns: Sequence[str]) -> ir.Table:
    """``columns`` of every cell received by ``at`` (replaced or not), with
    ``received_at``."""
    s = p.submissions.filter(p.submissions.received_at <= p.at)
    c = p.counts
    return c.join(s, c.submission_id == s.submission_id).select(
        *[c[name] for name in columns], s.received_at
    )


def ranked(
    p: Picture,
    columns: Sequence[str],
    filters: Filters = Filters(),
    totals_only: bool = False,
    lineage: bool = False,
) -> ir.Table:
    """``columns`` of the live submissions' cells (``filters`` applied before ranking),
    each with its ``rank`` within its key: 1 for the cell received last (ties: the
    greater submission id), the one the as-of picture uses. ``totals_only`` keeps the
    total cells (no sex, no age band), which ranks them as among all cells since sex and
    age band are part of the key; ``lineage`` adds the submission's ``agreement_id`` and
    ``received_at``."""
    c = p.counts
    if filters.countries:
        c = c.filter(c.country.isin(list(filters.countries)))
    if filters.diseases:
        c = c.filter(c.disease.isin(list(filters.diseases)))
    if filters.period_from is not None:
        c = c.filter(c.period_start >= filters.period_from)
    if filters.period_to is not None:
        c = c.filter(c.period_start <= filters.period_to)
    if totals_only:
        c = c.filter(c.sex.isnull(), c.age_band.isnull())
    alive = live(p)
    needed = dict.fromkeys((*columns, *CELL_KEY))  # the window's partition, once
    extra = (
        {"agreement_id": alive.agreement_id, "received_at": alive.received_at} if lineage else {}
    )
    joined = c.join(alive, c.submission_id == alive.submission_id).select(
        *[c[name] for name in needed],
        _received_at=alive.received_at,
        _submission=c.submission_id,
        **extra,
    )
    order = ibis.row_number().over(
        group_by=list(CELL_KEY),
        order_by=[ibis.desc("_received_at"), ibis.desc("_submission")],
    )
    return joined.mutate(rank=order + 1).select(*columns, *extra, "rank")


def current(p: Picture, columns: Sequence[str], filters: Filters = Filters()) -> ir.Table:
    """``columns`` of the as-of picture's cells: the received-last cell of each key among
    the live submissions (``ranked``'s rank 1)."""
    cells = ranked(p, columns, filters)
    return cells.filter(cells["rank"] == 1).select(*columns)


def same_key(left: ir.Table, right: ir.Table) -> ir.BooleanValue:
    """The cells of ``left`` and ``right`` have the same key (null-safe where it may be
    empty)."""
    parts = [
        left[k].identical_to(right[k]) if k in NULLABLE else left[k] == right[k] for k in CELL_KEY
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out & part
    return out


def as_date(value: Any) -> date:
    """A date as an engine gives it (SQLite gives the ISO text; Spark may give a
    timestamp)."""
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"expected a date from the database, got {value!r}")


def as_instant(value: Any) -> datetime | None:
    """An instant as an engine gives it, aware in UTC (SQLite gives the stored text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):  # pandas' Timestamp is a datetime
        raise TypeError(f"expected an instant from the database, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: The order of the picture's cells (``regional.counts_as_of``).
PICTURE_ORDER = ("country", "disease", "area", "period_start", "source_row")


def current_table(source: Source, at: datetime, filters: Filters, schema: pa.Schema) -> pa.Table:
    """The picture's cells at ``at`` in ``schema``'s columns (names of the cells' table),
    in the picture's order (``PICTURE_ORDER``), as an Arrow table of ``schema``."""
    columns = tuple(dict.fromkeys((*schema.names, *PICTURE_ORDER)))
    cells = current(source.picture(at), columns, filters).order_by(list(PICTURE_ORDER))
    return source.table(cells.select(*schema.names), schema)
