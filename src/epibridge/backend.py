"""Where the tabular stages' Ibis expressions run: DuckDB in this process, or Spark.

The stages (``pipeline/``: validate, harmonize, aggregate, protect) are Ibis expressions
and never name an engine. A :class:`Backend` is the only place that does: it holds the
Ibis connection the expressions execute on and the few edges that differ between
engines — how a file becomes a table, how a table becomes one Parquet file, how far a
long query has got, and DuckDB's writer settings.

Decision 0012 (docs/decisions/0012-spark-backend.md): adapters parse every file with
the in-process DuckDB on both engines (record numbers, malformed lines and encodings are
then the same code), and on Spark the parsed table is staged once as Parquet in the
run's work folder, which the executors read. Spark writes a result as a folder of part
files; it is joined here into the single file the rest of epibridge (and the person
reading the folder) expects, with the column types the expression declares, so both
engines write the same file.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from epibridge.engines import Engine

#: Rows per row group of a joined Spark result (DuckDB's writer default).
_ROW_GROUP = 122_880


def duckdb_connection(workdir: Path, memory_limit: str = "2GB") -> Any:
    """An in-process DuckDB that spills to ``workdir`` instead of outgrowing the machine."""
    con = ibis.duckdb.connect()
    con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    con.raw_sql(f"SET temp_directory = '{workdir.as_posix()}'")
    con.raw_sql("SET preserve_insertion_order = true")
    # Progress is ours to show (see ingest.Watch): DuckDB tracks it, but must not print
    # its own bar into our output.
    con.raw_sql("SET enable_progress_bar = true")
    con.raw_sql("SET enable_progress_bar_print = false")
    con.raw_sql("CREATE OR REPLACE MACRO epibridge_bigint(x) AS CAST(x AS BIGINT)")
    return con


@dataclass
class Backend:
    """The engine the expressions of one run execute on (see the module docstring)."""

    engine: Engine
    #: The Ibis connection expressions execute on.
    con: Any
    #: The in-process DuckDB adapters parse files with (``con`` itself on ``duckdb``).
    duck: Any
    #: Scratch space of the run (DuckDB spills here; Spark stages and writes here).
    workdir: Path
    spark: Any = None
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def is_duckdb(self) -> bool:
        return self.engine == "duckdb"

    def adopt(self, table: ir.Table) -> ir.Table:
        """An adapter's table (on the DuckDB it parsed with, or in memory) as a table of
        this backend: on Spark, staged once as Parquet the executors read."""
        if self.is_duckdb:
            return table
        staged = self.workdir / f"staged-{next(self._names)}.parquet"
        self.duck.to_parquet(table, staged)
        return self.con.read_parquet(staged)

    def from_arrow(self, table: pa.Table) -> ir.Table:
        """A small in-memory table, as a table this backend executes."""
        return self.adopt(ibis.memtable(table))

    def read_parquet(self, path: Path) -> ir.Table:
        return self.con.read_parquet(path)

    def to_parquet(self, expr: ir.Table, path: Path) -> None:
        """Write ``expr`` to the single Parquet file ``path``."""
        if self.is_duckdb:
            self.con.to_parquet(_declared_integers(expr), path)
            return
        parts = self.workdir / f"written-{next(self._names)}"
        self.con.to_parquet(expr, parts)
        schema = expr.schema().to_pyarrow()
        try:
            _join_parts(sorted(parts.glob("part-*.parquet")), schema, path)
        finally:
            shutil.rmtree(parts, ignore_errors=True)

    def progress(self) -> float | None:
        """How far the running query has got (0-1), None when the engine cannot tell."""
        if self.is_duckdb:
            return float(self.con.con.query_progress()) / 100.0
        tracker = self.spark.sparkContext.statusTracker()
        done = total = 0
        for stage in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage)
            if info is not None:
                done += info.numCompletedTasks
                total += info.numTasks
        return done / total if total else None

    @contextmanager
    def unordered(self) -> Iterator[None]:
        """Let the engine write rows in any order (DuckDB otherwise keeps insertion order,
        which makes its Parquet writer a third slower; Spark never keeps it)."""
        if not self.is_duckdb:
            yield
            return
        self.con.raw_sql("SET preserve_insertion_order = false")
        try:
            yield
        finally:
            self.con.raw_sql("SET preserve_insertion_order = true")


def to_arrow(expr: ir.Table) -> pa.Table:
    """The rows of ``expr`` in this process, as an Arrow table of its schema, whichever
    engine it runs on.

    Ibis collects a Spark result through pandas (``toPandas``: every value a Python
    object first); Spark's own ``toArrow`` brings the executors' Arrow batches as they
    are, which for a column per record (record numbers, the case ids' hashes, a released
    line list, the burden's cells) is a fraction of the memory.
    """
    con = ibis.get_backend(expr)
    if con.name != "pyspark":
        return expr.to_pyarrow()
    schema = expr.schema().to_pyarrow()
    # as Ibis's own execute does first: in-memory tables become Spark views
    con._run_pre_execute_hooks(expr)
    got = con._session.sql(con.compile(expr)).toArrow()
    return got.rename_columns(schema.names).cast(schema)


@ibis.udf.scalar.builtin(name="epibridge_bigint")  # type: ignore[untyped-decorator]
def _bigint(value: int) -> int:  # type: ignore[empty-body]
    """DuckDB's ``CAST(value AS BIGINT)`` (a macro of ``duckdb_connection``)."""


def _declared_integers(expr: ir.Table) -> ir.Table:
    """``expr`` with its int64 columns stored as int64.

    DuckDB sums integers into a 128-bit HUGEINT, which its Parquet writer stores as a
    DOUBLE; Ibis types the sum as int64 and drops a cast to int64 as a no-op, so a count
    would reach the file as a float. The cast is put back through a macro Ibis does not
    see through.
    """
    wanted = [n for n, t in expr.schema().items() if t.is_int64()]
    return expr.mutate(**{n: _bigint(expr[n]) for n in wanted}) if wanted else expr


def _join_parts(parts: list[Path], schema: pa.Schema, path: Path) -> None:
    """Spark's part files, in order, as one Parquet file with ``schema``'s column types."""
    with pq.ParquetWriter(path, schema) as writer:
        for part in parts:
            source = pq.ParquetFile(part)
            for batch in source.iter_batches(batch_size=_ROW_GROUP):
                table = pa.Table.from_batches([batch]).select(schema.names).cast(schema)
                writer.write_table(table, row_group_size=_ROW_GROUP)


@contextmanager
def open_backend(engine: Engine, workdir: Path, spark: Any = None) -> Iterator[Backend]:
    """The backend for one run, its DuckDB closed at the end (``spark`` is a session from
    ``engines.spark_session``, needed for ``engine="spark"``)."""
    duck = duckdb_connection(workdir)
    try:
        if engine == "duckdb":
            yield Backend("duckdb", duck, duck, workdir)
            return
        from epibridge.engines import EngineError

        if spark is None:
            raise EngineError("--engine spark needs a Spark session (engines.spark_session)")
        yield Backend("spark", ibis.pyspark.connect(spark), duck, workdir, spark)
    finally:
        duck.disconnect()
