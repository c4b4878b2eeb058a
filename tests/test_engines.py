"""The detectors give identical results on this machine and on Spark (local mode): each
partition of series runs the same code, and the partitions are stacked in order."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from epibridge.algorithms.farrington import FARRINGTON, NOUFAILY
from epibridge.detect_kernels import (
    Kernel,
    Outputs,
    cusum_kernel,
    ears_kernel,
    farrington_kernel,
    glrnb_kernel,
)
from epibridge.engines import EngineError, by_series, spark_session
from epibridge.hub.regional import COUNTS_AS_OF
from epibridge.hub.temporal import regional_detect
from tests.hub.test_temporal import _seasonal
from tests.test_cli import run
from tests.test_cli_detect import REFERENCE, _long

# PySpark's gateway leaves its sockets to the garbage collector (py4j): not our leak.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    with spark_session("local[2]") as session:
        yield session


def _hepatitis() -> np.ndarray:
    """R surveillance's ``ha`` (Berlin hepatitis A, 12 districts x 290 weeks), with some
    counts missing so that every detector meets a gap."""
    with (REFERENCE / "ha.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    names = [n for n in rows[0] if n != "epoch"]
    observed = np.array([[float(r[n]) for r in rows] for n in names])
    observed[3, 100:104] = np.nan
    observed[7, 250] = np.nan
    return observed


KERNELS: dict[str, Kernel] = {
    "ears-c1": ears_kernel("C1", start=7),
    "ears-c3": ears_kernel("C3", start=11),
    "cusum": cusum_kernel(start=52),
    "glrnb": glrnb_kernel(start=260, period=52),
    "farrington": farrington_kernel(FARRINGTON, None, 270),
    "noufaily": farrington_kernel(NOUFAILY, None, 270),
}


def _same(a: Outputs, b: Outputs) -> None:
    for name in ("expected", "upperbound", "alarm", "defined", "pvalue"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
            continue
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("method", sorted(KERNELS))
def test_every_detector_is_identical_on_spark(spark: Any, method: str) -> None:
    observed = _hepatitis()
    here = by_series(KERNELS[method], observed)
    # five partitions of 12 series: blocks of 2 and 3, run by two executor processes
    there = by_series(KERNELS[method], observed, engine="spark", spark=spark, partitions=5)
    _same(here, there)
    assert there.alarm.shape == observed.shape


def test_the_command_line_runs_on_spark(tmp_path: Path) -> None:
    data = _long(REFERENCE / "ha.csv", tmp_path / "ha.csv")
    outputs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"{engine}.csv"
        extra = ["--spark-master", "local[2]"] if engine == "spark" else []
        done = run(
            "detect", str(data), "--method", "noufaily", "--out", str(out), "--engine", engine,
            *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs[engine] = out.read_bytes()
    assert outputs["spark"] == outputs["duckdb"]


def test_spark_options_without_the_spark_engine_are_named(tmp_path: Path) -> None:
    data = _long(REFERENCE / "ha.csv", tmp_path / "ha.csv")
    done = run("detect", str(data), "--method", "ears-c1", "--spark-master", "local[2]")
    assert done.returncode == 0, done.stderr
    assert "note: --spark-master is ignored with --engine duckdb" in done.stderr


def test_spark_without_a_session_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="needs a Spark session"):
        by_series(KERNELS["ears-c1"], _hepatitis(), engine="spark")


def test_the_hubs_regional_detection_is_identical_on_spark(spark: Any) -> None:
    cells = pa.Table.from_pylist(_seasonal(), COUNTS_AS_OF)
    here = regional_detect(cells, "DENGUE", method="noufaily")
    there = regional_detect(cells, "DENGUE", method="noufaily", engine="spark", spark=spark)
    assert there.points.equals(here.points) and there.series == here.series
    assert there.alarms.num_rows > 0  # the planted outbreak is found on both


def test_the_session_takes_back_large_results(spark: Any) -> None:
    """Outputs of 200,000 series (about 1.4 GB) were lost under Spark's 1 GB defaults
    ("TaskResultLost", found by benchmarks/bench_scale.py); without a Spark configuration
    of the user's, the session lifts them."""
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.maxResultSize") == "0"
    assert conf.get("spark.driver.memory") == os.environ.get("SPARK_DRIVER_MEMORY", "4g")
