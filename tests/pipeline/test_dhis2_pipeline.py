"""A DHIS2 data value set with the CODE id scheme, through the whole pipeline."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from epibridge.ingest import ingest
from epibridge.profiles import load_profile
from tests.conftest import TODAY

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "dhis2" / "datavalueset_code_scheme.json"
PROFILE = """
[profile]
name = "lao-idsr-test"
format = "dhis2-json"
dataset = "counts"
country = "LAO"
[period]
dhis2 = "period"
[area]
columns = ["org_unit"]
match = "code"
# District codes of this DHIS2 instance placed in their province (Vientiane Capital).
codes = { LA_VTE_CHANTHABULY = "LA-VT", LA_VTE_SISATTANAK = "LA-VT" }
[measures]
column = "data_element"
value = "value"
strata_column = "category_option_combo"
deleted_column = "deleted"
[measures.map]
IDSR_DENGUE_CASES = { disease = "DENGUE", measure = "cases" }
IDSR_DENGUE_DEATHS = { disease = "DENGUE", measure = "deaths" }
[measures.strata]
AGE_0_4_F = { age_band = "0-4", sex = "F" }
AGE_0_4_M = { age_band = "0-4", sex = "M" }
"""


def test_dhis2_code_scheme_values(write: Callable[[str, str], Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = ingest(load_profile(write("p.toml", PROFILE)), [FIXTURE], out, TODAY)
    assert result.read == result.accepted + result.quarantined
    with (out / "quarantine.csv").open(encoding="utf-8") as handle:
        held = list(csv.DictReader(handle))
    rules = {r["rule"] for r in held}
    assert "deleted_in_source" in rules  # the soft-deleted value is not counted
    assert "unreadable_record" in rules  # the two broken values (a list, an object)
    cells = pq.read_table(out / "counts.parquet").to_pylist()
    assert cells
    assert {c["area"] for c in cells} == {"LA-VT"}
    assert {c["period"] for c in cells} <= {"2024-W09", "2024-W10"}
    assert all(c["calendar"] == "iso" for c in cells)
    week10_male = [c for c in cells if c["period"] == "2024-W10" and c["sex"] == "M"]
    assert week10_male
    assert week10_male[0]["cases"] == 5
