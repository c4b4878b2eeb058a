"""Completeness from the reports the countries sent, where they sent them.

Without reporting data the scorecards can only count areas: an area that sent no cell
for a period counts as not reporting (``quality._period_rows``). But a counts release
lists only the blocks with data, so an area that reported zero cases looks the same as
one that sent nothing. Where a country releases its reports expected and received
(``regional_context``), completeness is DHIS2's reporting rate instead: reports
received over reports expected for the country, disease and period; a report covering
every notifiable disease (a weekly zero-report form) counts for each disease. A period
for which reports arrived but no count cell did gets a row of its own: the country
reported, and had no cases to release.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyarrow as pa

from epibridge.hub.reporting_index import own_else_form

#: What a period row's completeness was computed from.
BASES = ("reports", "areas")


def _reports(sums: pa.Table) -> dict[tuple[str, str | None, str], dict[str, Any]]:
    return {(r["country"], r["disease"], r["period"]): r for r in sums.to_pylist()}


def _matching(
    reports: dict[tuple[str, str | None, str], dict[str, Any]],
    country: str,
    disease: str,
    period: str,
) -> dict[str, Any] | None:
    """The reports of the disease, else those covering every disease; None when the
    country sent no reports expected for the period."""
    return own_else_form(
        reports, country, disease, (period,), lambda r: bool(r["reports_expected"] > 0)
    )


def _set(row: dict[str, Any], found: dict[str, Any] | None) -> None:
    if found is None:
        row.update(
            reports_expected=None,
            reports_received=None,
            reports_on_time_rate=None,
            completeness_basis="areas",
        )
        return
    known = found["on_time_known"]
    row.update(
        reports_expected=found["reports_expected"],
        reports_received=found["reports_received"],
        completeness=found["reports_received"] / found["reports_expected"],
        reports_on_time_rate=found["reports_on_time"] / known if known else None,
        completeness_basis="reports",
    )


def _silent_row(country: str, disease: str, found: dict[str, Any]) -> dict[str, Any]:
    """A period with reports and no count cell: nothing released, nothing to score but
    the reporting itself."""
    return {
        "country": country,
        "disease": disease,
        "period": found["period"],
        "period_start": found["period_start"],
        "period_end": found["period_end"],
        "area_level": found["area_level"],
        "areas_reported": 0,
        "areas_expected": found["areas"],
        "completeness": None,
        "delay_days": None,
        "on_time": None,
        "cells": 0,
        "cells_suppressed": 0,
        "duplicate_cells": 0,
        "repeated_cells": 0,
        "deaths_over_cases": 0,
        "cases": 0,
        "jump": False,
    }


def with_reporting(rows: list[dict[str, Any]], sums: pa.Table) -> list[dict[str, Any]]:
    """``rows`` (period rows ordered by country, disease and period) with completeness
    from the reports where there are any, and a row for each period with reports but no
    cells; ordered as before, by period start within each country and disease."""
    reports = _reports(sums)
    for row in rows:
        _set(row, _matching(reports, row["country"], row["disease"], row["period"]))
    if not reports:
        return rows
    have = {(r["country"], r["disease"], r["period"]) for r in rows}
    # the period types each country's diseases are released in, seen through the reports
    types: dict[tuple[str, str], set[str]] = defaultdict(set)
    type_of = {(c, p): r["period_type"] for (c, _, p), r in reports.items()}
    for country, disease, period in have:
        if (country, period) in type_of:
            types[(country, disease)].add(type_of[(country, period)])
    diseases: dict[str, set[str]] = defaultdict(set)
    for country, disease in types:
        diseases[country].add(disease)
    silent: list[dict[str, Any]] = []
    for (country, disease, period), found in reports.items():
        if found["reports_expected"] <= 0:
            continue
        wanted = (
            [disease]
            if disease is not None
            else sorted(d for d in diseases[country] if found["period_type"] in types[(country, d)])
        )
        for d in wanted:
            if (country, d, period) in have:
                continue
            if disease is None and (country, d, period) in reports:
                continue  # the disease's own reports come in their own turn
            row = _silent_row(country, d, found)
            _set(row, _matching(reports, country, d, period))
            silent.append(row)
            have.add((country, d, period))
    if not silent:
        return rows
    merged = rows + silent
    merged.sort(key=lambda r: (r["country"], r["disease"], r["period_start"], r["period"]))
    return merged
