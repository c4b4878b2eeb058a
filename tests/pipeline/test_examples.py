"""The shipped DHIS2 and FHIR examples reconcile with their own totals."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from epibridge.ingest import ingest
from epibridge.profiles import load_profile
from tests.conftest import TODAY

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "epibridge" / "examples"


def test_fhir_measure_reports_total_each_report_once(tmp_path: Path) -> None:
    path = EXAMPLES / "fhir_madx_measurereport.json"
    result = ingest(load_profile("fhir-madx-example"), [path], tmp_path, TODAY)
    bundle = json.loads(path.read_text(encoding="utf-8"))
    groups = [e["resource"]["group"][0] for e in bundle["entry"]]
    assert result.totals["counts_cases"] == sum(g["population"][0]["count"] for g in groups)
    strata = sum(
        p["count"] for g in groups for st in g["stratifier"][0]["stratum"] for p in st["population"]
    )
    assert strata == result.totals["counts_cases"]  # the example's strata add up
    assert result.quarantined == 0


def test_dhis2_values_sum_to_the_accepted_cases(tmp_path: Path) -> None:
    path = EXAMPLES / "dhis2_datavalueset.json"
    result = ingest(load_profile("dhis2-example-weekly"), [path], tmp_path, TODAY)
    values = json.loads(path.read_text(encoding="utf-8"))["dataValues"]
    good = [v for v in values if v["period"] != "2025W54" and not v["value"].startswith("-")]
    expected = sum(int(v["value"]) for v in good if v["dataElement"] == "IDSR_DENGUE_CASES")
    assert result.totals["counts_cases"] == expected
    assert result.by_rule() == {"bad_period": 1, "negative_count": 1}


def test_fhir_case_bundle_to_line_list(tmp_path: Path) -> None:
    bundle = Path(__file__).resolve().parents[1] / "data" / "fhir" / "dengue-case-bundle.json"
    result = ingest(load_profile("fhir-case-bundle-example"), [bundle], tmp_path, TODAY)
    assert (result.read, result.accepted, result.quarantined) == (2, 2, 0)
    cases = {c["case_id"]: c for c in pq.read_table(tmp_path / "cases.parquet").to_pylist()}
    first = cases["case-la-0001"]
    assert (first["disease"], first["disease_detail"]) == ("DENGUE", "Dengue haemorrhagic fever")
    assert (first["area"], first["sex"], first["classification"]) == ("LA-VT", "F", "confirmed")
    assert (first["imported"], first["country_of_infection"]) == (True, "THA")
    second = cases["case-la-0002"]
    # No onset: the period falls back to the week the case was recorded.
    assert second["date_onset"] is None
    assert second["period"] == "2024-W10"
    assert (second["area"], second["classification"], second["outcome"]) == (
        "LA-SV",
        "probable",
        "alive",
    )
