"""The scenario's reporting and population: seeded apart from the counts, consistent."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from epibridge.registry import geography
from epibridge.scenario.mekong import (
    COUNTRIES,
    PEOPLE_PER_SITE,
    REPORTING,
    Scenario,
    generate,
    reporting_units,
)

TODAY = date(2026, 12, 5)

#: The counts of ``generate(TODAY, seed=2026, years=2)`` before the scenario had
#: reporting and population (:func:`_checksum`): adding them must not move a single count,
#: or the demo's detection results would change.
COUNTS_SHA256 = "75a9dbc43a52a34969b64263bb14d5b7551dce89780b40f970ed784b299ec090"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(TODAY, seed=2026, years=2)


def _checksum(table: pa.Table) -> str:
    digest = hashlib.sha256()
    for row in table.to_pylist():
        digest.update(repr(tuple(row.values())).encode())
    return digest.hexdigest()


def test_counts_are_those_of_before_the_reporting(scenario: Scenario) -> None:
    assert scenario.counts.column_names == [
        "country",
        "area",
        "week_start",
        "cases",
        "deaths",
        "planted",
    ]
    assert _checksum(scenario.counts) == COUNTS_SHA256


def test_reporting_is_seeded_and_has_a_row_per_count_row(scenario: Scenario) -> None:
    keys = ["country", "area", "week_start"]
    assert scenario.reporting.select(keys).equals(scenario.counts.select(keys))
    again = generate(TODAY, seed=2026, years=2)
    assert again.reporting.equals(scenario.reporting)
    assert again.population.equals(scenario.population)
    other = generate(TODAY, seed=7, years=2)
    assert not other.reporting.equals(scenario.reporting)
    # Sites follow the population, not the seed.
    assert other.reporting["reports_expected"].equals(scenario.reporting["reports_expected"])


def test_reports_received_on_time_within_expected(scenario: Scenario) -> None:
    t = scenario.reporting
    expected, received, on_time = (
        t["reports_expected"],
        t["reports_received"],
        t["reports_on_time"],
    )
    assert pc.all(pc.greater_equal(expected, received)).as_py()
    assert pc.all(pc.greater_equal(received, on_time)).as_py()
    assert pc.min(on_time).as_py() >= 0
    assert pc.min(received).as_py() >= 1  # never "not reported": count rows stay as they are
    assert pc.any(pc.less(received, expected)).as_py()
    assert pc.any(pc.less(on_time, received)).as_py()


def test_sites_and_completeness_per_country(scenario: Scenario) -> None:
    last = scenario.weeks[-1]
    for country in COUNTRIES:
        rows = scenario.country(country, "reporting").to_pylist()
        parameters = REPORTING[country]
        assert {r["disease"] for r in rows} == {parameters.disease}
        # One site per PEOPLE_PER_SITE people (registry figures), at least one.
        people = {r.code: r.population for r in geography.population(country)}
        sites = {r["area"]: r["reports_expected"] for r in rows if r["week_start"] == last}
        assert sorted(sites) == reporting_units(country, last)
        assert sites == {a: max(1, round(people[a] / PEOPLE_PER_SITE)) for a in sites}
        expected = sum(r["reports_expected"] for r in rows)
        received = sum(r["reports_received"] for r in rows)
        on_time = sum(r["reports_on_time"] for r in rows)
        assert abs(received / expected - parameters.completeness) < 0.06, country
        assert abs(on_time / received - parameters.timeliness) < 0.03, country
    # Both kinds of form are exercised: every disease (null) and dengue only.
    assert {p.disease for p in REPORTING.values()} == {None, "DENGUE"}


def test_population_per_unit_and_year_from_the_registry(scenario: Scenario) -> None:
    first = (scenario.weeks[0] + timedelta(days=3)).year
    years = set(range(first, TODAY.year + 1))
    for country in COUNTRIES:
        rows = scenario.country(country, "population").to_pylist()
        by_year: dict[int, set[str]] = defaultdict(set)
        for r in rows:
            by_year[r["year"]].add(r["area"])
            held = [f for f in geography.population(country) if f.code == r["area"]]
            nearest = min(held, key=lambda f: (abs(f.year - r["year"]), -f.year))
            assert r["population"] == nearest.population
            assert r["source"].startswith(nearest.source)
            if nearest.year != r["year"]:
                assert f"the {nearest.year} figure, nearest year held" in r["source"]
        assert set(by_year) == years
        for year, areas in by_year.items():
            assert areas == {
                u.code
                for u in geography.units(country)
                if u.level == 1 and u.valid_on(date(year, 7, 1))
            }
    # Viet Nam: the 63 provinces to 2024, the 34 units of Resolution 202/2025/QH15 after.
    vnm = scenario.country("VNM", "population").to_pylist()
    assert len({r["area"] for r in vnm if r["year"] == 2024}) == 63
    assert len({r["area"] for r in vnm if r["year"] == 2025}) == 34
