"""Every validation rule quarantines what it should, and every record is accounted for."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from epibridge.ingest import ingest
from epibridge.model.errors import EpibridgeError
from epibridge.profiles import load_profile
from tests.conftest import TODAY

PROFILE = """
[profile]
name = "test-cases"
format = "delimited"
dataset = "cases"
country = "KHM"
[fields]
case_id = "id"
disease = { column = "dx", required = true }
date_onset = "onset"
date_report = "reported"
sex = "sex"
age_years = "age"
outcome = "outcome"
[period]
from_date = "date_report"
type = "week"
calendar = "iso"
[area]
columns = ["province"]
"""

ROWS = """id,dx,onset,reported,sex,age,outcome,province
1,DENGUE,2025-01-02,2025-01-05,M,34,alive,Takeo
2,A91,2025-01-03,2025-01-06,F,5,dead,Kampot
3,DENGU,2025-01-03,2025-01-06,F,5,alive,Takeo
4,DENGUE,2025-02-30,2025-01-06,F,5,alive,Takeo
5,DENGUE,2025-01-09,2025-01-06,F,50,alive,Takeo
5,DENGUE,2025-01-03,2025-01-06,F,5,alive,Takeo
6,DENGUE,2025-01-03,2027-01-06,F,5,alive,Takeo
7,,2025-01-03,2025-01-06,F,44,alive,Takeo
8,DENGUE,2025-01-03,2025-01-06,F,250,alive,Takeo
9,DENGUE,2025-01-03,2025-01-06,F,abc,alive,Takeo
10,DENGUE,2025-01-03,2025-01-06,F,9,alive,Takoe
11,DENGUE,2025-01-03,2025-01-06,Q,9,alive,Kampot
"""

EXPECTED = {
    3: "unknown_code",
    4: "bad_date",
    5: "date_order",
    6: "duplicate_id",
    7: "future_date",
    8: "missing_required",
    9: "implausible_age",
    10: "bad_number",
    11: "unknown_area",
    12: "unknown_code",
}


@pytest.fixture
def result(write: Callable[[str, str], Path], tmp_path: Path) -> Path:
    profile = load_profile(write("p.toml", PROFILE))
    out = tmp_path / "out"
    ingest(profile, [write("in.csv", ROWS)], out, TODAY)
    return out


def _quarantine(out: Path) -> list[dict[str, str]]:
    with (out / "quarantine.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_each_rule_catches_its_record(result: Path) -> None:
    rows = {int(r["record"]): r for r in _quarantine(result)}
    assert {k: v["rule"] for k, v in rows.items()} == EXPECTED


def test_accounting_adds_up(result: Path) -> None:
    summary = json.loads((result / "summary.json").read_text())
    assert summary["read"] == 12
    assert summary["accepted"] + summary["quarantined"] == summary["read"]
    assert summary["quarantined"] == len(EXPECTED)
    assert pq.read_table(result / "cases.parquet").num_rows == summary["accepted"]
    assert sum(summary["quarantined_by_rule"].values()) == summary["quarantined"]


def test_messages_name_field_value_and_suggest(result: Path) -> None:
    rows = {int(r["record"]): r for r in _quarantine(result)}
    assert rows[3]["field"] == "dx" and rows[3]["value"] == "DENGU"
    assert "DENGUE" in rows[3]["suggestion"]
    assert "Takeo" in rows[11]["suggestion"]
    assert rows[4]["value"] == "2025-02-30" and "not a real date" in rows[4]["message"]
    assert "already appeared in in.csv record 5" in rows[6]["message"]
    assert rows[9]["rule"] == "implausible_age" and "250" in rows[9]["message"]


def test_accepted_rows_are_harmonized(result: Path) -> None:
    cases = pq.read_table(result / "cases.parquet").to_pylist()
    first = next(c for c in cases if c["source_record"] == 2)
    assert first["disease"] == "DENGUE" and first["disease_detail"] == "A91"
    assert first["period"] == "2025-W02" and first["calendar"] == "iso"
    assert str(first["period_start"]) == "2025-01-06"
    assert first["country"] == "KHM" and first["area_level"] == 1
    assert first["admin1"] == first["area"]
    counts = pq.read_table(result / "counts.parquet").to_pylist()
    assert sum(c["cases"] for c in counts) == len(cases)
    assert sum(c["deaths"] or 0 for c in counts) == 1


def test_case_ids_repeated_across_input_files(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    profile = load_profile(write("p.toml", PROFILE))
    week1 = write("week1.csv", ROWS.splitlines()[0] + "\n" + "\n".join(ROWS.splitlines()[1:3]))
    week2 = write("week2.csv", ROWS.splitlines()[0] + "\n" + ROWS.splitlines()[1] + "\n")
    out = tmp_path / "multi"
    result = ingest(profile, [week1, week2], out, TODAY)
    held = _quarantine(out)
    # Case 1 was sent again in the second week's file: held back, pointing at the first.
    assert [(r["file"], r["record"], r["rule"]) for r in held] == [
        ("week2.csv", "1", "duplicate_id")
    ]
    assert "already appeared in week1.csv record 1" in held[0]["message"]
    assert (result.read, result.accepted, result.quarantined) == (3, 2, 1)


def test_inputs_with_the_same_name_are_refused(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    profile = load_profile(write("p.toml", PROFILE))
    first = write("a/in.csv", ROWS)
    second = write("b/in.csv", ROWS)
    with pytest.raises(EpibridgeError, match=r"share the file name in\.csv"):
        ingest(profile, [first, second], tmp_path / "o", TODAY)
