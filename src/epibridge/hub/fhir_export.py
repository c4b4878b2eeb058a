"""Regional counts as FHIR R4 MeasureReports, shaped as IHE mADX uses them.

One ``MeasureReport`` (status complete, type summary) per country, area, disease and
period: the subject is the area (identifier system ``urn:epibridge:area``), the group
code the regional disease code with its ICD-10 codes, the group's ``initial-population``
count the total, and one stratifier ``AGE-SEX`` (or ``AGE``, ``SEX``) whose strata carry
the stratified cells, as the mADX example the node ingests does. A cell withheld by
disclosure control has no ``count`` but the ``data-absent-reason`` extension ``masked``,
so a reader never mistakes it for zero. The result is a ``collection`` Bundle, validated
against the R4B models of ``fhir.resources`` before it leaves.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import pyarrow as pa
from fhir.resources.R4B.bundle import Bundle

from epibridge.registry.diseases import diseases

MEASURE = "urn:epibridge:Measure/regional-cases"
AREA_SYSTEM = "urn:epibridge:area"
DISEASE_SYSTEM = "urn:epibridge:disease"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def _population(count: int | None, suppressed: bool) -> dict[str, Any]:
    population: dict[str, Any] = {"code": {"coding": [{"code": "initial-population"}]}}
    if suppressed or count is None:
        population["_count"] = {"extension": [{"url": ABSENT, "valueCode": "masked"}]}
    else:
        population["count"] = count
    return population


def _component(code: str, value: str) -> dict[str, Any]:
    return {"code": {"coding": [{"code": code}]}, "value": {"coding": [{"code": value}]}}


def _group(disease: str, cells: list[dict[str, Any]]) -> dict[str, Any]:
    known = diseases().get(disease)
    coding = [{"system": DISEASE_SYSTEM, "code": disease}]
    if known is not None:
        coding += [{"system": ICD10, "code": c} for c in known.icd10 if "-" not in c]
    group: dict[str, Any] = {"code": {"coding": coding}}
    total = [c for c in cells if c["sex"] is None and c["age_band"] is None]
    strata = [c for c in cells if c["sex"] is not None or c["age_band"] is not None]
    if total:
        group["population"] = [_population(total[0]["cases"], total[0]["cases_suppressed"])]
    if strata:
        names = ("AGE" if any(c["age_band"] for c in strata) else "") + (
            "-SEX" if any(c["sex"] for c in strata) else ""
        )
        group["stratifier"] = [
            {
                "code": [{"coding": [{"code": names.strip("-") or "STRATUM"}]}],
                "stratum": [
                    {
                        "component": [
                            *([_component("AGE", c["age_band"])] if c["age_band"] else []),
                            *([_component("SEX", c["sex"])] if c["sex"] else []),
                        ],
                        "population": [_population(c["cases"], c["cases_suppressed"])],
                    }
                    for c in strata
                ],
            }
        ]
    return group


def measure_reports(cells: pa.Table, as_of: datetime) -> dict[str, Any]:
    """A FHIR Bundle of MeasureReports for the regional cells (``regional.counts_as_of``)."""
    reports: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for cell in cells.to_pylist():
        key = (cell["country"], cell["area"], cell["disease"], cell["period"])
        reports[key].append(cell)
    entries = []
    for (country, area, disease, period), group in sorted(reports.items()):
        first = group[0]
        ident = f"{country}-{area}-{disease}-{period}".replace(" ", "_")
        entries.append(
            {
                "fullUrl": f"urn:epibridge:MeasureReport/{ident}",
                "resource": {
                    "resourceType": "MeasureReport",
                    "id": "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in ident)[:64],
                    "status": "complete",
                    "type": "summary",
                    "measure": MEASURE,
                    "subject": {"identifier": {"system": AREA_SYSTEM, "value": area}},
                    "date": as_of.isoformat(),
                    "reporter": {
                        "identifier": {"system": "urn:iso:std:iso:3166", "value": country}
                    },
                    "period": {
                        "start": first["period_start"].isoformat(),
                        "end": first["period_end"].isoformat(),
                    },
                    "group": [_group(disease, group)],
                },
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": as_of.isoformat(),
        "entry": entries,
    }
    Bundle.model_validate(bundle)  # refuses anything that is not valid FHIR R4B
    return bundle
