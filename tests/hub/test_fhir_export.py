"""Regional counts as FHIR R4 MeasureReports: valid R4B, totals kept, withheld cells masked."""

from __future__ import annotations

import pyarrow as pa
from fhir.resources.R4B.bundle import Bundle

from epibridge.hub.fhir_export import ABSENT, measure_reports
from epibridge.hub.regional import COUNTS_AS_OF
from tests.hub.payloads import as_of_cell
from tests.hub.test_intake import NOW


def _cell(area: str, sex: str | None, age: str | None, cases: int | None) -> dict[str, object]:
    return as_of_cell(area, cases, sex=sex, age_band=age)


def test_measure_reports() -> None:
    cells = pa.Table.from_pylist(
        [
            _cell("KH-1", None, None, 30),
            _cell("KH-1", "M", "0-4", 12),
            _cell("KH-1", "F", "0-4", None),
            _cell("KH-2", None, None, None),
        ],
        COUNTS_AS_OF,
    )
    bundle = measure_reports(cells, NOW)
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection" and len(bundle["entry"]) == 2
    first = bundle["entry"][0]["resource"]
    assert first["subject"]["identifier"]["value"] == "KH-1"
    group = first["group"][0]
    assert group["population"][0]["count"] == 30
    assert {c["code"] for c in group["code"]["coding"]} >= {"DENGUE", "A90"}
    strata = group["stratifier"][0]["stratum"]
    assert strata[0]["population"][0]["count"] == 12
    masked = strata[1]["population"][0]
    assert "count" not in masked and masked["_count"]["extension"][0]["url"] == ABSENT
    second = bundle["entry"][1]["resource"]["group"][0]["population"][0]
    assert second["_count"]["extension"][0]["valueCode"] == "masked"
