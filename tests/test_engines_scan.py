"""The space-time scans give identical results on this machine and on Spark (local mode).

The Monte Carlo replicates are split into blocks whose size depends on the scan only,
each drawn from its own child stream of the seed (``scan.replicate_blocks``); Spark runs
one task per block (``engines.SparkBlocks``) and the blocks come back in order. Both
scans, the hub's regional scan and the commands that run it (``hub scan``, ``hub alerts
raise``) are compared here, as a user runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from epibridge.algorithms.scan import (
    _CHUNK_CELLS,
    REPLICATES_PER_BLOCK,
    ScanAreas,
    ScanResult,
    poisson_scan,
    replicate_blocks,
    space_time_permutation_scan,
)
from epibridge.cli import app
from epibridge.engines import EngineError, SparkBlocks, block_map
from epibridge.hub.alert_store import list_alerts
from epibridge.model.schema import RELEASE_COUNTS
from tests.hub import test_intake
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, _send
from tests.hub.test_temporal import _seasonal
from tests.test_engines import spark  # noqa: F401 (the module's Spark session)

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

_T = TypeVar("_T")
_R = TypeVar("_R")


def _grid(side: int = 8, weeks: int = 12) -> tuple[ScanAreas, np.ndarray, np.ndarray]:
    """``side`` x ``side`` areas over two countries, Poisson counts, a cluster planted on
    the border in the last two weeks."""
    rng = np.random.default_rng(31)
    cells = [(r, c) for r in range(side) for c in range(side)]
    lon = np.array([100.0 + 0.2 * c for _, c in cells])
    lat = np.array([10.0 + 0.2 * r for r, _ in cells])
    countries = ["AAA" if c < side // 2 else "BBB" for _, c in cells]
    areas = ScanAreas.of([f"A{i:03d}" for i in range(len(cells))], countries, lon, lat)
    population = rng.integers(20_000, 200_000, len(cells)).astype(float)
    mean = 3.0 * population / population.mean()
    counts = rng.poisson(np.repeat(mean[:, None], weeks, axis=1)).astype(float)
    border = [i for i, (r, c) in enumerate(cells) if r in (3, 4) and c in (3, 4)]
    counts[border, -2:] += rng.poisson(3.0 * mean[border][:, None], (len(border), 2))
    return areas, population, counts


def _scan(model: str, **kw: Any) -> ScanResult:
    areas, population, counts = _grid()
    if model == "permutation":
        return space_time_permutation_scan(
            counts, areas, np.random.default_rng(5), max_weeks=3, max_share=0.2, **kw
        )
    return poisson_scan(
        counts, population, areas, np.random.default_rng(5), max_weeks=3, max_share=0.2, **kw
    )


def _same(a: ScanResult, b: ScanResult) -> None:
    np.testing.assert_array_equal(a.null_max_llr, b.null_max_llr)
    np.testing.assert_array_equal(a.llr, b.llr)
    assert a.clusters == b.clusters


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_hub_scan_and_alerts_on_spark_from_the_command_line(
    hub: Hub, tmp_path: Path, url: str
) -> None:
    # first in the module: the commands start and stop their own Spark session
    _send(hub, tmp_path, A, pa.Table.from_pylist(_seasonal(), RELEASE_COUNTS), at_hours=0)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    at = (NOW + timedelta(hours=1)).isoformat()

    def run(*args: str) -> str:
        done = CliRunner().invoke(
            app, ["hub", *args, "--as-of", at, "--home", str(home)], env={"COLUMNS": "200"}
        )
        assert done.exit_code == 0, done.output
        return done.stdout

    scan = ["scan", "--disease", "DENGUE", "--weeks", "8", "--seed", "3"]
    here = run(*scan)
    there = run(*scan, "--engine", "spark", "--spark-master", "local[2]")
    assert there == here and "KH-1" in here
    # the alerts raised from a scan and a detection on Spark are those raised here
    engine = hub.context.store.engine
    raise_ = ["alerts", "raise", "--disease", "DENGUE", "--scan-weeks", "8"]
    first = run(*raise_, "--engine", "spark", "--spark-master", "local[2]")
    raised = list_alerts(engine)
    assert raised and "new alerts" in first
    again = run(*raise_)  # the same signals here: every one already raised
    assert "0 new alerts, 0 merged" in again and len(list_alerts(engine)) == len(raised)


def test_the_blocks_depend_on_the_scan_size_only() -> None:
    assert replicate_blocks(999, 40, 4) == [REPLICATES_PER_BLOCK] * 9 + [99]
    assert replicate_blocks(1000, 40, 4) == [REPLICATES_PER_BLOCK] * 10
    # a block's cylinder sums stay within the memory budget: fewer replicates per block
    many = replicate_blocks(999, 50_000, 4)
    assert max(many) == _CHUNK_CELLS // (50_000 * 4) and sum(many) == 999
    # more cylinders than the budget: one replicate at a time, never none
    assert replicate_blocks(999, _CHUNK_CELLS, 2) == [1] * 999


@pytest.mark.parametrize("model", ["permutation", "poisson"])
def test_blocks_run_in_any_order_give_the_same_scan(model: str) -> None:
    """Each block has its own stream: running them last-first (as a cluster may) changes
    nothing, and a different seed does change the null distribution."""

    def backwards(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        return [work(item) for item in items[::-1]][::-1]

    here = _scan(model)
    _same(here, _scan(model, map_blocks=backwards))
    assert here.null_max_llr.size == 999 and len(set(here.null_max_llr)) > 100
    top = here.most_likely
    assert top is not None and top.cross_border and top.p_value == pytest.approx(1 / 1000)


@pytest.mark.parametrize("model", ["permutation", "poisson"])
def test_both_scans_are_identical_on_spark(spark: Any, model: str) -> None:  # noqa: F811
    here = _scan(model)
    there = _scan(model, map_blocks=block_map("spark", spark))
    _same(here, there)
    assert len(replicate_blocks(999, here.llr.shape[0], 3)) == 10  # ten Spark tasks


def test_spark_blocks_keep_the_items_order(spark: Any) -> None:  # noqa: F811
    run = SparkBlocks(spark)
    assert run(abs, list(range(-20, 0))) == list(range(20, 0, -1))
    assert run(abs, []) == []


def test_blocks_on_spark_without_a_session_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="needs a Spark session"):
        block_map("spark")
