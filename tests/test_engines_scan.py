"""The space-time scans give identical results on this machine and on Spark (local mode).

The Monte Carlo replicates are split into blocks whose size depends on the scan only,
each drawn from its own child stream of the seed (``scan.replicate_blocks``); Spark runs
one task per block (``engines.SparkBlocks``) and the blocks come back in order. Both
scans, the hub's regional scan and detection of the synthetic Mekong scenario, and the
commands that run them (``hub scan``, ``hub alerts raise``) are compared here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
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
from epibridge.hub.regional import COUNTS_AS_OF
from epibridge.hub.signals import SignalError, regional_scan
from epibridge.hub.temporal import regional_detect
from epibridge.model.schema import RELEASE_COUNTS
from epibridge.scenario.mekong import Scenario, generate
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


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_nothing_to_scan_or_monitor_is_said_before_spark_starts(
    hub: Hub, tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _send(hub, tmp_path, A, pa.Table.from_pylist(_seasonal(), RELEASE_COUNTS), at_hours=0)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    started: list[str | None] = []

    def no_spark(master: str | None) -> Any:
        started.append(master)
        raise AssertionError("Spark started for a scan with nothing to scan")

    monkeypatch.setattr("epibridge.cli_engine.spark_session", no_spark)
    at = (NOW + timedelta(hours=1)).isoformat()
    args = ["hub", "scan", "--disease", "CHOLERA", "--engine", "spark", "--as-of", at]
    done = CliRunner().invoke(app, [*args, "--home", str(home)], env={"COLUMNS": "200"})
    # cli.main prints an EpibridgeError as one line (tests/test_cli checks that path)
    assert isinstance(done.exception, SignalError)
    assert "no weekly counts of CHOLERA" in str(done.exception)
    # detection and alert raising say so too, without Spark
    detect = ["hub", "detect", "--disease", "CHOLERA", "--engine", "spark", "--as-of", at]
    done = CliRunner().invoke(app, [*detect, "--home", str(home)], env={"COLUMNS": "200"})
    assert done.exit_code == 1 and "no counts of CHOLERA" in done.output
    raise_ = ["hub", "alerts", "raise", "--disease", "CHOLERA", "--engine", "spark"]
    done = CliRunner().invoke(
        app, [*raise_, "--as-of", at, "--home", str(home)], env={"COLUMNS": "200"}
    )
    assert done.exit_code == 0, done.output
    assert "no scan" in done.output and "no temporal detection" in done.output
    assert "0 signals" in done.output
    assert started == []


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


def _scenario_cells(scenario: Scenario) -> pa.Table:
    """The synthetic Mekong scenario's true weekly dengue counts as the hub's cells."""
    counts = scenario.counts.to_pylist()
    received = datetime(2026, 11, 24, tzinfo=UTC)
    rows = []
    for r in counts:
        year, week, _ = r["week_start"].isocalendar()
        rows.append(
            {
                "source_row": 0,
                "country": r["country"],
                "area": r["area"],
                "area_level": 1,
                "disease": "DENGUE",
                "period": f"{year}-W{week:02d}",
                "period_type": "week",
                "calendar": "iso",
                "period_start": r["week_start"],
                "period_end": r["week_start"] + timedelta(days=6),
                "cases": r["cases"],
                "cases_suppressed": False,
                "deaths": r["deaths"],
                "deaths_suppressed": False,
                "submission_id": f"s-{r['country']}",
                "agreement_id": "a",
                "received_at": received,
            }
        )
    return pa.Table.from_pylist(rows, COUNTS_AS_OF)


def test_the_scenarios_detection_and_scan_are_identical_on_spark(spark: Any) -> None:  # noqa: F811
    """The hub's detection and cross-border scan of the synthetic Mekong scenario, as the
    demo runs them, give the same alarms and clusters on Spark; the planted cross-border
    outbreak is the most likely cluster on both."""
    scenario = generate(date(2026, 11, 23))
    cells = _scenario_cells(scenario)
    here = regional_scan(cells, "DENGUE", np.random.default_rng(2026), weeks=26)
    there = regional_scan(
        cells, "DENGUE", np.random.default_rng(2026), weeks=26, map_blocks=block_map("spark", spark)
    )
    _same(here.result, there.result)
    top = here.result.most_likely
    assert top is not None and top.cross_border and top.p_value == pytest.approx(1 / 1000)
    planted = next(o for o in scenario.outbreaks if len(o.countries) > 1)
    assert set(planted.areas) <= set(top.areas)
    found = regional_detect(cells, "DENGUE", method="noufaily", weeks=4)
    on_spark = regional_detect(
        cells, "DENGUE", method="noufaily", weeks=4, engine="spark", spark=spark
    )
    assert on_spark.points.equals(found.points) and on_spark.alarms.num_rows > 0


def test_spark_blocks_keep_the_items_order(spark: Any) -> None:  # noqa: F811
    run = SparkBlocks(spark)
    assert run(abs, list(range(-20, 0))) == list(range(20, 0, -1))
    assert run(abs, []) == []


def test_blocks_on_spark_without_a_session_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="needs a Spark session"):
        block_map("spark")
