"""FHIR adapters: mADX MeasureReports and case-report Bundles."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epibridge.adapters.base import RECORD, RawTable
from epibridge.adapters.fhir_bundle import CASE_COLUMNS, read_case_bundle
from epibridge.adapters.fhir_measurereport import MEASURE_REPORT_COLUMNS, read_measure_reports
from epibridge.model.errors import SourceError

DATA = Path(__file__).parent.parent / "data" / "fhir"
EXAMPLE2 = DATA / "madx-measurereport-example2.json"
MADX_BUNDLE = DATA / "madx-measurereport-bundle.json"
DENGUE = DATA / "dengue-case-bundle.json"


def rows(raw: RawTable) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = raw.table.to_pyarrow().to_pylist()
    return result


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write(tmp_path: Path, document: object, name: str = "doc.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# --- MeasureReport ---------------------------------------------------------------------


def test_measure_report_columns() -> None:
    table = read_measure_reports(EXAMPLE2, {}).table.to_pyarrow()
    assert table.column_names == [*MEASURE_REPORT_COLUMNS, RECORD]
    assert all(str(table.schema.field(c).type) == "string" for c in MEASURE_REPORT_COLUMNS)


def test_madx_example2_totals_and_strata_do_not_double_count() -> None:
    got = rows(read_measure_reports(EXAMPLE2, {}))
    assert len(got) == 2 + 15 + 2
    assert [r[RECORD] for r in got] == list(range(1, 20))
    totals = [r for r in got if r["stratifier_code"] is None]
    assert [(r["population_code"], r["count"]) for r in totals] == [
        ("denominator", "121000"),
        ("numerator", "364"),
    ]
    by_stratifier: dict[str, int] = {}
    for r in got:
        if r["stratifier_code"] is not None:
            key = r["stratifier_code"]
            by_stratifier[key] = by_stratifier.get(key, 0) + int(r["measure_score"])
    # each stratifier re-partitions the numerator
    assert by_stratifier == {"ageGroup-gender": 364, "TBdiagnosisResult": 364}
    first = got[2]
    assert first["stratum_components"] == "infants=infants;male=male"
    assert first["stratum_value"] is None
    assert got[3]["stratum_components"] == "female=female;infants=infants"
    assert got[-1]["stratum_value"] == "TBexcluded"
    assert first["group_code"] == "QRPH_mADX_ART1_N"
    assert first["group_system"] == "http://ihe.net/qrph/madx/"
    assert (first["period_start"], first["period_end"]) == ("2025-01-01", "2025-01-31")
    assert (first["status"], first["type"]) == ("pending", "summary")
    assert first["subject"] == "#HealthPost6789"


def test_madx_bundle_of_reports() -> None:
    raw = read_measure_reports(MADX_BUNDLE, {})
    got = rows(raw)
    assert raw.unreadable == ()
    assert [r[RECORD] for r in got] == list(range(1, 13))
    assert [r["report_id"] for r in got].count("mADX-MeasureReport-example") == 2 + 4 + 2
    gender = [r["stratum_value"] for r in got if r["stratifier_code"] == "gender"]
    assert gender == ["male", "female", "other", "unknown"]
    assert {r["measure_score"] for r in got if r["stratifier_code"] == "age"} == {"410", "90"}


def test_contained_subject_with_identifier_and_uncoded_stratifier(tmp_path: Path) -> None:
    report = load(EXAMPLE2)
    report["contained"][0]["identifier"] = [{"system": "urn:ihe:loc", "value": "HP-6789"}]
    del report["group"][0]["stratifier"][1]["code"]
    report["group"][0]["measureScore"] = {"value": 0.30}
    got = rows(read_measure_reports(write(tmp_path, report), {}))
    assert {r["subject"] for r in got} == {"urn:ihe:loc|HP-6789"}
    assert got[-1]["stratifier_code"] == "#2"
    assert got[0]["measure_score"] == "0.3"


def test_decimal_score_keeps_source_spelling(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    text = EXAMPLE2.read_text().replace('"value": 23\n', '"value": 23.50\n', 1)
    path.write_text(text)
    got = rows(read_measure_reports(path, {}))
    assert got[2]["measure_score"] == "23.50"


def test_invalid_report_in_bundle_is_unreadable_and_keeps_numbering(tmp_path: Path) -> None:
    bundle = load(MADX_BUNDLE)
    bundle["entry"][0]["resource"]["group"][0]["population"][0]["count"] = "lots"
    bundle["entry"].append({"resource": {"resourceType": "Location", "id": "x"}})
    raw = read_measure_reports(write(tmp_path, bundle), {})
    got = rows(raw)
    assert len(raw.unreadable) == 1
    problem = raw.unreadable[0]
    assert problem.record == 1
    assert problem.field == "Bundle.entry[0]"
    assert "MeasureReport" in problem.message
    assert "group.0.population.0.count" in problem.message
    assert "Traceback" not in problem.message
    assert [r[RECORD] for r in got] == [2, 3, 4, 5]  # example1: 2 totals + 2 strata


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"{", "line 1, column 2"),
        (b'<MeasureReport xmlns="http://hl7.org/fhir"/>', "XML"),
        (b'{"resourceType": "Patient"}', "Patient"),
        (b"[]", "not an object"),
        (b'{"resourceType": "Bundle", "entry": {}}', "not a list"),
        ('{"resourceType": "MeasureReport", "id": "é"}'.encode("latin-1"), "UTF-8"),
    ],
)
def test_measure_report_unreadable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=fragment):
        read_measure_reports(path, {})


# --- case Bundle -----------------------------------------------------------------------


def test_case_bundle_columns() -> None:
    table = read_case_bundle(DENGUE, {}).table.to_pyarrow()
    assert table.column_names == [*CASE_COLUMNS, RECORD]


def test_dengue_case_bundle() -> None:
    raw = read_case_bundle(DENGUE, {})
    assert raw.unreadable == ()
    first, second = rows(raw)
    assert first == {
        "case_id": "case-la-0001",
        "patient_id": "pat-la-0001",
        "sex": "female",
        "birth_date": "1990-05-14",
        "age": "33",  # completed years at onset 2024-03-04
        "deceased": None,
        "address_country": "LA",
        "address_state": "Vientiane Capital",
        "address_district": "Chanthabuly",
        "address_city": "Vientiane",
        "condition_code": "A91",
        "condition_system": "http://hl7.org/fhir/sid/icd-10",
        "condition_display": "Dengue haemorrhagic fever",
        "onset_date": "2024-03-04",
        "recorded_date": "2024-03-06",
        "verification_status": "confirmed",
        "clinical_status": "active",
        "abatement_date": None,
        "observation_codes": "77958-7;420008001",
        "observation_values": "LA24235-6;",
        "imported": "true",
        "country_of_infection": "TH",
        RECORD: 2,
    }
    assert second["case_id"] == "case-la-0002"
    assert second["age"] == "34"  # onsetAge
    assert second["deceased"] == "false"
    assert second["verification_status"] == "provisional"
    # no Patient address: the Encounter's Location address is used
    assert (second["address_state"], second["address_city"]) == (
        "Savannakhet",
        "Kaysone Phomvihane",
    )
    assert second["observation_codes"] is None
    assert second["imported"] is None
    assert second[RECORD] == 8


@pytest.mark.parametrize("bundle_type", ["transaction", "message", "searchset", "document"])
def test_other_bundle_types(tmp_path: Path, bundle_type: str) -> None:
    bundle = load(DENGUE)
    bundle["type"] = bundle_type
    assert len(rows(read_case_bundle(write(tmp_path, bundle), {}))) == 2


def test_relative_references_and_exposure_observation(tmp_path: Path) -> None:
    bundle = load(DENGUE)
    condition = bundle["entry"][1]["resource"]
    condition["subject"] = {"reference": "Patient/pat-la-0001"}
    del condition["evidence"]
    condition["onsetDateTime"] = "2024-05-13T08:00:00+07:00"  # the day before the birthday
    travel = bundle["entry"][3]["resource"]
    travel["valueBoolean"] = False
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "77984-3"}]},
                "subject": {"reference": "Patient/pat-la-0001"},
                "valueCodeableConcept": {"coding": [{"code": "KH"}]},
            }
        }
    )
    first = rows(read_case_bundle(write(tmp_path, bundle), {}))[0]
    assert first["age"] == "33"
    assert first["country_of_infection"] == "KH"
    assert first["imported"] == "true"
    assert first["observation_codes"] == "77958-7;420008001;77984-3"


def test_travel_denied_means_not_imported(tmp_path: Path) -> None:
    bundle = load(DENGUE)
    bundle["entry"][3]["resource"]["valueBoolean"] = False
    first = rows(read_case_bundle(write(tmp_path, bundle), {}))[0]
    assert first["imported"] == "false"
    assert first["country_of_infection"] is None


def test_observation_focused_on_another_condition_is_not_attached(tmp_path: Path) -> None:
    bundle = load(DENGUE)
    bundle["entry"][7]["resource"]["subject"] = {"reference": "Patient/pat-la-0001"}
    bundle["entry"][3]["resource"]["focus"] = [{"reference": "Condition/case-la-0002"}]
    first, second = rows(read_case_bundle(write(tmp_path, bundle), {}))
    assert first["observation_codes"] == "77958-7"
    assert second["observation_codes"] == "420008001"


def test_invalid_resources_are_unreadable(tmp_path: Path) -> None:
    bundle = load(DENGUE)
    bundle["entry"][2]["resource"]["effectiveDateTime"] = "yesterday"
    bundle["entry"][7]["resource"]["onsetDateTime"] = "2024-13-45"
    bundle["entry"].append("not an entry")
    raw = read_case_bundle(write(tmp_path, bundle), {})
    got = rows(raw)
    assert [r["case_id"] for r in got] == ["case-la-0001"]
    assert got[0]["observation_codes"] == "420008001"
    messages = {u.record: u.message for u in raw.unreadable}
    assert set(messages) == {3, 8, 9}
    assert messages[3].startswith("Bundle.entry[2]: invalid Observation")
    assert "effectiveDateTime" in messages[3]
    assert "Condition" in messages[8]
    assert "onsetDateTime" in messages[8]
    assert "not a FHIR resource" in messages[9]
    assert all("Traceback" not in m for m in messages.values())


def test_r5_only_element_is_reported(tmp_path: Path) -> None:
    bundle = load(DENGUE)
    bundle["entry"][1]["resource"]["participant"] = [{"actor": {"reference": "Practitioner/1"}}]
    raw = read_case_bundle(write(tmp_path, bundle), {})
    assert [u.record for u in raw.unreadable] == [2]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b'{"resourceType": "Bundle", "entry": [', "not valid JSON"),
        (b'{"resourceType": "Condition"}', "expected a FHIR Bundle"),
        ('{"resourceType": "Bundle"}'.encode("utf-16"), "UTF-16"),
    ],
)
def test_case_bundle_unreadable_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=fragment):
        read_case_bundle(path, {})


def test_empty_bundle_gives_empty_table(tmp_path: Path) -> None:
    raw = read_case_bundle(write(tmp_path, {"resourceType": "Bundle", "type": "collection"}), {})
    assert rows(raw) == []


# --- property-based --------------------------------------------------------------------

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for position, value in enumerate(node):
            found.append((*prefix, position))
            found.extend(_paths(value, (*prefix, position)))
    return found


def _mutate(document: Any, choices: list[tuple[int, object]]) -> Any:
    document = copy.deepcopy(document)
    for pick, value in choices:
        paths = _paths(document)
        if not paths:
            break
        path = paths[pick % len(paths)]
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value
    return document


mutations = st.lists(st.tuples(st.integers(min_value=0), json_values), min_size=1, max_size=3)


@SETTINGS
@given(choices=mutations)
def test_case_bundle_mutations(tmp_path: Path, choices: list[tuple[int, object]]) -> None:
    document = _mutate(load(DENGUE), choices)
    path = write(tmp_path, document)
    try:
        raw = read_case_bundle(path, {})
    except SourceError:
        return
    got = rows(raw)
    entries = document.get("entry") if isinstance(document, dict) else None
    conditions = [
        i + 1
        for i, e in enumerate(entries if isinstance(entries, list) else [])
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "Condition"
    ]
    unreadable = {u.record for u in raw.unreadable}
    for number in conditions:
        assert (number in unreadable) != (number in [r[RECORD] for r in got])


@SETTINGS
@given(choices=mutations)
def test_measure_report_mutations(tmp_path: Path, choices: list[tuple[int, object]]) -> None:
    document = _mutate(load(MADX_BUNDLE), choices)
    try:
        raw = read_measure_reports(write(tmp_path, document), {})
    except SourceError:
        return
    got = rows(raw)
    numbers = sorted([r[RECORD] for r in got] + [u.record for u in raw.unreadable])
    assert numbers == list(range(1, len(numbers) + 1))


@SETTINGS
@given(content=st.binary(max_size=300))
def test_garbage_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.json"
    path.write_bytes(content)
    for reader in (read_measure_reports, read_case_bundle):
        with contextlib.suppress(SourceError):
            rows(reader(path, {}))
