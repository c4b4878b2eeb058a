"""Generalization hierarchies for the quasi-identifiers of a case line list.

A quasi-identifier (age, place, date, sex) is not secret by itself, but together they can
single a person out. Each one gets a *hierarchy*: an ordered tuple of levels, finest first,
each a function from the table to a value expression, ending with the fully suppressed
level ``*``. :mod:`epibridge.pipeline.kanon` searches the lattice of level choices for the
least generalization that makes the release k-anonymous; the protect stage also uses
:func:`date_expr` alone to coarsen dates when no k-anonymity is asked.

Every level of a hierarchy returns a string, so that one column holds any level and two
levels can be compared. Dates are rendered as the registry's canonical period labels
(``2025-01-31``, ``2025-W03``, ``2025-01``, ``2025-Q1``, ``2025``): readable, sortable
within a level, and unambiguous about which resolution a value has.

Pure expression builders: no I/O, nothing is executed here. See docs/k-anonymity.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import ibis
import ibis.expr.types as ir

from epibridge.model.errors import EpibridgeError
from epibridge.registry.calendar_exprs import month_start_expr, week_label_expr, week_start_expr
from epibridge.registry.calendars import WEEK_SYSTEMS

RESOLUTIONS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
"""Date resolutions, finest first."""

SUPPRESSED = "*"
"""Value (and level name) of the coarsest level of every hierarchy."""

_ADMIN = ("country", "admin1", "admin2", "admin3")


class HierarchyError(EpibridgeError):
    """A generalization setting (age bands, area level, date resolution) is invalid."""


@dataclass(frozen=True)
class Level:
    """One level of a hierarchy: a name for the receipt and the expression that computes it."""

    name: str
    expr: Callable[[ir.Table], ir.Value]


@dataclass(frozen=True)
class Hierarchy:
    """Levels of one quasi-identifier, finest first, the last one suppressing it entirely.

    ``field`` is the output column. ``sources`` are the other input columns the levels read;
    a release replaces ``field`` by its generalized value and drops ``sources``, since
    leaving (say) ``age_years`` beside a generalized ``age_band`` would undo the
    generalization.
    """

    field: str
    levels: tuple[Level, ...]
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [level.name for level in self.levels]
        if not self.levels or names[-1] != SUPPRESSED:
            raise HierarchyError(
                f"the hierarchy of {self.field!r} must end with the suppressed level "
                f"{SUPPRESSED!r}; add suppressed_level() as its last level"
            )
        if len(set(names)) != len(names):
            raise HierarchyError(
                f"the hierarchy of {self.field!r} repeats a level name ({', '.join(names)}); "
                "give each level its own name"
            )


def suppressed_level() -> Level:
    """The coarsest level: every record gets the same value ``*``."""
    return Level(SUPPRESSED, lambda t: ibis.literal(SUPPRESSED, type="string"))


# --- age ----------------------------------------------------------------------------------


def _check_edges(edges: Sequence[int]) -> tuple[int, ...]:
    out = tuple(edges)
    if (
        not out
        or any(isinstance(e, bool) or not isinstance(e, int) for e in out)
        or out[0] < 0
        or any(b <= a for a, b in pairwise(out))
    ):
        raise HierarchyError(
            f"age band edges {list(edges)} are invalid; give whole years, increasing, "
            "starting at 0 or more (e.g. [0, 5, 15, 25, 45, 65])"
        )
    return out


def _band_labels(edges: tuple[int, ...]) -> list[str]:
    closed = [f"{lo}-{hi - 1}" for lo, hi in pairwise(edges)]
    return [*closed, f"{edges[-1]}+"]


def _band_of(x: ir.NumericValue, edges: tuple[int, ...]) -> ir.StringValue:
    """Label of the band containing ``x``; null below the first edge, for null or NaN."""
    labels = _band_labels(edges)
    # Tested from the top band down, so each branch needs only its lower edge. NaN fails
    # every comparison and falls through to null like a missing age.
    branches = [(x >= lo, label) for lo, label in zip(edges[::-1], labels[::-1], strict=True)]
    return ibis.cases(*branches, else_=ibis.null("string"))


def age_band_expr(t: ir.Table, edges: Sequence[int]) -> ir.StringValue:
    """Age band of each record under the agreement's ``edges``.

    ``[0, 5, 15, 25, 45, 65]`` gives ``0-4``, ``5-14``, ``15-24``, ``25-44``, ``45-64`` and
    ``65+``; a band holds ages from its lower edge up to, not including, the next edge, so
    4.999 is ``0-4``. When ``age_years`` is null the source ``age_band`` (``lo-hi`` or
    ``lo+`` in whole years) is used if it lies entirely inside one band, so ``40-44`` is
    ``25-44`` but ``40-49`` is null (it straddles 45). Ages below the first edge are null.
    """
    bands = _check_edges(edges)
    source = t["age_band"]
    lo = source.re_extract(r"^\s*(\d+)\s*(?:-\s*\d+|\+)\s*$", 1).nullif("").cast("int64")
    hi = source.re_extract(r"^\s*\d+\s*-\s*(\d+)\s*$", 1).nullif("").cast("int64")
    is_open = source.re_search(r"^\s*\d+\s*\+\s*$")
    lo_band = _band_of(lo, bands)
    # A closed source band fits when both ends fall in the same agreement band; an open one
    # (``70+``) fits only inside the open top band.
    fits = ibis.ifelse(
        is_open.fill_null(False),
        lo >= bands[-1],
        (lo <= hi) & (lo_band == _band_of(hi, bands)),
    )
    from_source = ibis.ifelse(fits.fill_null(False), lo_band, ibis.null("string"))
    age = t["age_years"].cast("float64")
    return ibis.ifelse(age.isnull(), from_source, _band_of(age, bands))


def _coarser_edges(edges: tuple[int, ...]) -> tuple[int, ...]:
    # Keep every other edge, from the first: adjacent bands merge in pairs and the open top
    # band absorbs the band below it when their count is even.
    return edges[::2]


def age_hierarchy(edges: Sequence[int]) -> Hierarchy:
    """Agreement bands, then adjacent bands merged in pairs until one ``lo+`` band, then ``*``.

    The one-band level (e.g. ``0+``) is not the same as ``*``: it still tells a known age
    from an unknown one.
    """
    current = _check_edges(edges)
    levels = []
    while True:
        levels.append(
            Level("bands " + ",".join(_band_labels(current)), _age_level(current)),
        )
        if len(current) == 1:
            break
        current = _coarser_edges(current)
    return Hierarchy("age_band", (*levels, suppressed_level()), sources=("age_years",))


def _age_level(edges: tuple[int, ...]) -> Callable[[ir.Table], ir.Value]:
    return lambda t: age_band_expr(t, edges)


# --- area ---------------------------------------------------------------------------------


def _check_level(level: int) -> None:
    if isinstance(level, bool) or level not in range(len(_ADMIN)):
        raise HierarchyError(
            f"area level {level!r} is invalid; use 0 (country), 1, 2 or 3 (admin1..admin3)"
        )


def area_expr(t: ir.Table, level: int) -> ir.StringValue:
    """Area code at admin ``level`` (0 country .. 3), or the finest coarser code the record has.

    A record placed only in its admin1 keeps that admin1 code at levels 2 and 3: it is no
    more precise than the level asks for, and dropping it would lose a usable place.
    """
    _check_level(level)
    return ibis.coalesce(*(t[name] for name in reversed(_ADMIN[: level + 1])))


def area_hierarchy(finest_level: int) -> Hierarchy:
    """Areas at ``finest_level``, then each coarser admin level up to the country, then ``*``."""
    _check_level(finest_level)
    levels = [Level(_ADMIN[lv], _area_level(lv)) for lv in range(finest_level, -1, -1)]
    # area_level would tell how precisely a record was placed; admin1..3 are the area itself.
    return Hierarchy(
        "area",
        (*levels, suppressed_level()),
        sources=("admin1", "admin2", "admin3", "area_level"),
    )


def _area_level(level: int) -> Callable[[ir.Table], ir.Value]:
    return lambda t: area_expr(t, level)


# --- dates --------------------------------------------------------------------------------


def _check_resolution(resolution: str, calendar: str) -> None:
    if resolution not in RESOLUTIONS:
        raise HierarchyError(
            f"date resolution {resolution!r} is unknown; use one of {', '.join(RESOLUTIONS)}"
        )
    if calendar not in WEEK_SYSTEMS:
        raise HierarchyError(
            f"week calendar {calendar!r} is unknown; use 'iso' (Monday weeks) or 'cdc' "
            f"(Sunday weeks), or one of {', '.join(WEEK_SYSTEMS)}"
        )


def date_expr(d: ir.DateValue, resolution: str, calendar: str = "iso") -> ir.DateValue:
    """First day of the ``resolution`` period containing ``d`` (weeks per ``calendar``)."""
    _check_resolution(resolution, calendar)
    if resolution == "day":
        return d
    if resolution == "week":
        return week_start_expr(d, calendar)
    if resolution == "month":
        return month_start_expr(d)
    if resolution == "quarter":
        return ibis.date(d.year(), (d.month() - 1) // 3 * 3 + 1, 1)
    return ibis.date(d.year(), 1, 1)


def _year_text(d: ir.DateValue) -> ir.StringValue:
    return d.year().cast("string").lpad(4, "0")


def _two_digits(n: ir.IntegerValue) -> ir.StringValue:
    return n.cast("string").lpad(2, "0")


def date_label_expr(d: ir.DateValue, resolution: str, calendar: str = "iso") -> ir.StringValue:
    """Canonical label of the period containing ``d``: ``2025-01-31``, ``2025-W03``, ..."""
    _check_resolution(resolution, calendar)
    if resolution == "day":
        return _year_text(d) + "-" + _two_digits(d.month()) + "-" + _two_digits(d.day())
    if resolution == "week":
        return week_label_expr(d, calendar)
    if resolution == "month":
        return _year_text(d) + "-" + _two_digits(d.month())
    if resolution == "quarter":
        return _year_text(d) + "-Q" + d.quarter().cast("string")
    return _year_text(d)


def date_hierarchy(field: str, resolution: str, calendar: str = "iso") -> Hierarchy:
    """Dates of ``field`` at ``resolution``, then each coarser resolution to year, then ``*``.

    A week is not nested in a month, so the week -> month step can split a week's records
    between two months; the search in kanon.py does not rely on nesting.
    """
    _check_resolution(resolution, calendar)
    levels = []
    for res in RESOLUTIONS[RESOLUTIONS.index(resolution) :]:
        name = f"week ({calendar})" if res == "week" else res
        levels.append(Level(name, _date_level(field, res, calendar)))
    return Hierarchy(field, (*levels, suppressed_level()))


def _date_level(field: str, resolution: str, calendar: str) -> Callable[[ir.Table], ir.Value]:
    return lambda t: date_label_expr(t[field], resolution, calendar)


# --- sex ----------------------------------------------------------------------------------


def sex_hierarchy() -> Hierarchy:
    """Sex as recorded (M, F, U or null), then ``*``."""
    return Hierarchy("sex", (Level("sex", lambda t: t["sex"]), suppressed_level()))
