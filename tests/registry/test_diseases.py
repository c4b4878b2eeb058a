"""Disease registry: regional codes, ICD-10 lookup and national maps."""

from __future__ import annotations

import re
from itertools import combinations

import pytest

from epibridge.registry import diseases as reg

REQUIRED = {
    "DENGUE",
    "CHIKUNGUNYA",
    "ZIKA",
    "MALARIA",
    "CHOLERA",
    "MEASLES",
    "RUBELLA",
    "DIPHTHERIA",
    "PERTUSSIS",
    "POLIO",
    "AFP",
    "JAPANESE_ENCEPHALITIS",
    "RABIES",
    "NOVEL_INFLUENZA",
    "INFLUENZA",
    "ILI",
    "SARI",
    "COVID19",
    "TYPHOID",
    "HFMD",
    "LEPTOSPIROSIS",
    "ANTHRAX",
    "PLAGUE",
    "MENINGOCOCCAL",
    "TETANUS",
    "NEONATAL_TETANUS",
    "HEPATITIS_A",
    "MPOX",
    "SARS",
    "MERS",
    "EBOLA",
}


def test_registry_holds_the_regional_list() -> None:
    registry = reg.diseases()
    assert set(registry) >= REQUIRED
    assert all(d.code == code for code, d in registry.items())
    assert {d.kind for d in registry.values()} == {"disease", "syndrome"}
    assert {c for c, d in registry.items() if d.kind == "syndrome"} >= {"ILI", "SARI", "AFP"}


def test_diseases_returns_a_copy() -> None:
    reg.diseases().clear()
    assert "DENGUE" in reg.diseases()


def test_version_is_declared_and_shared_with_maps() -> None:
    assert re.fullmatch(r"\d{4}\.\d+", reg.registry_version())
    assert reg.maps_version() == reg.registry_version()


@pytest.mark.parametrize(
    ("icd10", "code"),
    [
        ("A90", "DENGUE"),
        ("A91", "DENGUE"),
        ("A97", "DENGUE"),
        ("A97.0", "DENGUE"),
        ("A97.1", "DENGUE"),
        ("A97.2", "DENGUE"),
        ("a971", "DENGUE"),
        ("A92.0", "CHIKUNGUNYA"),
        ("B50.9", "MALARIA"),
        ("B54", "MALARIA"),
        ("A24.1", "MELIOIDOSIS"),
        ("A24.4", "MELIOIDOSIS"),
        ("U07.1", "COVID19"),
        ("A33", "NEONATAL_TETANUS"),
        ("A35", "TETANUS"),
        ("B05.9", "MEASLES"),
        ("A01.0", "TYPHOID"),
    ],
)
def test_lookup_icd10(icd10: str, code: str) -> None:
    disease = reg.lookup_icd10(icd10)
    assert disease is not None
    assert disease.code == code


@pytest.mark.parametrize("icd10", ["B55", "A24.0", "A24", "A01.1", "I10", "A92.1"])
def test_lookup_icd10_outside_registry_is_none(icd10: str) -> None:
    assert reg.lookup_icd10(icd10) is None


def test_lookup_icd10_rejects_non_codes() -> None:
    with pytest.raises(ValueError, match="'dengue' is not an ICD-10 code"):
        reg.lookup_icd10("dengue")


def test_icd10_ranges_do_not_overlap() -> None:
    # Every declared bound must resolve to its own disease: overlaps would make lookup
    # depend on file order.
    for disease in reg.diseases().values():
        for entry in disease.icd10:
            for bound in entry.split("-"):
                found = reg.lookup_icd10(bound)
                assert found is not None
                assert found.code == disease.code, (entry, found.code)
    entries = [(e, d.code) for d in reg.diseases().values() for e in d.icd10]
    for (a, code_a), (b, code_b) in combinations(entries, 2):
        assert a != b or code_a == code_b


def test_icd11_codes_where_known() -> None:
    registry = reg.diseases()
    assert registry["COVID19"].icd11 == ("RA01",)
    assert set(registry["DENGUE"].icd11) == {"1D20", "1D21", "1D22", "1D2Z"}
    assert registry["MERS"].icd11 == ()


def test_peru_line_list_labels_map_to_dengue() -> None:
    peru = reg.national_map("PER", "enfermedad")
    for label in ("DENGUE SIN SENALES DE ALARMA", "DENGUE CON SENALES DE ALARMA", "DENGUE GRAVE"):
        assert peru[label] == "DENGUE"
    assert reg.translate("per", "enfermedad", "  Dengue con señales de alarma ") == "DENGUE"
    assert reg.translate("PER", "enfermedad", "ZIKA") is None


def test_icd10_map_applies_to_every_country() -> None:
    for country in ("*", "THA", "PER"):
        mapping = reg.national_map(country, "icd10")
        assert {mapping[c] for c in ("A90", "A91", "A97", "A97.0", "A97.1", "A97.2")} == {"DENGUE"}


def test_map_targets_agree_with_icd10_lookup() -> None:
    for national, code in reg.national_map("*", "icd10").items():
        found = reg.lookup_icd10(national)
        assert found is not None
        assert found.code == code


def test_normalise_national_code() -> None:
    assert reg.normalise_national_code(" dengue  GRAVE\t") == "DENGUE GRAVE"
    assert reg.normalise_national_code("Señales") == "SENALES"
