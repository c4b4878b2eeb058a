"""Where the work runs: this machine (``duckdb``, the default) or Apache Spark (``spark``).

Per-series work — the detectors — is the same code on both: ``by_series`` runs a
``detect_kernels`` function over the whole (series x time) matrix in this process, or
splits the series into partitions that Spark's executors run, each through the very
same function, and stacks their results in the original order. Every series is treated
on its own, so the result is the same either way (``tests/test_engines.py``).

The space-time scans split their Monte Carlo replicates into blocks, each with its own
random stream (``algorithms/scan.py``); ``block_map`` runs the blocks in turn here or as
one Spark task each, and the p-values are the same either way.

Spark is found through ``--spark-master`` (``local[2]``, ``spark://host:7077``, ...), else
the standard Spark configuration (``spark-defaults.conf``, ``SPARK_MASTER``), else
``local[*]``. PySpark and Java 17 are needed only for ``spark``: ``pip install
'epibridge[spark]'`` (docs/scaling.md).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import numpy as np

from epibridge.detect_kernels import Kernel, Outputs
from epibridge.model.errors import EpibridgeError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from epibridge.algorithms.scan import BlockMap

_T = TypeVar("_T")
_R = TypeVar("_R")

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")
#: Series per Spark partition when the number of partitions is not given: large enough
#: that the per-task overhead (tens of milliseconds) is small beside the work; and at
#: least two partitions per core of the cluster, so that every core has work and a lost
#: executor's share is small.
SERIES_PER_PARTITION = 2_000
PARTITIONS_PER_CORE = 2


class EngineError(EpibridgeError):
    """The engine asked for cannot run here; says what to install or set."""


def _check_java() -> None:
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    raise EngineError(
        "--engine spark needs Java (17 or later) and none was found\n"
        "  what to do: install it (Debian: apt-get install openjdk-17-jre-headless) or set "
        "JAVA_HOME"
    )


@contextmanager
def spark_session(master: str | None = None) -> Iterator[SparkSession]:
    """A Spark session for epibridge's work (UI off, UTC, executors on this Python)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineError(
            "--engine spark needs PySpark, which is not installed\n"
            "  what to do: pip install 'epibridge[spark]' (or uv sync, which installs it for "
            "development)"
        ) from None
    _check_java()
    # Executors start this interpreter, so they import the same epibridge.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName("epibridge")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.task.maxFailures", "4")
        # Progress is ours to show (backend.Backend.progress), not Spark's console bar.
        .config("spark.ui.showConsoleProgress", "false")
    )
    if not os.environ.get("SPARK_CONF_DIR"):
        # Without a Spark configuration of the user's: the detectors' outputs come back
        # whole (as large as their input: gigabytes for 200,000 series of five years),
        # which Spark's 1 GB defaults for results and for the driver (which in local mode
        # also runs the executors) lose.
        builder = builder.config("spark.driver.maxResultSize", "0").config(
            "spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "4g")
        )
    if master:
        builder = builder.master(master)
    elif not os.environ.get("SPARK_MASTER") and not os.environ.get("SPARK_CONF_DIR"):
        builder = builder.master("local[*]")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    _quiet_codegen(spark)
    try:
        yield spark
    finally:
        spark.stop()


def _quiet_codegen(spark: SparkSession) -> None:
    """Silence the driver's code generator when a query is too large to compile.

    The harmonizing queries (one expression per field and rule) outgrow the 64 KB a
    generated Java method may hold; Spark then runs them interpreted, with the same
    result, but first logs the whole generated class as an ERROR to the console.
    """
    jvm = spark.sparkContext._jvm
    if jvm is None:  # a Spark Connect session: nothing printed here
        return
    log4j = jvm.org.apache.logging.log4j
    log4j.core.config.Configurator.setLevel(
        "org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator", log4j.Level.OFF
    )


def _blocks(n: int, partitions: int | None, cores: int) -> list[np.ndarray]:
    parts = partitions or max(-(-n // SERIES_PER_PARTITION), PARTITIONS_PER_CORE * cores, 1)
    return [b for b in np.array_split(np.arange(n), min(parts, max(n, 1))) if len(b)]


def _run_block(kernel: Kernel, block: tuple[np.ndarray, np.ndarray | None]) -> Outputs:
    return kernel(*block)


def _apply(shared: Any, item: Any) -> Any:
    return shared.value(item)


class SparkBlocks:
    """A ``scan.BlockMap`` on Spark: one task per item, ``work`` broadcast once (the
    scans' zones and expected counts are shared by every block, and are not shipped
    with each task); results come back in the items' order."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def __call__(self, work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        if not items:
            return []
        context = self.spark.sparkContext
        shared = context.broadcast(work)
        try:
            rdd = context.parallelize(list(items), len(items))
            return cast("list[_R]", rdd.map(partial(_apply, shared)).collect())
        finally:
            shared.destroy()


def block_map(engine: Engine = "duckdb", spark: Any = None) -> BlockMap:
    """Where the scans' Monte Carlo blocks run: in turn here (``duckdb``), or one Spark
    task each on ``spark`` (a session from ``spark_session``)."""
    if engine == "duckdb":
        from epibridge.algorithms.scan import run_here

        return run_here
    if spark is None:
        raise EngineError("--engine spark needs a Spark session (engines.spark_session)")
    return SparkBlocks(spark)


def by_series(
    kernel: Kernel,
    observed: np.ndarray,
    population: np.ndarray | None = None,
    *,
    engine: Engine = "duckdb",
    spark: Any = None,
    partitions: int | None = None,
) -> Outputs:
    """``kernel`` over every series (row) of ``observed``: here, or on ``spark`` (a
    session from ``spark_session``) in ``partitions`` blocks of consecutive series
    (default: about ``SERIES_PER_PARTITION`` series each, and at least
    ``PARTITIONS_PER_CORE`` per core of the cluster)."""
    if engine == "duckdb":
        return kernel(observed, population)
    run = block_map(engine, spark)
    blocks = [
        (observed[rows], None if population is None else population[rows])
        for rows in _blocks(observed.shape[0], partitions, spark.sparkContext.defaultParallelism)
    ]
    if not blocks:
        return kernel(observed, population)
    return Outputs.stacked(run(partial(_run_block, kernel), blocks))
