"""The hub's scorecards and burden table on Spark equal the ones computed in its database.

The same Ibis expressions (``quality_sql``, ``picture_expr.current``) run on the hub's
database and on Spark (``local[2]``) over a Parquet snapshot of the hub's tables
(``picture_expr.export_tables``): on the planted hub of ``test_quality_sql``
(duplicates, repetitions, revisions, withheld cells, sex and age strata, an area at two
levels, periods starting the same day) and the mixed one of ``test_scale_aggregates``
(totals, strata, withheld cells, a revision), exported from SQLite and from PostgreSQL;
and from the command line, as a user runs them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from epibridge.cli import app
from epibridge.hub import quality
from epibridge.hub.burden import burden
from epibridge.hub.picture_expr import Filters, SparkSource, export_tables
from epibridge.hub.quality_sql import areas_seen, period_sums
from epibridge.hub.regional import cells_for_burden
from epibridge.hub.regional_context import burden_inputs
from epibridge.hub.tables import regional_counts_table, submissions_table
from tests.hub import test_quality_sql
from tests.hub.test_intake import NOW, Hub
from tests.test_engines import spark  # noqa: F401 (the module's Spark session)
from tests.web.test_scale_aggregates import WEEKS, mixed  # noqa: F401 (a fixture)

world = test_quality_sql.world
hub = test_quality_sql.hub
url = test_quality_sql.url  # SQLite and PostgreSQL
planted = test_quality_sql.planted

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_scorecards_on_spark_from_the_command_line(planted: Hub, tmp_path: Path, url: str) -> None:
    # first in the module: the command starts and stops its own Spark session
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    at = NOW + timedelta(hours=300)
    out = tmp_path / "cards.csv"
    done = CliRunner().invoke(
        app,
        ["hub", "scorecards", "--as-of", at.isoformat(), "--home", str(home), "--out", str(out),
         "--engine", "spark", "--spark-master", "local[2]"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "snapshot for Spark: regional_counts" in done.output
    assert (home / "spark-snapshot" / "regional_counts.parquet").exists()
    engine = planted.context.store.engine
    expected = quality._compute(engine, at, (), quality.Thresholds())
    written = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert written["countries"] == [quality.score_json(expected.countries["KHM"])]
    assert out.read_text(encoding="utf-8").count("\n") == expected.periods.num_rows + 1


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_burden_on_spark_from_the_command_line(
    mixed: Hub,  # noqa: F811
    tmp_path: Path,
    url: str,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    at = (NOW + timedelta(hours=3)).isoformat()
    written = {}
    for engine in ("database", "spark"):
        out = tmp_path / f"burden-{engine}.csv"
        done = CliRunner().invoke(
            app,
            ["hub", "burden", "--disease", "DENGUE", "--as-of", at, "--home", str(home),
             "--out", str(out), "--engine", engine, "--spark-master", "local[2]",
             "--snapshot", str(tmp_path / "snap")],
            env={"COLUMNS": "200"},
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        written[engine] = out.read_text(encoding="utf-8")
    assert written["spark"] == written["database"]
    assert written["spark"].count("\n") > len(WEEKS)
    assert (tmp_path / "snap" / "submissions.parquet").exists()


def test_the_snapshot_holds_every_row(planted: Hub, tmp_path: Path) -> None:
    engine = planted.context.store.engine
    written = export_tables(engine, tmp_path / "snap")
    with engine.connect() as c:
        for table in (regional_counts_table, submissions_table):
            held = c.execute(table.select()).fetchall()
            got = pq.read_table(tmp_path / "snap" / f"{table.name}.parquet")
            assert written[table.name] == len(held) == got.num_rows
            assert got.column_names == [col.name for col in table.columns]
    times = pq.read_table(tmp_path / "snap" / "submissions.parquet").column("received_at")
    assert str(times.type) == "timestamp[us, tz=UTC]"


def test_a_missing_snapshot_is_named(spark: object, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(
        FileNotFoundError, match=r"(?s)regional_counts\.parquet.*what to do: export"
    ):
        SparkSource(spark, tmp_path)


def _snapshot(
    hub: Hub, session: object, folder: Path, hours: float
) -> tuple[Engine, datetime, SparkSource]:
    """The hub's database, the moment ``hours`` after ``NOW``, and Spark reading a
    snapshot of the hub's tables written to ``folder``."""
    engine = hub.context.store.engine
    export_tables(engine, folder / "snap")
    return engine, NOW + timedelta(hours=hours), SparkSource(session, folder / "snap")


@pytest.mark.parametrize("hours", [-1, 1, 40, 70, 300])
def test_period_sums_on_spark_equal_the_database(
    planted: Hub,
    spark: object,  # noqa: F811
    tmp_path: Path,
    hours: float,
) -> None:
    engine, at, cells = _snapshot(planted, spark, tmp_path, hours)
    on_spark = period_sums(cells, at)
    assert on_spark == period_sums(engine, at)
    assert (len(on_spark) > 0) == (hours > 0)
    assert areas_seen(cells, at, ["KHM"]) == areas_seen(engine, at, ["KHM"])
    limits = quality.Thresholds()
    spark_cards = quality._compute(engine, at, (), limits, cells)
    database_cards = quality._compute(engine, at, (), limits)
    assert spark_cards.periods.equals(database_cards.periods)
    assert spark_cards.countries == database_cards.countries


@pytest.mark.parametrize("hours", [0.5, 1.5, 3])
def test_burden_on_spark_equals_the_database(
    mixed: Hub,  # noqa: F811
    spark: object,  # noqa: F811
    tmp_path: Path,
    hours: float,
) -> None:
    engine, at, cells = _snapshot(mixed, spark, tmp_path, hours)
    window = Filters(countries=["KHM"], diseases=["DENGUE"], period_from=WEEKS[1])
    for filters in (Filters(), window):
        on_spark = cells_for_burden(cells, at, filters)
        in_database = cells_for_burden(engine, at, filters)
        assert on_spark.num_rows > 0
        assert on_spark.equals(in_database)
        extra = burden_inputs(engine, at, in_database)
        assert burden(on_spark, {}, **extra).equals(burden(in_database, {}, **extra))
