"""The burden table with the reports and populations countries send: completeness from
reports, each area's cases scaled by its missing reports, zeros told from silences, and
the countries' own population figures preferred to the registry's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from epibridge.hub.burden import burden
from epibridge.hub.regional_context import DENOMINATORS_AS_OF, REPORTING_AS_OF
from tests.hub.payloads import as_of_cell
from tests.hub.test_burden import FACTORS, _by, _khm, _table

LINEAGE = {"submission_id": "s", "agreement_id": "a", "source_row": 0}
RECEIVED = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)


def _reports(rows: list[tuple[str, str | None, int, int]], week: int = 0) -> pa.Table:
    """(area, disease, expected, received) of the week ``week`` after 2026-01-05."""
    cell = as_of_cell("x", 0, week=week)
    out: list[dict[str, Any]] = []
    for area, disease, expected, received in rows:
        out.append(
            {
                **LINEAGE,
                "country": "KHM",
                "area": area,
                "area_level": 1,
                "disease": disease,
                **{k: cell[k] for k in ("period", "period_type", "calendar")},
                **{k: cell[k] for k in ("period_start", "period_end")},
                "reports_expected": expected,
                "reports_received": received,
                "reports_on_time": None,
                "received_at": RECEIVED,
            }
        )
    return pa.Table.from_pylist(out, REPORTING_AS_OF)


def test_reports_scale_areas_tell_zeros_from_silences_and_set_completeness() -> None:
    codes, pops = _khm()
    a, b, c, d = codes[:4]
    cells = [as_of_cell(a, 30), as_of_cell(b, 10)]
    # a: 3 of 4 reports; b: all; c: reports but no cell (a zero); d: no report (silent)
    reports = _reports([(a, "DENGUE", 4, 3), (b, None, 2, 2), (c, None, 5, 5), (d, None, 3, 0)])
    # the disease's own reports win where both exist; a has only DENGUE's, the rest the form
    reports = pa.concat_tables([reports, _reports([(a, None, 9, 9)])])
    out = burden(_table(cells), FACTORS, reporting=reports)
    reported, imputed = _by(out, "reported"), _by(out, "imputed")
    # only a's own reports count for DENGUE there, so the all-disease form is not used
    assert set(reported) == {a, b}
    assert reported[a]["completeness_basis"] == "reports"
    assert reported[a]["completeness"] == pytest.approx(3 / 4)
    factor = FACTORS[("KHM", "DENGUE")].factor
    assert reported[a]["cases_corrected"] == pytest.approx(30 * 4 / 3 * factor)
    assert reported[b]["cases_corrected"] == pytest.approx(10 * factor)
    assert not imputed  # the country's own reports (DENGUE) name no silent area

    # the all-disease form only: c reported zero, d is imputed, the rest were not expected
    form = _reports([(a, None, 4, 3), (b, None, 2, 2), (c, None, 5, 5), (d, None, 3, 0)])
    out = burden(_table(cells), FACTORS, reporting=form)
    reported, imputed = _by(out, "reported"), _by(out, "imputed")
    assert set(reported) == {a, b, c} and reported[c]["cases"] == 0
    assert set(imputed) == {d}
    total = _by(out, "total")["KHM"]
    assert (total["areas_reported"], total["areas_expected"]) == (3, 4)
    assert total["completeness"] == pytest.approx(10 / 14)
    pool = pops[a] + pops[b] + pops[c]
    adjusted = 30 * 4 / 3 + 10
    assert imputed[d]["cases_corrected"] == pytest.approx(adjusted * pops[d] / pool * factor)
    assert total["cases_corrected"] == pytest.approx(
        (adjusted + adjusted * pops[d] / pool) * factor
    )
    assert total["incidence_corrected"] == pytest.approx(adjusted / pool * factor * 100_000)


def test_without_reports_nothing_changes() -> None:
    codes, _ = _khm()
    cells = _table([as_of_cell(code, 5) for code in codes[:3]])
    plain = burden(cells, FACTORS)
    empty = burden(cells, FACTORS, reporting=REPORTING_AS_OF.empty_table())
    assert plain.equals(empty)
    assert set(plain.column("completeness_basis").to_pylist()) == {"areas"}


def test_a_week_with_reports_and_no_cells_is_on_the_map() -> None:
    codes, _ = _khm()
    cells = _table([as_of_cell(codes[0], 4, week=0)])
    # week 1: every area sent its form, none had a case to release
    form = _reports([(code, None, 2, 2) for code in codes[:3]], week=1)
    out = burden(cells, FACTORS, reporting=form)
    week1 = [r for r in out.to_pylist() if r["period"] == "2026-W03"]
    assert {r["status"] for r in week1} == {"reported", "total"}
    assert all(r["cases"] == 0 for r in week1)
    assert next(r for r in week1 if r["status"] == "total")["completeness"] == 1.0


def test_the_countries_own_populations_are_preferred() -> None:
    codes, pops = _khm()
    cells = _table([as_of_cell(code, 10) for code in codes[:2]])
    sent = pa.Table.from_pylist(
        [
            {
                **LINEAGE,
                "country": "KHM",
                "area": codes[0],
                "area_level": 1,
                "year": 2026,
                "age_band": None,
                "sex": None,
                "population": 1_000_000,
                "source": "NIS projection 2026",
                "received_at": RECEIVED,
            },
            # a stratum is not a total: never used as the area's population
            {
                **LINEAGE,
                "country": "KHM",
                "area": codes[1],
                "area_level": 1,
                "year": 2026,
                "age_band": None,
                "sex": "F",
                "population": 5,
                "source": "x",
                "received_at": RECEIVED,
            },
        ],
        DENOMINATORS_AS_OF,
    )
    out = _by(burden(cells, FACTORS, populations=sent), "reported")
    assert out[codes[0]]["population"] == 1_000_000
    assert out[codes[0]]["incidence_per_100k"] == pytest.approx(1.0)
    assert out[codes[1]]["population"] == pops[codes[1]]
