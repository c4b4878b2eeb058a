"""The reports each country sent, by country, disease and period, for the burden table.

Built from the rows of ``regional_context.reporting_as_of`` (already read for the
countries, diseases and periods asked). A disease's own reports are preferred; otherwise
the reports covering every notifiable disease (a weekly zero-report form, null disease)
stand for each disease. A period whose reports expect nothing counts as without reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import pyarrow as pa

T = TypeVar("T")


def own_else_form(
    index: Mapping[tuple[Any, ...], T],
    country: str,
    disease: str,
    when: tuple[str, ...],
    usable: Callable[[T], bool],
) -> T | None:
    """The reports of ``disease`` in ``index`` (keyed ``(country, disease, *when)``), else
    those covering every disease (null disease); the first that is ``usable``. The one
    rule the scorecards and the burden table both follow."""
    for key in ((country, disease, *when), (country, None, *when)):
        found = index.get(key)
        if found is not None and usable(found):
            return found
    return None


@dataclass(frozen=True)
class AreaReports:
    expected: int
    received: int


@dataclass
class PeriodReports:
    """One country's reports for one disease (or all) and period, by area."""

    period_start: date
    period_end: date
    area_level: int
    areas: dict[str, AreaReports] = field(default_factory=dict)
    expected: int = 0
    received: int = 0

    def scale(self, area: str) -> float:
        """How many times its reported cases an area counts: expected over received
        reports (1 when all came, or when the area sent none or has no reports here)."""
        r = self.areas.get(area)
        if r is None or r.received <= 0 or r.expected <= r.received:
            return 1.0
        return r.expected / r.received


class Reports:
    """``find`` the reports of a country, disease and period."""

    def __init__(self, table: pa.Table | None) -> None:
        self.by_period: dict[tuple[str, str | None, str, str], PeriodReports] = {}
        if table is None:
            return
        for row in table.to_pylist():
            key = (row["country"], row["disease"], row["period_type"], row["period"])
            found = self.by_period.get(key)
            if found is None:
                found = PeriodReports(row["period_start"], row["period_end"], row["area_level"])
                self.by_period[key] = found
            expected, received = int(row["reports_expected"]), int(row["reports_received"])
            found.areas[row["area"]] = AreaReports(expected, received)
            found.expected += expected
            found.received += received

    def find(
        self, country: str, disease: str, period_type: str, period: str
    ) -> PeriodReports | None:
        return own_else_form(
            self.by_period, country, disease, (period_type, period), lambda r: r.expected > 0
        )
