"""The Mekong scenario generator: deterministic, registry-true, outbreaks where it says."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta

import numpy as np
import pyarrow.compute as pc
import pytest

from epibridge.algorithms.farrington import farrington_flexible
from epibridge.algorithms.scan import ScanAreas, great_circle_km, space_time_permutation_scan
from epibridge.registry import geography
from epibridge.scenario.mekong import (
    COUNTRIES,
    PARAMETERS,
    Scenario,
    generate,
    reporting_units,
    week_starts,
)

TODAY = date(2026, 12, 5)
MERGER = date(2025, 7, 1)  # Viet Nam's 34 units (Resolution 202/2025/QH15)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate(TODAY, seed=2026, years=2)


def test_same_seed_same_table_other_seed_other_table(scenario: Scenario) -> None:
    again = generate(TODAY, seed=2026, years=2)
    assert again.counts.equals(scenario.counts)
    assert again.outbreaks == scenario.outbreaks
    other = generate(TODAY, seed=7, years=2)
    assert not other.counts.equals(scenario.counts)
    # The places and weeks do not depend on the seed, the counts do.
    assert other.counts.select(["country", "area", "week_start"]).equals(
        scenario.counts.select(["country", "area", "week_start"])
    )


def test_weeks_are_iso_weeks_ending_before_today() -> None:
    weeks = week_starts(TODAY, 6)
    assert all(w.weekday() == 0 for w in weeks)
    assert weeks[-1] == date(2026, 11, 23)  # Monday; its Sunday 29 Nov is before 5 Dec
    assert all(b - a == timedelta(weeks=1) for a, b in itertools.pairwise(weeks))
    assert len(weeks) == 313
    # On a Monday the week that just ended is complete.
    assert week_starts(date(2026, 11, 30), 1)[-1] == date(2026, 11, 23)


def test_every_week_has_each_countrys_units_valid_then(scenario: Scenario) -> None:
    cells = Counter((r["country"], r["week_start"]) for r in scenario.counts.to_pylist())
    for country in COUNTRIES:
        for week in scenario.weeks:
            assert cells[(country, week)] == len(reporting_units(country, week))
    rows = scenario.country("VNM").to_pylist()
    before = {r["area"] for r in rows if r["week_start"] + timedelta(days=3) < MERGER}
    after = {r["area"] for r in rows if r["week_start"] + timedelta(days=3) >= MERGER}
    assert len(before) == 63 and len(after) == 34
    assert not any(geography.unit(a).valid_from for a in before)
    assert all(geography.unit(a).valid_from == MERGER for a in after)
    areas = scenario.counts.column("area").to_pylist()
    weeks = scenario.counts.column("week_start").to_pylist()
    for area, week in set(zip(areas, weeks, strict=True)):
        assert geography.unit(area).valid_on(week + timedelta(days=3))


def test_counts_are_plausible(scenario: Scenario) -> None:
    t = scenario.counts
    assert pc.min(t["cases"]).as_py() >= 0
    assert pc.all(pc.less_equal(t["deaths"], t["cases"])).as_py()
    assert pc.all(pc.greater_equal(t["cases"], t["planted"])).as_py()
    # Yearly reported incidence stays within a factor of 4 of the country's parameter.
    last_year = [w for w in scenario.weeks if w > scenario.weeks[-1] - timedelta(days=364)]
    for country in COUNTRIES:
        rows = scenario.country(country).to_pylist()
        cases = sum(r["cases"] - r["planted"] for r in rows if r["week_start"] in last_year)
        people = sum(
            r.population
            for r in geography.population(country)
            if geography.unit(r.code).valid_on(scenario.weeks[-1])
        )
        incidence = cases / people * 100_000
        wanted = PARAMETERS[country].incidence
        assert wanted / 4 < incidence < wanted * 4, (country, incidence)


def test_outbreaks_are_where_the_scenario_says(scenario: Scenario) -> None:
    planted = {
        (r["area"], r["week_start"]): r["planted"]
        for r in scenario.counts.to_pylist()
        if r["planted"]
    }
    where: set[tuple[str, date]] = set()
    last_eight = scenario.weeks[-8]
    for o in scenario.outbreaks:
        assert last_eight <= o.first_week <= o.last_week <= scenario.weeks[-1]
        weeks = [w for w in scenario.weeks if o.first_week <= w <= o.last_week]
        assert 3 <= len(weeks) <= 4
        cells = {(a, w) for a in o.areas for w in weeks}
        assert sum(planted[c] for c in cells) == o.extra_cases
        assert all(planted[c] > 0 for c in cells)
        assert o.countries == tuple(dict.fromkeys(geography.unit(a).country for a in o.areas))
        where |= cells
    assert set(planted) == where  # nothing planted anywhere else
    by_id = {o.id: o for o in scenario.outbreaks}
    assert by_id["MEKONG-XB-1"].areas == ("KH-20", "VN-N80")
    assert by_id["MEKONG-XB-1"].countries == ("KHM", "VNM")
    assert by_id["MEKONG-LAO-1"].countries == ("LAO",)
    assert by_id["MEKONG-THA-1"].countries == ("THA",)


def test_cross_border_partners_come_from_the_registry(scenario: Scenario) -> None:
    outbreak = next(o for o in scenario.outbreaks if o.id == "MEKONG-XB-1")
    borders = {(a.code_a, a.code_b) for a in geography.adjacency(cross_border_only=True)} | {
        (a.code_b, a.code_a) for a in geography.adjacency(cross_border_only=True)
    }
    for partner in outbreak.areas[1:]:
        assert ("KH-20", partner) in borders
        assert geography.unit(partner).valid_on(outbreak.first_week)
    # Before the merger Svay Rieng bordered Tay Ninh and Long An, which are gone now.
    assert ("KH-20", "VN-37") in borders and ("KH-20", "VN-41") in borders
    assert not set(outbreak.areas) & {"VN-37", "VN-41"}


def test_space_time_permutation_scan_finds_the_cross_border_outbreak(
    scenario: Scenario,
) -> None:
    weeks = scenario.weeks[-13:]
    rows = [
        r
        for r in scenario.counts.to_pylist()
        if r["country"] in {"KHM", "VNM"} and r["week_start"] >= weeks[0]
    ]
    # A regional scan: the Cambodian and Vietnamese units within 300 km of Svay Rieng
    # (keeps the test fast; the demo scans more).
    centre = geography.unit("KH-20")
    units = [
        u
        for u in (geography.unit(c) for c in sorted({r["area"] for r in rows}))
        if u.lon is not None and u.lat is not None and _km(u, centre) <= 300
    ]
    assert len(units) >= 15
    index = {u.code: i for i, u in enumerate(units)}
    counts = np.zeros((len(units), len(weeks)))
    for r in rows:
        if r["area"] in index:
            counts[index[r["area"]], weeks.index(r["week_start"])] += r["cases"]
    result = space_time_permutation_scan(
        counts, ScanAreas.from_units(units), np.random.default_rng(1), max_weeks=4
    )
    best = result.most_likely
    assert best is not None
    assert {"KH-20", "VN-N80"} <= set(best.areas) and best.cross_border
    assert best.p_value <= 0.01


def _km(a: geography.Unit, b: geography.Unit) -> float:
    lon = np.array([a.lon, b.lon], dtype=np.float64)
    lat = np.array([a.lat, b.lat], dtype=np.float64)
    return float(great_circle_km(lon, lat)[0, 1])


@pytest.mark.parametrize("outbreak_id", ["MEKONG-LAO-1", "MEKONG-THA-1"])
def test_farrington_flags_the_temporal_outbreaks(outbreak_id: str) -> None:
    scenario = generate(TODAY, seed=2026, years=6)
    outbreak = next(o for o in scenario.outbreaks if o.id == outbreak_id)
    (area,) = outbreak.areas
    rows = [r for r in scenario.counts.to_pylist() if r["area"] == area]
    series = np.array([[r["cases"] for r in rows]], dtype=np.float64)
    dates = np.array([r["week_start"] for r in rows], dtype="datetime64[D]")
    result = farrington_flexible(series, dates=dates, start=len(rows) - 8)
    flagged = {rows[i]["week_start"] for i in np.flatnonzero(result.alarm[0])}
    assert any(outbreak.first_week <= w <= outbreak.last_week for w in flagged)
