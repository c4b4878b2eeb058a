"""The map's model: which class and style each boundary gets, and the table below it.

Incidence per 100,000 (reported, or corrected with its 95% interval) per area of the
burden table (``hub/burden.py``), drawn over the registry's admin-1 boundaries. The
boundaries are pre-2025 Viet Nam: each old Vietnamese polygon takes the value of the
unit that holds it on the map's week (``registry.geography.to_current``; the largest
share when split). Classes are quantiles of the values shown (five at most, rounded to
two significant figures). Imputed areas are hatched, withheld ones get their own
pattern; areas not in the boundary file appear in the table only. The table is sorted
on the server and shown ``PAGE_ROWS`` rows a page (``page_of``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

from epibridge.registry.geography import to_current
from epibridge.web.areas import label, name_of, registry_unit
from epibridge.web.geo import Outline, boundary_codes, outline
from epibridge.web.i18n import DASH, Formatter

CLASSES = 5
MEASURES = ("reported", "corrected")
SORTS = ("area", "country", "status", "cases", "value")
#: Rows of the map's table on one page (a region has thousands of areas).
PAGE_ROWS = 100


@dataclass(frozen=True)
class AreaRow:
    code: str
    country: str
    name: str
    local: str | None
    status: str  # reported, withheld, imputed
    period: str
    cases: int | None
    population: int | None
    value: float | None  # the measure's incidence per 100,000
    low: float | None
    high: float | None
    on_map: bool


@dataclass(frozen=True)
class MapPath:
    code: str  # the boundary polygon's code
    holder: str  # the unit whose value it shows
    classes: str  # CSS classes: q0..q4, imp, withheld, nodata, hidden
    title: str
    path: str
    has_data: bool


@dataclass(frozen=True)
class MapLabel:
    x: float
    y: float
    text: str


@dataclass
class MapModel:
    width: float
    height: float
    paths: list[MapPath] = field(default_factory=list)
    labels: list[MapLabel] = field(default_factory=list)
    breaks: list[float] = field(default_factory=list)
    rows: list[AreaRow] = field(default_factory=list)


def _round2(value: float) -> float:
    if value <= 0:
        return 0.0
    digits = 1 - math.floor(math.log10(value))
    return round(value, digits)


def breaks_of(values: Iterable[float]) -> list[float]:
    """Upper bounds of the lower classes: quantiles of the values, rounded, distinct."""
    ordered = sorted(v for v in values if v > 0)
    if not ordered:
        return []
    out: list[float] = []
    for i in range(1, CLASSES):
        cut = _round2(ordered[min(len(ordered) - 1, (i * len(ordered)) // CLASSES)])
        if cut > 0 and (not out or cut > out[-1]):
            out.append(cut)
    return out


def _rows(table: pa.Table, measure: str, on_map: set[str]) -> list[AreaRow]:
    value, low, high = (
        ("incidence_per_100k", "incidence_low", "incidence_high")
        if measure == "reported"
        else ("incidence_corrected", "incidence_corrected_low", "incidence_corrected_high")
    )
    rows = []
    for r in table.to_pylist():
        if r["status"] == "total":
            continue
        name, local = name_of(r["area"])
        rows.append(
            AreaRow(
                r["area"],
                r["country"],
                name,
                local,
                r["status"],
                r["period"],
                r["cases"],
                r["population"],
                r[value],
                r[low],
                r[high],
                r["area"] in on_map,
            )
        )
    return rows


def sort_rows(rows: list[AreaRow], key: str, descending: bool) -> list[AreaRow]:
    def sort_key(row: AreaRow) -> tuple[Any, ...]:
        if key == "country":
            return (row.country, row.name)
        if key == "status":
            return (row.status, row.name)
        if key in ("cases", "value"):
            number = row.cases if key == "cases" else row.value
            # areas without a number sort last whichever the direction
            missing = number is None
            return (missing != descending, number or 0.0, row.name)
        return (row.name, row.code)

    return sorted(rows, key=sort_key, reverse=descending)


@dataclass(frozen=True)
class TablePage:
    """One page of the sorted table: its rows, its number (from 1) and how many there are."""

    rows: list[AreaRow]
    number: int
    pages: int
    total: int
    size: int

    @property
    def first(self) -> int:
        """The position (from 1) of the page's first row; 0 when the table is empty."""
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def page_of(rows: list[AreaRow], number: int, size: int | None = None) -> TablePage:
    """Page ``number`` of ``rows`` (already sorted), ``size`` rows a page (``PAGE_ROWS``
    unless given); a number out of range gives the nearest page."""
    size = size or PAGE_ROWS
    pages = max(1, -(-len(rows) // size))
    number = min(max(1, number), pages)
    return TablePage(rows[(number - 1) * size : number * size], number, pages, len(rows), size)


def holder_of(code: str, week: date) -> str:
    """The unit holding boundary polygon ``code`` on ``week`` (itself when unchanged)."""
    unit = registry_unit(code)
    if unit is None or unit.valid_on(week):
        return code
    successors = to_current(code, week)
    return max(successors, key=lambda s: s[1])[0] if successors else code


def _title(row: AreaRow | None, code: str, status_text: str, fmt: Formatter, unit: str) -> str:
    text = label(row.code if row else code)
    if row is None or row.value is None:
        return f"{text}: {status_text}"
    interval = f" ({fmt.rate(row.low)}{DASH}{fmt.rate(row.high)})" if row.low is not None else ""
    return f"{text}: {fmt.rate(row.value)} {unit}{interval}; {status_text}"


def build_map(
    table: pa.Table,
    measure: str,
    week: date,
    countries: Iterable[str],
    visible: frozenset[str] | None,
    gettext: Callable[[str], str],
    fmt: Formatter,
) -> MapModel:
    """The map of ``table`` (burden rows) over the boundaries of ``countries``."""
    frame: Outline = outline(tuple(sorted(set(countries))))
    holders = {shape.code: holder_of(shape.code, week) for shape in frame.shapes}
    codes = boundary_codes()
    on_map = set(codes) | set(holders.values())
    rows = _rows(table, measure, on_map)
    by_code = {r.code: r for r in rows}
    model = MapModel(frame.width, frame.height, rows=rows)
    model.breaks = breaks_of(r.value for r in rows if r.value is not None)
    unit = gettext("per 100,000")
    status_text = {
        "reported": gettext("reported"),
        "imputed": gettext("imputed (area did not report)"),
        "withheld": gettext("withheld (fewer cases than the agreement's threshold)"),
        "nodata": gettext("no data"),
        "hidden": gettext("not shared with you"),
    }
    for shape in frame.shapes:
        holder = holders[shape.code]
        row = by_code.get(holder) or by_code.get(shape.code)
        if visible is not None and shape.country not in visible:
            kind, classes = "hidden", "hidden"
        elif row is None:
            kind, classes = "nodata", "nodata"
        elif row.status == "withheld":
            kind, classes = "withheld", "withheld"
        else:
            kind = row.status
            level = (
                f"q{bisect.bisect_left(model.breaks, row.value)}"
                if row.value is not None
                else "novalue"
            )
            classes = f"imp {level}" if row.status == "imputed" else level
            if row.status == "imputed":
                model.labels.append(MapLabel(shape.label_x, shape.label_y, gettext("imputed")))
        model.paths.append(
            MapPath(
                shape.code,
                row.code if row else holder,
                classes,
                _title(row, holder, status_text[kind], fmt, unit),
                shape.path,
                row is not None,
            )
        )
    return model
