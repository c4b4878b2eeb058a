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


def test_a_cell_given_by_two_inputs_counts_once(tmp_path: Path) -> None:
    """The same export given twice (long DHIS2 values, and wide counts cut from it) is
    counted once: every record of the second copy is held back as duplicate_cell."""
    path = EXAMPLES / "dhis2_datavalueset.json"
    again = tmp_path / "again.json"
    again.write_bytes(path.read_bytes())
    profile = load_profile("dhis2-example-weekly")
    once = ingest(profile, [path], tmp_path / "once", TODAY)
    twice = ingest(profile, [path, again], tmp_path / "twice", TODAY)
    assert twice.totals == once.totals
    first, second = twice.files
    assert (first.accepted, first.quarantined) == (once.accepted, once.quarantined)
    assert second.accepted == 0 and second.read == first.read
    assert second.by_rule["duplicate_cell"] == once.accepted
    assert twice.accepted + twice.quarantined == twice.read
    # wide counts: the harmonized cells written back as a CSV, given in two files
    totals: dict[tuple[str, str], int] = {}
    for c in pq.read_table(tmp_path / "once" / "counts.parquet").to_pylist():
        key = (c["area"], c["period"].replace("-", ""))  # 2025-W23 -> DHIS2's 2025W23
        totals[key] = totals.get(key, 0) + c["cases"]
    lines = ["area,week,cases"] + [f"{a},{w},{n}" for (a, w), n in sorted(totals.items())]
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    two.write_text("\n".join([lines[0], *lines[2:]]) + "\n", encoding="utf-8")
    wide = tmp_path / "wide.toml"
    wide.write_text(
        "[profile]\nname='wide'\ntitle='t'\nversion='1'\nformat='delimited'\n"
        "dataset='counts'\ncountry='LAO'\n[fields]\ndisease={value='DENGUE'}\ncases='cases'\n"
        "[period]\ndhis2='week'\n[area]\ncolumns=['area']\nmatch='code'\n",
        encoding="utf-8",
    )
    result = ingest(load_profile(wide), [one, two], tmp_path / "wide", TODAY)
    (shared,) = [r for r in _quarantine(tmp_path / "wide") if r["file"] == "two.csv"]
    assert shared["rule"] == "duplicate_cell" and shared["record"] == "1"
    assert "already came from one.csv record 2" in shared["message"]
    assert result.totals["counts_cases"] == once.totals["counts_cases"]


def _quarantine(folder: Path) -> list[dict[str, str]]:
    import csv

    with (folder / "quarantine.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
