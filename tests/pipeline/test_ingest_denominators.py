"""Denominators (population per area and year): each rule quarantines its row, every row
is accounted for, and the totals are the source's."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from epibridge.model.errors import ProfileError
from epibridge.model.schema import DENOMINATORS
from epibridge.profiles import parse_profile
from tests.pipeline.ingested import ingest_text, quarantine_rows
from tests.test_cli import run

PROFILE = """
[profile]
name = "test-population"
title = "NIS census 2019"
format = "delimited"
dataset = "denominators"
country = "KHM"
[fields]
population = "pop"
sex = "sex"
age_band = "age"
[period]
year = "year"
[area]
columns = ["province"]
"""

ROWS = """province,year,sex,age,pop
Takeo,2019,,,900914
Kampot,2019,,,593829
Kampot,2019,,,593829
Kep,2019,F,,20000
Kep,2019,M,,22665
Kep,20x9,M,,1
Kep,2019,Q,,5
Kepp,2019,,,42665
Pailin,2019,,,-3
Pailin,2019,,,
Pailin,2019,,0-4,9x
"""

EXPECTED = {
    3: ("duplicate_cell", "place and period"),
    6: ("bad_period", "period"),
    7: ("unknown_code", "sex"),
    8: ("unknown_area", "place"),
    9: ("negative_count", "pop"),
    10: ("missing_required", "pop"),
    11: ("bad_number", "pop"),
}


@pytest.fixture
def out(write: Callable[[str, str], Path], tmp_path: Path) -> Path:
    return ingest_text(write, PROFILE, ROWS, tmp_path / "out")


def test_each_rule_quarantines_with_file_field_and_message(out: Path) -> None:
    rows = quarantine_rows(out)
    assert {k: (r["rule"], r["field"]) for k, r in rows.items()} == EXPECTED
    assert all(r["file"] == "in.csv" and r["message"] for r in rows.values())
    assert "(area|year|age|sex) already appeared in record 2" in rows[3]["message"]
    assert rows[6]["value"] == "20x9" and "not a year" in rows[6]["message"]
    assert "Kep" in rows[8]["suggestion"]


def test_accounting_totals_and_schema(out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "denominators"
    assert (summary["read"], summary["quarantined"]) == (11, len(EXPECTED))
    assert summary["accepted"] + summary["quarantined"] == summary["read"]
    table = pq.read_table(out / "denominators.parquet")
    assert [(f.name, f.type) for f in table.schema] == [(f.name, f.type) for f in DENOMINATORS]
    assert table.num_rows == summary["accepted"] == summary["totals"]["denominators_rows"] == 4
    # Takeo + Kampot + Kep's two sexes (no all-sexes row for Kep: its strata add up).
    assert summary["totals"]["population_total"] == 900914 + 593829 + 20000 + 22665
    rows = table.to_pylist()
    assert {r["year"] for r in rows} == {2019}
    assert {r["source"] for r in rows} == {"NIS census 2019"}  # unmapped: the title
    assert sorted(r["sex"] or "" for r in rows if r["area"] == "KH-23") == ["F", "M"]


def test_period_must_be_yearly() -> None:
    for period in ('year = "year"\nweek = "week"', 'from_date = "date_report"', 'dhis2 = "p"'):
        text = PROFILE.replace('year = "year"', period)
        with pytest.raises(ProfileError, match="denominators are yearly") as caught:
            parse_profile(text, Path("p.toml"))
        assert caught.value.key is not None and caught.value.key.startswith("period")
    with pytest.raises(ProfileError, match="must map population"):
        parse_profile(PROFILE.replace('population = "pop"\n', ""), Path("p.toml"))


def test_shipped_example_ingests_cleanly_through_the_cli(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "src/epibridge/examples/khm_population_2019.csv"
    result = run(
        "ingest",
        "--profile",
        "mekong-khm-csv-population",
        "--out",
        str(tmp_path / "o"),
        str(example),
    )
    assert result.returncode == 0, result.stderr
    assert "population total 15,552,211" in result.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert (summary["read"], summary["accepted"], summary["quarantined"]) == (25, 25, 0)
    with example.open(encoding="utf-8") as handle:
        source = sum(int(r["population"]) for r in csv.DictReader(handle))
    assert summary["totals"]["population_total"] == source == 15_552_211
    table = pq.read_table(tmp_path / "o" / "denominators.parquet")
    assert len(set(table.column("area").to_pylist())) == 25
