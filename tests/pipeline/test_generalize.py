"""Generalization hierarchies: age bands, area coalescing, period starts and labels."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import epiweeks
import ibis  # type: ignore[import-untyped, unused-ignore]
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epibridge.model.errors import EpibridgeError
from epibridge.model.schema import CASES
from epibridge.pipeline.generalize import (
    RESOLUTIONS,
    Hierarchy,
    HierarchyError,
    Level,
    age_band_expr,
    age_hierarchy,
    area_expr,
    area_hierarchy,
    date_expr,
    date_hierarchy,
    date_label_expr,
    sex_hierarchy,
    suppressed_level,
)

EDGES = [0, 5, 15, 25, 45, 65]


def _table(columns: dict[str, list[Any]]) -> Any:
    schema = pa.schema([CASES.field(name).with_nullable(True) for name in columns])
    return ibis.memtable(pa.table(columns, schema=schema))


def _values(table: Any, expr: Any) -> list[Any]:
    return list(table.select(v=expr).to_pyarrow().column("v").to_pylist())


def _ages(ages: list[float | None], bands: list[str | None] | None = None) -> Any:
    return _table({"age_years": ages, "age_band": bands or [None] * len(ages)})


# --- age ----------------------------------------------------------------------------------


def test_age_bands_at_their_edges() -> None:
    ages: list[float | None] = [0, 4.999, 5, 14.5, 15, 44.99, 45, 64, 65, 102, None, -1]
    t = _ages(ages)
    assert _values(t, age_band_expr(t, EDGES)) == [
        "0-4",
        "0-4",
        "5-14",
        "5-14",
        "15-24",
        "25-44",
        "45-64",
        "45-64",
        "65+",
        "65+",
        None,
        None,
    ]


def test_ages_below_the_first_edge_have_no_band() -> None:
    t = _ages([0.5, 1, 17, 18])
    assert _values(t, age_band_expr(t, [1, 18])) == [None, "1-17", "1-17", "18+"]


def test_source_band_is_used_only_when_it_lies_inside_one_band() -> None:
    bands: list[str | None] = [
        "40-44",
        "40-49",
        "70+",
        "60+",
        "65+",
        "0-4",
        "5-14",
        "25-44",
        "44-40",
        "unknown",
        None,
        " 65 + ",
        "45-45",
    ]
    t = _ages([None] * len(bands), bands)
    assert _values(t, age_band_expr(t, EDGES)) == [
        "25-44",
        None,  # straddles 45
        "65+",
        None,  # 60-64 and 65+
        "65+",
        "0-4",
        "5-14",
        "25-44",
        None,  # reversed bounds are not a band
        None,
        None,
        "65+",
        "45-64",
    ]


def test_age_in_years_wins_over_the_source_band() -> None:
    t = _ages([3.0, None], ["40-44", "40-44"])
    assert _values(t, age_band_expr(t, EDGES)) == ["0-4", "25-44"]


def _band_oracle(age: float, edges: Sequence[int]) -> str | None:
    if age < edges[0]:
        return None
    for lo, hi in zip(edges, [*edges[1:], None], strict=True):
        if hi is None:
            return f"{lo}+"
        if lo <= age < hi:
            return f"{lo}-{hi - 1}"
    raise AssertionError("unreachable")


@settings(max_examples=25, deadline=None)
@given(
    edges=st.lists(st.integers(0, 100), min_size=1, max_size=8, unique=True).map(sorted),
    ages=st.lists(st.floats(-5, 120, width=32), min_size=1, max_size=30),
)
def test_age_bands_match_a_plain_python_rule(edges: list[int], ages: list[float]) -> None:
    t = _ages(list(ages))
    # The table holds float32; the oracle sees the same rounded values.
    stored = t.select("age_years").to_pyarrow().column("age_years").to_pylist()
    assert _values(t, age_band_expr(t, edges)) == [_band_oracle(a, edges) for a in stored]


def test_age_hierarchy_merges_adjacent_bands_in_pairs() -> None:
    h = age_hierarchy(EDGES)
    assert h.field == "age_band"
    assert h.sources == ("age_years",)
    assert [level.name for level in h.levels] == [
        "bands 0-4,5-14,15-24,25-44,45-64,65+",
        "bands 0-14,15-44,45+",
        "bands 0-44,45+",
        "bands 0+",
        "*",
    ]
    t = _ages([7.0, 50.0, None, None], [None, None, "40-49", None])
    assert [_values(t, level.expr(t)) for level in h.levels] == [
        ["5-14", "45-64", None, None],
        ["0-14", "45+", None, None],
        ["0-44", "45+", None, None],
        ["0+", "0+", "0+", None],
        ["*", "*", "*", "*"],
    ]


@pytest.mark.parametrize("edges", [[], [5, 5], [-1, 5], [10, 5], [0, 2.5], [0, True]])
def test_invalid_age_edges_are_refused(edges: list[Any]) -> None:
    with pytest.raises(HierarchyError, match="age band edges"):
        age_hierarchy(edges)


# --- area ---------------------------------------------------------------------------------


def _places() -> Any:
    return _table(
        {
            "country": ["VNM", "VNM", "VNM", "VNM"],
            "admin1": ["VN-01", "VN-01", None, "VN-02"],
            "admin2": ["VN-01-A", None, None, "VN-02-B"],
            "admin3": [None, None, None, "VN-02-B-x"],
        }
    )


def test_area_coalesces_to_the_finest_code_a_record_has() -> None:
    t = _places()
    assert _values(t, area_expr(t, 3)) == ["VN-01-A", "VN-01", "VNM", "VN-02-B-x"]
    assert _values(t, area_expr(t, 2)) == ["VN-01-A", "VN-01", "VNM", "VN-02-B"]
    assert _values(t, area_expr(t, 1)) == ["VN-01", "VN-01", "VNM", "VN-02"]
    assert _values(t, area_expr(t, 0)) == ["VNM"] * 4


def test_area_hierarchy_climbs_to_the_country() -> None:
    h = area_hierarchy(2)
    assert h.field == "area"
    assert [level.name for level in h.levels] == ["admin2", "admin1", "country", "*"]
    assert set(h.sources) == {"admin1", "admin2", "admin3", "area_level"}
    t = _places()
    assert _values(t, h.levels[0].expr(t)) == ["VN-01-A", "VN-01", "VNM", "VN-02-B"]
    assert [level.name for level in area_hierarchy(0).levels] == ["country", "*"]


@pytest.mark.parametrize("level", [-1, 4, True])
def test_invalid_area_level_is_refused(level: int) -> None:
    with pytest.raises(HierarchyError, match="area level"):
        area_hierarchy(level)


# --- dates --------------------------------------------------------------------------------

DATES = st.dates(min_value=date(1990, 1, 1), max_value=date(2060, 12, 31))


def _start_oracle(d: date, resolution: str, calendar: str) -> date:
    if resolution == "day":
        return d
    if resolution == "week":
        back = d.isoweekday() - 1 if calendar == "iso" else d.isoweekday() % 7
        return d - timedelta(days=back)
    if resolution == "month":
        return d.replace(day=1)
    if resolution == "quarter":
        return date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
    return date(d.year, 1, 1)


def _label_oracle(d: date, resolution: str, calendar: str) -> str:
    if resolution == "day":
        return d.isoformat()
    if resolution == "week":
        if calendar == "iso":
            year, week, _ = d.isocalendar()
        else:
            cdc = epiweeks.Week.fromdate(d, system="cdc")
            year, week = cdc.year, cdc.week
        return f"{year:04d}-W{week:02d}"
    if resolution == "month":
        return f"{d.year:04d}-{d.month:02d}"
    if resolution == "quarter":
        return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"
    return f"{d.year:04d}"


@settings(max_examples=20, deadline=None)
@given(
    days=st.lists(DATES, min_size=1, max_size=40),
    resolution=st.sampled_from(RESOLUTIONS),
    calendar=st.sampled_from(["iso", "cdc"]),
)
def test_period_starts_and_labels_match_python(
    days: list[date], resolution: str, calendar: str
) -> None:
    t = _table({"date_onset": [*days, None]})
    starts = _values(t, date_expr(t["date_onset"], resolution, calendar))
    labels = _values(t, date_label_expr(t["date_onset"], resolution, calendar))
    assert starts == [*(_start_oracle(d, resolution, calendar) for d in days), None]
    assert labels == [*(_label_oracle(d, resolution, calendar) for d in days), None]


def test_new_year_2026_week_depends_on_the_calendar() -> None:
    t = _table({"date_onset": [date(2026, 1, 1)]})
    assert _values(t, date_expr(t["date_onset"], "week", "iso")) == [date(2025, 12, 29)]
    assert _values(t, date_expr(t["date_onset"], "week", "cdc")) == [date(2025, 12, 28)]
    assert _values(t, date_label_expr(t["date_onset"], "week", "iso")) == ["2026-W01"]
    assert _values(t, date_label_expr(t["date_onset"], "week", "cdc")) == ["2025-W53"]


def test_date_hierarchy_goes_from_the_resolution_to_the_year() -> None:
    h = date_hierarchy("date_report", "week", "cdc")
    assert h.field == "date_report"
    assert [level.name for level in h.levels] == ["week (cdc)", "month", "quarter", "year", "*"]
    t = _table({"date_report": [date(2025, 5, 17)]})
    assert [_values(t, level.expr(t)) for level in h.levels] == [
        ["2025-W20"],  # MMWR week 20 of 2025: Sunday 11 to Saturday 17 May
        ["2025-05"],
        ["2025-Q2"],
        ["2025"],
        ["*"],
    ]
    assert len(date_hierarchy("date_onset", "day").levels) == len(RESOLUTIONS) + 1


def test_unknown_resolution_or_calendar_is_refused() -> None:
    with pytest.raises(HierarchyError, match="resolution 'fortnight'"):
        date_hierarchy("date_onset", "fortnight")
    with pytest.raises(HierarchyError, match="calendar 'mayan'"):
        date_hierarchy("date_onset", "week", "mayan")


# --- sex and the hierarchy contract ------------------------------------------------------


def test_sex_hierarchy_keeps_nulls_apart_from_suppression() -> None:
    h = sex_hierarchy()
    t = _table({"sex": ["M", "F", "U", None]})
    assert [_values(t, level.expr(t)) for level in h.levels] == [
        ["M", "F", "U", None],
        ["*", "*", "*", "*"],
    ]


def test_a_hierarchy_must_end_suppressed_and_name_levels_once() -> None:
    sex = Level("sex", lambda t: t["sex"])
    with pytest.raises(EpibridgeError, match="must end with the suppressed level"):
        Hierarchy("sex", (sex,))
    with pytest.raises(EpibridgeError, match="repeats a level name"):
        Hierarchy("sex", (sex, sex, suppressed_level()))
