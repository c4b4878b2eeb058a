"""The ``--engine`` and ``--spark-master`` options, shared by the commands that offer them,
and the Spark session they ask for (``engines.py``; docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from epibridge.engines import Engine, spark_session

EngineOption = Annotated[
    Engine,
    typer.Option("--engine", help="duckdb: in this process; spark: on Spark (docs/scaling.md)."),
]
HubEngine = Literal["database", "spark"]
HubEngineOption = Annotated[
    HubEngine,
    typer.Option(
        "--engine",
        help="database: summed in the hub's database; spark: a Parquet snapshot of the "
        "hub's cells summed on Spark (docs/scaling.md).",
    ),
]
SnapshotOption = Annotated[
    Path | None,
    typer.Option(
        "--snapshot",
        help="With --engine spark: the folder the snapshot is written to, on a disk "
        "every executor sees. Default: spark-snapshot in the hub's folder.",
    ),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL (local[2], spark://host:7077); default: Spark's configuration.",
    ),
]


def _ignored(engine: str, *options: tuple[str, object]) -> None:
    """Say so when Spark's options are given to a command that will not use Spark."""
    from rich.console import Console

    given = [name for name, value in options if value is not None]
    if given:
        Console(stderr=True, highlight=False).print(
            f"note: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} ignored with "
            f"--engine {engine}; add --engine spark to run on Spark",
            soft_wrap=True,
        )


@contextmanager
def engine_session(engine: Engine, master: str | None) -> Iterator[Any]:
    """A Spark session for ``--engine spark`` (None for ``duckdb``), stopped at the end."""
    if engine != "spark":
        _ignored(engine, ("--spark-master", master))
        yield None
        return
    with spark_session(master) as spark:
        yield spark


@contextmanager
def hub_cells(
    engine: HubEngine, database: Any, hub_folder: Path, snapshot: Path | None, master: str | None
) -> Iterator[Any]:
    """Where a hub command sums the cells (``picture_expr.Source``): the hub's database,
    or for ``--engine spark`` a snapshot of its cells written to ``snapshot`` (default:
    ``spark-snapshot`` in the hub's folder) and a Spark session reading it."""
    from rich.console import Console

    from epibridge.hub.picture_expr import DatabaseSource, SparkSource, export_tables

    if engine != "spark":
        _ignored(engine, ("--spark-master", master), ("--snapshot", snapshot))
        yield DatabaseSource(database)
        return
    folder = snapshot or hub_folder / "spark-snapshot"
    console = Console(stderr=True)
    with console.status("snapshot of the hub's cells ...") as status:

        def progress(table: str, rows: int) -> None:
            status.update(f"snapshot of the hub's cells: {table}, {rows:,} rows")

        written = export_tables(database, folder, progress=progress)
    console.print(
        "snapshot for Spark: "
        + ", ".join(f"{table} {rows:,} rows" for table, rows in written.items())
        + f" in {folder}"
    )
    with spark_session(master) as spark:
        yield SparkSource(spark, folder)
