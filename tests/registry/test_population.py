"""Population denominators: coverage per country and sums against the sources' own totals.

The national totals below are the figures each source prints for the whole country (see
``SOURCES.md``); the sources give exact counts, so the sums must match to the person. They are
written here independently of ``scripts/data/population``, so a slip in a transcription, or a
regeneration that drops a unit, fails.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from epibridge.registry import geography as geo

TRANSCRIPTIONS = Path(__file__).resolve().parents[2] / "scripts" / "data" / "population"

# (country, year) -> national total printed by the source.
NATIONAL = {
    ("KHM", 2019): 15_552_211,  # NIS, General Population Census 2019, final results
    ("LAO", 2015): 6_492_228,  # Lao Statistics Bureau, Population and Housing Census 2015
    ("VNM", 2019): 96_208_984,  # GSO, 2019 Population and Housing Census
    ("PER", 2017): 29_381_884,  # INEI, Censos Nacionales 2017, poblacion censada
    ("LKA", 2012): 20_359_439,  # DCS, Census of Population and Housing 2012
    ("LKA", 2024): 21_781_800,  # DCS, Census of Population and Housing 2024
    ("THA", 2019): 66_558_935,  # DOPA register at 31 December 2019, Royal Gazette announcement
    ("MMR", 2014): 51_486_253,  # DOP, 2014 census: enumerated plus estimated non-enumerated
}
# Myanmar's 2014 total is the enumerated count plus DOP's estimate of who was not enumerated.
MMR_ENUMERATED_2014 = 50_279_900
MMR_NOT_ENUMERATED_2014 = {"MM-16": 1_090_000, "MM-13": 69_753, "MM-11": 46_600}
# Taiwan's register figures come without the national row (SOURCES.md): the documented sum.
TWN_SUM_2026 = 23_213_251
PRODUCER = {"KHM": "NIS", "LAO": "Lao Statistics Bureau", "VNM": "GSO", "PER": "INEI"}
PRODUCER |= {"LKA": "DCS", "TWN": "MOI", "THA": "DOPA", "MMR": "Department of Population"}


def _rows(country: str, year: int) -> dict[str, int]:
    rows = [r for r in geo.population(country) if r.year == year]
    by_code = {r.code: r.population for r in rows}
    assert len(by_code) == len(rows), f"{country} {year}: a unit twice"
    return by_code


def _admin1(country: str, on: date) -> set[str]:
    return {u.code for u in geo.units(country) if u.level == 1 and u.valid_on(on)}


@pytest.mark.parametrize(("country", "year", "units"), [("KHM", 2019, 25), ("LAO", 2015, 18)])
def test_mekong_every_province_and_national_total(country: str, year: int, units: int) -> None:
    pop = _rows(country, year)
    assert set(pop) == _admin1(country, date(year, 7, 1))
    assert len(pop) == units
    assert sum(pop.values()) == NATIONAL[(country, year)]


def test_vietnam_63_provinces_match_the_census_total() -> None:
    old = {c: n for c, n in _rows("VNM", 2019).items() if not c.startswith("VN-N")}
    assert set(old) == _admin1("VNM", date(2019, 4, 1))
    assert len(old) == 63
    assert sum(old.values()) == NATIONAL[("VNM", 2019)]
    assert old["VN-SG"] == 8_993_082  # Ho Chi Minh City, the largest unit
    assert old["VN-HN"] == 8_053_663


def test_vietnam_34_units_are_the_sums_of_the_merged_provinces() -> None:
    pop = _rows("VNM", 2019)
    new = {c: n for c, n in pop.items() if c.startswith("VN-N")}
    assert set(new) == _admin1("VNM", date(2025, 7, 1))
    assert len(new) == 34
    made: Counter[str] = Counter()
    for row in geo.crosswalk("VNM"):
        assert row.weight == 1.0, row  # whole provinces merged: the sums are exact
        made[row.new_code] += pop[row.old_code]
    assert dict(made) == new
    assert sum(new.values()) == NATIONAL[("VNM", 2019)]
    # Ho Chi Minh City from 1 July 2025 = HCMC + Binh Duong + Ba Ria-Vung Tau.
    assert new["VN-N79"] == pop["VN-SG"] + pop["VN-57"] + pop["VN-43"]
    derived = [r for r in geo.population("VNM") if r.code.startswith("VN-N")]
    assert all("Resolution 202/2025/QH15" in r.source for r in derived)


def test_peru_every_departamento_and_lima_as_a_whole() -> None:
    pop = _rows("PER", 2017)
    assert set(pop) == _admin1("PER", date(2017, 7, 1))
    assert len(pop) == 25
    assert sum(pop.values()) == NATIONAL[("PER", 2017)]
    # INEI's table splits Lima into Provincia de Lima and Region Lima; the registry unit is both.
    assert pop["PE-LIM"] == 8_574_974 + 910_431


def test_taiwan_every_county_and_city() -> None:
    pop = _rows("TWN", 2026)
    assert set(pop) == _admin1("TWN", date(2026, 9, 30))
    assert len(pop) == 22
    assert sum(pop.values()) == TWN_SUM_2026
    assert pop["TW-NWT"] > pop["TW-TXG"] > pop["TW-KHH"] > pop["TW-TPE"]  # register order


def test_thailand_every_province_and_the_gazette_total() -> None:
    pop = _rows("THA", 2019)
    assert set(pop) == _admin1("THA", date(2019, 12, 31))
    assert len(pop) == 77  # incl. Bueng Kan, split from Nong Khai in 2011
    assert sum(pop.values()) == NATIONAL[("THA", 2019)]
    # Figures the NSO reprint and the Gazette print (SOURCES.md): largest and smallest province.
    assert pop["TH-10"] == 5_666_264  # Bangkok
    assert pop["TH-75"] == 193_305  # Samut Songkhram
    assert min(pop.values()) == pop["TH-75"]
    # NSO's region rows: the 17 northern and the 14 southern provinces.
    north = [50, 51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 67]
    south = [80, 81, 82, 83, 84, 85, 86, 90, 91, 92, 93, 94, 95, 96]
    assert sum(pop[f"TH-{n}"] for n in north) == 12_119_572
    assert sum(pop[f"TH-{n}"] for n in south) == 9_493_757


def test_myanmar_every_state_and_region_with_the_estimated_population() -> None:
    pop = _rows("MMR", 2014)
    assert set(pop) == _admin1("MMR", date(2014, 3, 29))
    assert len(pop) == 15  # 7 states, 7 regions, Nay Pyi Taw
    assert sum(pop.values()) == NATIONAL[("MMR", 2014)]
    estimated = sum(MMR_NOT_ENUMERATED_2014.values())
    assert estimated == 1_206_353
    assert sum(pop.values()) - estimated == MMR_ENUMERATED_2014
    assert pop["MM-16"] == 2_098_807 + MMR_NOT_ENUMERATED_2014["MM-16"]  # Rakhine
    assert pop["MM-06"] == 7_360_703  # Yangon, the largest; fully enumerated
    assert pop["MM-12"] == min(pop.values()) == 286_627  # Kayah
    rows = geo.population("MMR")
    assert all("non-enumerated" in r.source for r in rows)


@pytest.mark.parametrize("year", [2012, 2024])
def test_sri_lanka_districts_make_provinces_make_the_country(year: int) -> None:
    pop = _rows("LKA", year)
    provinces = {u.code for u in geo.units("LKA") if u.level == 1}
    districts = {u.code for u in geo.units("LKA") if u.level == 2 and u.code[3:].isdigit()}
    assert len(provinces) == 9
    assert len(districts) == 25
    assert set(pop) == provinces | districts  # the Kalmunai health area has no census figure
    assert sum(pop[p] for p in provinces) == NATIONAL[("LKA", year)]
    for p in provinces:
        kids = [pop[d] for d in districts if geo.unit(d).parent == p]
        assert sum(kids) == pop[p], p


def test_sri_lanka_two_censuses_are_plausible_together() -> None:
    before, after = _rows("LKA", 2012), _rows("LKA", 2024)
    for code, n in before.items():
        # Twelve years: no district lost a tenth or gained half (Mullaitivu grew most, 33%).
        assert 0.9 < after[code] / n < 1.5, code


def test_every_row_names_its_producer_and_year_is_a_reference_year() -> None:
    years = {("TWN", 2026)} | set(NATIONAL)
    for country, producer in PRODUCER.items():
        rows = geo.population(country)
        assert rows, country
        for r in rows:
            if not r.code.startswith("VN-N"):  # derived: names the crosswalk instead
                assert producer in r.source, r
        assert {(country, r.year) for r in rows} <= years, country


def _transcribed() -> list[tuple[str, int, int, str]]:
    out = []
    for path in sorted(TRANSCRIPTIONS.glob("*.csv")):
        body = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln[:1] != "#"]
        for r in csv.DictReader(body):
            if r["code"] != "TOTAL":
                out.append((r["code"], int(r["year"]), int(r["population"]), path.name))
    return out


def test_registry_rows_are_the_transcriptions() -> None:
    """population.csv was regenerated from scripts/data/population, not edited by hand."""
    rows = _transcribed()
    assert len(rows) == 25 + 18 + 63 + 25 + 22 + 2 * 34 + 77 + 15  # KHM LAO VNM PER TWN LKA THA MMR
    pop = {(r.code, r.year): r for r in geo.population()}
    for code, year, n, file in rows:
        assert pop[(code, year)].population == n, (file, code)
        assert file in pop[(code, year)].source


def test_transcription_totals_are_the_documented_ones() -> None:
    totals = {}
    for path in sorted(TRANSCRIPTIONS.glob("*.csv")):
        body = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln[:1] != "#"]
        for r in csv.DictReader(body):
            if r["code"] == "TOTAL":
                totals[(path.stem, int(r["year"]))] = int(r["population"])
    expected = {(c.lower()[:3], y): n for (c, y), n in NATIONAL.items()}
    assert totals == expected
