"""The scorecards' period rows summed in the database equal the ones summed in Python.

``reference_rows`` is how the scorecards were computed before the sums moved to SQL: it
reads every current cell (``counts_as_of``) and every received cell
(``counts_received``) into Python. The SQL rows (``quality._period_rows`` over
``quality_sql.period_sums``) must equal it on SQLite and PostgreSQL, on a hub with
duplicates, repetitions, revisions, withheld cells, more deaths than cases, a jump, sex
and age strata, a period whose cells disagree on its start and periods starting the
same day.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import Engine

from epibridge.hub import quality, quality_sql
from epibridge.hub.picture_expr import DatabaseSource
from epibridge.hub.quality_reporting import with_reporting
from epibridge.hub.quality_sql import period_sums
from epibridge.hub.regional import counts_as_of, counts_received
from epibridge.hub.regional_context import reporting_sums
from epibridge.model.schema import RELEASE_COUNTS
from tests.hub import test_intake
from tests.hub.payloads import week_cell
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import _send

world = test_intake.world
hub = test_intake.hub
url = test_intake.url  # SQLite and PostgreSQL

_CELL = ("country", "area", "disease", "period_type", "calendar", "period", "sex", "age_band")
WEEKS = [date(2025, 12, 1) + timedelta(weeks=n) for n in range(4)]  # 2025-W49 ..


def reference_rows(
    current: list[dict[str, Any]], received: list[dict[str, Any]], limits: quality.Thresholds
) -> list[dict[str, Any]]:
    """One row per country, disease and period, from the cells of the current picture and
    every cell ever received (for first arrival and repetitions): the Python original."""
    first: dict[tuple[str, str, str], datetime] = {}
    per_submission: Counter[tuple[Any, ...]] = Counter()
    submissions_of: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    revised: set[str] = {r["revision_of"] for r in received if r.get("revision_of")}
    for r in received:
        key = (r["country"], r["disease"], r["period"])
        if key not in first or r["received_at"] < first[key]:
            first[key] = r["received_at"]
        cell = tuple(r[c] for c in _CELL)
        per_submission[(r["submission_id"], *cell)] += 1
        if r["submission_id"] not in revised:
            submissions_of[cell].add(r["submission_id"])
    # per cell: in how many submissions it was sent more than once
    duplicated: Counter[tuple[Any, ...]] = Counter(
        tuple(cell) for (_, *cell), n in per_submission.items() if n > 1
    )
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in current:
        groups[(r["country"], r["disease"], r["period"])].append(r)
    ever: dict[tuple[str, int], set[str]] = defaultdict(set)
    for r in current:
        ever[(r["country"], r["area_level"])].add(r["area"])
    rows = []
    for (country, disease, period), cells in sorted(
        groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[1][0]["period_start"])
    ):
        start, end, level = cells[0]["period_start"], cells[0]["period_end"], cells[0]["area_level"]
        areas = {c["area"] for c in cells}
        expected_set = quality.expected_areas(country, level, start, ever[(country, level)])
        expected = max(len(expected_set), len(areas))
        arrived = first.get((country, disease, period))
        delay = None if arrived is None else (arrived.date() - end).days
        keys = {tuple(c[k] for k in _CELL) for c in cells}
        rows.append(
            {
                "country": country,
                "disease": disease,
                "period": period,
                "period_start": start,
                "period_end": end,
                "area_level": level,
                "areas_reported": len(areas),
                "areas_expected": expected,
                "completeness": len(areas) / expected if expected else None,
                "delay_days": delay,
                "on_time": None if delay is None else delay <= limits.on_time_days,
                "cells": len(cells),
                "cells_suppressed": sum(1 for c in cells if c["cases_suppressed"]),
                "duplicate_cells": sum(duplicated[k] for k in keys),
                "repeated_cells": sum(1 for k in keys if len(submissions_of.get(k, ())) > 1),
                "deaths_over_cases": sum(
                    1
                    for c in cells
                    if c["deaths"] is not None
                    and c["cases"] is not None
                    and c["deaths"] > c["cases"]
                ),
                "cases": sum(
                    c["cases"] or 0 for c in cells if c["sex"] is None and c["age_band"] is None
                )
                or sum(c["cases"] or 0 for c in cells),
                "jump": False,
            }
        )
    return rows  # the jump was not moved to SQL: marked by the caller


DEFAULT = quality.Thresholds()


def assert_sql_rows_equal_the_reference(
    engine: Engine, at: datetime, limits: quality.Thresholds = DEFAULT
) -> list[dict[str, Any]]:
    """The SQL period rows at ``at`` equal ``reference_rows`` on the wide reads; them."""
    reference = reference_rows(
        counts_as_of(engine, at).to_pylist(), counts_received(engine, at).to_pylist(), limits
    )
    # the reports, where sent, are merged in the same way into both (quality_reporting)
    reference = quality.mark_jumps(with_reporting(reference, reporting_sums(engine, at)), limits)
    got = quality._period_rows(engine, at, period_sums(engine, at), limits)
    assert got == reference
    return got


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=RELEASE_COUNTS)


S1, S2, S3, S4 = (f"dddddddd-0000-4000-8000-00000000000{n}" for n in range(1, 5))


def _first() -> list[dict[str, Any]]:
    w0, w1, w2 = WEEKS[:3]
    return [
        week_cell("KH-1", w0, 10),
        week_cell("KH-2", w0, None),  # withheld
        week_cell("KH-3", w0, 4, sex="F"),
        week_cell("KH-3", w0, 5, sex="M"),
        week_cell("KH-3", w0, 2, age_band="0-4"),  # an age band without sex
        week_cell("KH-3", w0, 4, sex="F"),  # a stratum twice in one submission
        week_cell(
            "KH-1", w0, 6, period="2025-12", period_type="month", period_end=date(2025, 12, 31)
        ),
        week_cell("KH-1", w1, 12, deaths=15),  # more deaths than cases
        week_cell("KH-2", w1, 0),
        week_cell("KH-2", w1, 0),  # a total twice
        week_cell("KH-4", w1, 7, sex="F", age_band="0-4"),
        # week 2: totals of 0 only, so the cases are the strata's
        week_cell("KH-1", w2, 0),
        week_cell("KH-1", w2, 8, sex="M"),
        week_cell("KH-2", w2, None, sex="F"),
        # the same week label on another calendar, starting a day earlier
        week_cell("KH-0", w1 - timedelta(days=1), 1, calendar="epi", period="2025-W50"),
        # a level the registry does not hold: the areas seen are the expected ones
        week_cell("KH-X1", w0, 3, area_level=2, disease="MALARIA"),
        week_cell("KH-X2", w1, 2, area_level=2, disease="MALARIA"),
    ]


@pytest.fixture
def planted(hub: Hub, tmp_path: Path) -> Hub:
    w0, w1, w2, w3 = WEEKS
    _send(hub, tmp_path, S1, _table(_first()), at_hours=0)
    again = [  # not a revision: the same cells again, one with new values
        week_cell("KH-1", w0, 11),
        week_cell("KH-3", w0, 4, sex="F"),
        week_cell("KH-3", w0, 2, age_band="0-4"),
        week_cell("KH-4", w1, 7, sex="F", age_band="0-4"),
        week_cell("KH-4", w1, 7, sex="F", age_band="0-4"),
        week_cell("KH-4", w1, 7, sex="F", age_band="0-4"),  # three times
        week_cell("KH-2", w1, 0),
        week_cell("KH-2", w1, 0),  # twice here and twice in the first submission
    ]
    _send(hub, tmp_path, S2, _table(again), at_hours=30)
    fixed = [r for r in _first() if r["area"] != "KH-2"]  # a revision drops an area
    fixed[0] = week_cell("KH-1", w0, 9)
    _send(hub, tmp_path, S3, _table(fixed), at_hours=60, revision_of=S1)
    jump = [
        week_cell("KH-1", w3, 200),
        week_cell("KH-3", w3, 5, sex="F"),
        week_cell("KH-1", w2, 1),
        week_cell("KH-X1", w1, 4, area_level=3, disease="MALARIA"),  # an area at two levels
    ]
    _send(hub, tmp_path, S4, _table(jump), at_hours=200)
    return hub


# 30 and 60: the moments the second and third submissions arrive (received by then)
@pytest.mark.parametrize("hours", [-1, 1, 30, 40, 60, 70, 300])
def test_sql_period_rows_equal_the_python_ones(planted: Hub, hours: float) -> None:
    rows = assert_sql_rows_equal_the_reference(
        planted.context.store.engine, NOW + timedelta(hours=hours)
    )
    if hours < 0:
        assert rows == []
        return
    by_period = {r["period"]: r for r in rows}
    assert {"2025-W49", "2025-12", "2025-W50"} <= set(by_period)
    assert sum(r["duplicate_cells"] for r in rows) > 0
    assert sum(r["deaths_over_cases"] for r in rows) > 0
    assert sum(r["cells_suppressed"] for r in rows) > 0 or hours >= 60  # revised at 60
    if hours >= 40:
        assert sum(r["repeated_cells"] for r in rows) > 0
    if hours >= 300:
        assert any(r["jump"] for r in rows)


def test_periods_starting_the_same_day_keep_their_order(
    planted: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quality_sql, "_BATCH", 1)  # one first cell per query
    rows = assert_sql_rows_equal_the_reference(
        planted.context.store.engine, NOW + timedelta(hours=300)
    )
    starts = [(r["period"], r["period_start"]) for r in rows]
    assert starts[:2] == [("2025-W49", WEEKS[0]), ("2025-12", WEEKS[0])]
    # the epi week's cell comes first in the picture's order: its start is the period's
    assert ("2025-W50", WEEKS[1] - timedelta(days=1)) in starts


@pytest.mark.parametrize(("hours", "uncertain"), [(1, False), (40, True)])
def test_uncertain_duplicates_are_counted_exactly(
    planted: Hub, hours: float, uncertain: bool
) -> None:
    engine = planted.context.store.engine
    at = NOW + timedelta(hours=hours)
    source = DatabaseSource(engine)
    picture = source.picture(at)
    fast = source.rows(quality_sql._sums(picture, exact=False))
    exact = source.rows(quality_sql._sums(picture, exact=True))
    assert any(row["uncertain"] for row in fast) == uncertain
    if not uncertain:  # the one-pass count is the exact one
        assert fast == exact
    rows = assert_sql_rows_equal_the_reference(engine, at)
    assert max(r["duplicate_cells"] for r in rows) >= (2 if uncertain else 1)


def test_areas_seen_take_the_level_of_the_cell_in_use(planted: Hub) -> None:
    engine = planted.context.store.engine
    before = quality_sql.areas_seen(engine, NOW + timedelta(hours=1), ["KHM"])
    assert before[("KHM", 2)] == {"KH-X1", "KH-X2"}
    after = quality_sql.areas_seen(engine, NOW + timedelta(hours=300), ["KHM"])
    assert after[("KHM", 2)] == {"KH-X1", "KH-X2"} and after[("KHM", 3)] == {"KH-X1"}
    assert after[("KHM", 1)] >= {"KH-0", "KH-1", "KH-3", "KH-4"}
    rows = assert_sql_rows_equal_the_reference(engine, NOW + timedelta(hours=300))
    malaria = [r for r in rows if r["disease"] == "MALARIA"]
    assert [r["areas_expected"] for r in malaria] == [2, 2]


def test_thresholds_apply_to_the_sql_rows(planted: Hub) -> None:
    limits = quality.Thresholds(on_time_days=0, jump_factor=1.5, jump_min=1)
    rows = assert_sql_rows_equal_the_reference(
        planted.context.store.engine, NOW + timedelta(hours=300), limits
    )
    assert any(r["jump"] for r in rows) and not all(r["on_time"] for r in rows)
