"""Write the demo's DHIS2 and FHIR example files (deterministic; re-running changes nothing).

Both are synthetic data in real standard formats, clearly labelled as such in
``src/epibridge/examples/SOURCES.md``: a Lao PDR weekly IDSR data value set (DHIS2, CODE
id scheme, age x sex disaggregation) and a Bundle of Cambodian monthly dengue
MeasureReports shaped as IHE mADX uses them (place in ``subject``, month in ``period``,
one group per indicator, an age x sex stratifier with components).
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "epibridge" / "examples"
LAO_PROVINCES = ("LA-CH", "LA-SV", "LA-SL", "LA-AT", "LA-XE")
KHM_PROVINCES = ("KH-1", "KH-2", "KH-3", "KH-12", "KH-20", "KH-21")
STRATA = (("0-4", "M"), ("0-4", "F"), ("5-14", "M"), ("5-14", "F"), ("15+", "M"), ("15+", "F"))


def _coc(age: str, sex: str) -> str:
    return f"AGE{age.replace('-', 'TO').replace('+', 'PLUS')}_{sex}"


def dhis2(rng: random.Random) -> dict[str, object]:
    values: list[dict[str, object]] = []
    for week in range(23, 31):
        for ou in LAO_PROVINCES:
            for age, sex in STRATA:
                cases = rng.randint(0, 12) + (8 if ou == "LA-CH" and week > 26 else 0)
                deaths = 1 if cases > 14 and rng.random() < 0.2 else 0
                for element, value in (
                    ("IDSR_DENGUE_CASES", cases),
                    ("IDSR_DENGUE_DEATHS", deaths),
                ):
                    values.append(
                        {
                            "dataElement": element,
                            "period": f"2025W{week}",
                            "orgUnit": ou,
                            "categoryOptionCombo": _coc(age, sex),
                            "value": str(value),
                            "storedBy": "idsr.lao",
                            "lastUpdated": f"2025-{7 + (week - 23) // 5:02d}-01",
                        }
                    )
    # Two values a real export could hold: a typo in a period, a negative count.
    values.append(
        {
            "dataElement": "IDSR_DENGUE_CASES",
            "period": "2025W54",
            "orgUnit": "LA-SV",
            "categoryOptionCombo": _coc("0-4", "F"),
            "value": "3",
        }
    )
    values.append(
        {
            "dataElement": "IDSR_DENGUE_CASES",
            "period": "2025W30",
            "orgUnit": "LA-XS",
            "categoryOptionCombo": _coc("15+", "M"),
            "value": "-2",
        }
    )
    return {"dataSet": "IDSR_WEEKLY", "completeDate": "2025-08-04", "dataValues": values}


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def measure_report(province: str, first: date, rng: random.Random) -> dict[str, object]:
    strata = []
    total = 0
    for age, sex in STRATA:
        n = rng.randint(0, 40) + (60 if province == "KH-21" and first.month == 8 else 0)
        total += n
        strata.append(
            {
                "component": [
                    {"code": {"coding": [{"code": "AGE"}]}, "value": {"coding": [{"code": age}]}},
                    {"code": {"coding": [{"code": "SEX"}]}, "value": {"coding": [{"code": sex}]}},
                ],
                "population": [{"code": {"coding": [{"code": "initial-population"}]}, "count": n}],
            }
        )
    return {
        "resourceType": "MeasureReport",
        "id": f"khm-dengue-{province}-{first:%Y-%m}",
        "status": "complete",
        "type": "summary",
        "measure": "http://epibridge.example/Measure/dengue-monthly",
        "subject": {"identifier": {"system": "urn:iso:std:iso:3166:-2", "value": province}},
        "date": f"{_month_end(first) + timedelta(days=5)}",
        "period": {"start": f"{first}", "end": f"{_month_end(first)}"},
        "group": [
            {
                "code": {
                    "coding": [
                        {"system": "http://epibridge.example/indicator", "code": "DENGUE_CASES"}
                    ]
                },
                "population": [
                    {"code": {"coding": [{"code": "initial-population"}]}, "count": total}
                ],
                "stratifier": [{"code": [{"coding": [{"code": "AGE-SEX"}]}], "stratum": strata}],
            }
        ],
    }


def fhir(rng: random.Random) -> dict[str, object]:
    entries = [
        {
            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
            "resource": measure_report(p, date(2025, m, 1), rng),
        }
        for i, (p, m) in enumerate((p, m) for m in (6, 7, 8) for p in KHM_PROVINCES)
    ]
    return {
        "resourceType": "Bundle",
        "id": "khm-dengue-2025-q3",
        "type": "collection",
        "entry": entries,
    }


def main() -> None:
    rng = random.Random(20251)
    (EXAMPLES / "dhis2_datavalueset.json").write_text(
        json.dumps(dhis2(rng), indent=1) + "\n", encoding="utf-8"
    )
    (EXAMPLES / "fhir_madx_measurereport.json").write_text(
        json.dumps(fhir(rng), indent=1) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
