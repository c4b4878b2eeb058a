"""The ``--engine`` and ``--spark-master`` options, shared by the commands that offer them,
and the Spark session they ask for (``engines.py``; docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from epibridge.engines import Engine, spark_session

EngineOption = Annotated[
    Engine,
    typer.Option("--engine", help="duckdb: in this process; spark: on Spark (docs/scaling.md)."),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master URL (local[2], spark://host:7077); default: Spark's configuration.",
    ),
]


@contextmanager
def engine_session(engine: Engine, master: str | None) -> Iterator[Any]:
    """A Spark session for ``--engine spark`` (None for ``duckdb``), stopped at the end."""
    if engine != "spark":
        yield None
        return
    with spark_session(master) as spark:
        yield spark
