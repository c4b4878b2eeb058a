"""Reporting (reports expected / received / on time): each rule quarantines its record,
every record is accounted for, and totals are the source's (wide CSV and DHIS2 long)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epibridge.ingest import ingest
from epibridge.model.errors import ProfileError, SourceError
from epibridge.model.schema import REPORTING
from epibridge.profiles import load_profile, parse_profile
from tests.conftest import TODAY
from tests.pipeline.ingested import ingest_text, quarantine_rows
from tests.test_cli import run

PROFILE = """
[profile]
name = "test-reporting"
format = "delimited"
dataset = "reporting"
country = "KHM"
[fields]
disease = "dx"
reports_expected = "expected"
reports_received = "received"
reports_on_time = "on_time"
[period]
year = "year"
week = "week"
[area]
columns = ["province"]
"""

HEADER = "province,dx,year,week,expected,received,on_time\n"
ROWS = (
    HEADER
    + """Takeo,DENGUE,2025,3,10,9,8
Takeo,,2025,3,12,12,11
Kampot,DENGUE,2025,3,5,6,4
Kampot,,2025,3,5,4,5
Takeo,DENGUE,2025,3,10,9,8
Kampot,DENGUE,2025,4,-1,0,0
Kampot,DENGUE,2025,5,,3,
Kampot,DENGUE,2025,6,7,x,
Kampot,MALARIA,2025,3,7,7,
"""
)

EXPECTED = {
    3: ("received_exceeds_expected", "received"),
    4: ("on_time_exceeds_received", "on_time"),
    5: ("duplicate_cell", "place and period"),
    6: ("negative_count", "expected"),
    7: ("missing_required", "expected"),
    8: ("bad_number", "received"),
}


@pytest.fixture
def out(write: Callable[[str, str], Path], tmp_path: Path) -> Path:
    return ingest_text(write, PROFILE, ROWS, tmp_path / "out")


def test_each_rule_quarantines_with_file_field_and_message(out: Path) -> None:
    rows = quarantine_rows(out)
    assert {k: (r["rule"], r["field"]) for k, r in rows.items()} == EXPECTED
    assert all(r["file"] == "in.csv" and r["message"] for r in rows.values())
    assert (
        "reports_received (6, column received) exceeds reports_expected (5" in (rows[3]["message"])
    )
    assert "reports_on_time (5" in rows[4]["message"] and rows[4]["value"] == "5"
    assert "already appeared in record 1" in rows[5]["message"]
    assert "(area|disease|start|end)" in rows[5]["message"]
    assert rows[6]["value"] == "-1"


def test_accounting_and_totals_match_the_source(out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "reporting"
    assert (summary["read"], summary["quarantined"]) == (9, len(EXPECTED))
    assert summary["accepted"] + summary["quarantined"] == summary["read"]
    table = pq.read_table(out / "reporting.parquet")
    assert table.num_rows == summary["accepted"] == 3
    source = list(csv.DictReader(io.StringIO(ROWS)))
    kept = [source[i - 1] for i in range(1, 10) if i not in EXPECTED]
    totals = summary["totals"]
    assert totals["reporting_rows"] == 3
    assert totals["reports_expected"] == sum(int(r["expected"]) for r in kept) == 29
    assert totals["reports_received"] == sum(int(r["received"]) for r in kept)
    assert totals["reports_on_time"] == sum(int(r["on_time"] or 0) for r in kept)


def test_rows_are_in_the_reporting_schema(out: Path) -> None:
    table = pq.read_table(out / "reporting.parquet")
    assert [(f.name, f.type) for f in table.schema] == [(f.name, f.type) for f in REPORTING]
    rows = {r["source_record"]: r for r in table.to_pylist()}
    assert rows[1]["disease"] == "DENGUE" and rows[1]["period"] == "2025-W03"
    # An empty disease is a report for all notifiable diseases.
    assert rows[2]["disease"] is None and rows[2]["reports_on_time"] == 11
    assert rows[9]["reports_on_time"] is None


def test_reporting_without_disease_and_without_needed_fields(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    text = PROFILE.replace('disease = "dx"\n', "")
    profile = load_profile(write("p.toml", text))
    ingest(profile, [write("in.csv", HEADER + "Takeo,x,2025,3,10,9,8\n")], tmp_path / "o", TODAY)
    assert pq.read_table(tmp_path / "o" / "reporting.parquet").column("disease").to_pylist() == [
        None
    ]
    with pytest.raises(ProfileError) as caught:
        parse_profile(PROFILE.replace('reports_received = "received"\n', ""), Path("p.toml"))
    assert "reports_received" in str(caught.value) and caught.value.key == "fields"


LONG_PROFILE = """
[profile]
name = "test-dhis2-reporting"
format = "dhis2-json"
dataset = "reporting"
country = "LAO"
[period]
dhis2 = "period"
[area]
columns = ["org_unit"]
match = "code"
[measures]
column = "data_element"
value = "value"
[measures.map]
"DS.EXPECTED_REPORTS" = { disease = "", measure = "reports_expected" }
"DS.ACTUAL_REPORTS" = { disease = "", measure = "reports_received" }
"DS.ACTUAL_REPORTS_ON_TIME" = { measure = "reports_on_time" }
"""


def _value(element: str, ou: str, period: str, value: str) -> dict[str, str]:
    return {"dataElement": f"DS.{element}", "orgUnit": ou, "period": period, "value": value}


def test_dhis2_reporting_rates_pivot_to_cells(
    write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    values = [
        _value("EXPECTED_REPORTS", "LA-CH", "2025W23", "10"),  # 1
        _value("ACTUAL_REPORTS", "LA-CH", "2025W23", "9"),  # 2
        _value("ACTUAL_REPORTS_ON_TIME", "LA-CH", "2025W23", "7"),  # 3
        _value("EXPECTED_REPORTS", "LA-AT", "2025W23", "4"),  # 4: received > expected
        _value("ACTUAL_REPORTS", "LA-AT", "2025W23", "5"),  # 5
        _value("ACTUAL_REPORTS", "LA-SL", "2025W23", "3"),  # 6: nothing expected
        _value("EXPECTED_REPORTS", "LA-CH", "2025W24", "10"),  # 7
        _value("ACTUAL_REPORTS", "LA-CH", "2025W24", "10"),  # 8
        _value("ACTUAL_REPORTS", "LA-CH", "2025W24", "8"),  # 9: repeated measure
        _value("REPORTING_RATE", "LA-CH", "2025W24", "100"),  # 10: not mapped
    ]
    data = write("rates.json", json.dumps({"dataValues": values}))
    profile = load_profile(write("p.toml", LONG_PROFILE))
    ingest(profile, [data], tmp_path / "o", TODAY)
    rows = quarantine_rows(tmp_path / "o")
    assert {k: r["rule"] for k, r in rows.items()} == {
        4: "received_exceeds_expected",
        5: "received_exceeds_expected",
        6: "missing_required",
        9: "duplicate_cell",
        10: "unknown_code",
    }
    assert rows[6]["field"] == "reports_expected" and "LA-SL" in rows[6]["message"]
    assert "exceeds reports_expected (4)" in rows[4]["message"]
    cells = pq.read_table(tmp_path / "o" / "reporting.parquet").to_pylist()
    got = {(c["area"], c["period"]): c for c in cells}
    assert set(got) == {("LA-CH", "2025-W23"), ("LA-CH", "2025-W24")}
    first = got[("LA-CH", "2025-W23")]
    assert (first["reports_expected"], first["reports_received"], first["reports_on_time"]) == (
        10,
        9,
        7,
    )
    assert first["disease"] is None and first["source_record"] == 1
    assert got[("LA-CH", "2025-W24")]["reports_on_time"] is None
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["accepted"] + summary["quarantined"] == summary["read"] == 10


def test_a_measure_of_another_dataset_is_a_profile_error() -> None:
    text = LONG_PROFILE.replace('measure = "reports_received"', 'measure = "cases"')
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, Path("p.toml"))
    assert caught.value.key == 'measures.map."DS.ACTUAL_REPORTS"'
    assert caught.value.line == 17
    assert "reports_received" in str(caught.value)
    counts = text.replace('dataset = "reporting"', 'dataset = "counts"')
    with pytest.raises(ProfileError, match="reports_expected' is not a measure of a counts"):
        parse_profile(counts, Path("p.toml"))


def test_shipped_example_ingests_cleanly_through_the_cli(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "src/epibridge/examples/dhis2_reporting_rates.json"
    result = run(
        "ingest", "--profile", "dhis2-example-reporting", "--out", str(tmp_path / "o"), str(example)
    )
    assert result.returncode == 0, result.stderr
    assert "reports expected 1,380" in result.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert (summary["read"], summary["accepted"], summary["quarantined"]) == (60, 60, 0)
    values = json.loads(example.read_text())["dataValues"]
    for name, element in (
        ("reports_expected", "EXPECTED_REPORTS"),
        ("reports_received", "ACTUAL_REPORTS"),
        ("reports_on_time", "ACTUAL_REPORTS_ON_TIME"),
    ):
        mine = [int(v["value"]) for v in values if v["dataElement"].endswith("." + element)]
        assert summary["totals"][name] == sum(mine)
    assert summary["totals"]["reporting_rows"] == 20


cell = st.one_of(
    st.sampled_from(["", "0", "3", "12", "-2", "1e3", "x", "Takeo", "Kampot", "DENGUE", "2025"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
)
row = st.lists(cell, min_size=0, max_size=8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, max_size=15))
def test_malformed_reporting_rows_are_accounted_for(rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(HEADER.strip().split(","))
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "p.toml").write_text(PROFILE, encoding="utf-8")
        (root / "in.csv").write_text(buffer.getvalue(), encoding="utf-8")
        refusal = ""
        try:
            result = ingest(load_profile(root / "p.toml"), [root / "in.csv"], root / "o", TODAY)
        except SourceError as exc:  # a whole-file refusal must name the file
            refusal = str(exc)
        if refusal:
            assert "in.csv" in refusal
            return
        assert result.accepted + result.quarantined == result.read
        table = pq.read_table(root / "o" / "reporting.parquet")
        assert table.num_rows == result.accepted
        for r in table.to_pylist():
            assert 0 <= r["reports_received"] <= r["reports_expected"]
            assert r["reports_on_time"] is None or r["reports_on_time"] <= r["reports_received"]
        with (root / "o" / "quarantine.csv").open(encoding="utf-8") as handle:
            for q in csv.DictReader(handle):
                assert q["file"] == "in.csv" and q["rule"] and q["message"] and q["field"]
