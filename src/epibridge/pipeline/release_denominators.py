"""Denominator releases: population per area and year at the agreement's area level.

A population figure is not about any one person, so it needs no suppression; what an
agreement still governs is its grain. Each figure moves up to the agreement's area level
and, unless the agreement allows the breakdown, loses its sex and age band. Where that
leaves several figures for one released cell, the most direct one wins: a figure given
for the area itself beats the sum of its districts, and a total beats the sum of its
strata, so a national table that lists provinces and their districts (or totals and
their strata) is not counted twice. Only figures of the same preference are summed.
"""

from __future__ import annotations

from collections import defaultdict

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from epibridge.model.agreement import Agreement
from epibridge.model.schema import RELEASE_DENOMINATORS
from epibridge.pipeline.generalize import area_expr

_KEY = ("area", "area_level", "year", "age_band", "sex")


def breakdowns(agreement: Agreement) -> tuple[str, ...]:
    """The strata a denominator release keeps: those the agreement allows for counts."""
    return tuple(b for b in ("sex", "age_band") if b in agreement.count_fields)


def denominator_cells(t: ir.Table, agreement: Agreement) -> ir.Table:
    """Population per released cell and source, from the preferred figures only."""
    kept = breakdowns(agreement)
    dropped = [b for b in ("sex", "age_band") if b not in kept]
    # Lower is preferred: the figure's own level first (0..3), then how many strata the
    # release folds away (a total before a sum of strata).
    folded = sum((t[b].notnull().cast("int8") for b in dropped), ibis.literal(0).cast("int8"))
    keyed = t.mutate(
        _area=area_expr(t, agreement.area_level),
        _area_level=ibis.least(t["area_level"], agreement.area_level).cast("int8"),
        _year=t["year"].cast("int16"),
        _age=t["age_band"] if "age_band" in kept else ibis.null("string"),
        _sex=t["sex"] if "sex" in kept else ibis.null("string"),
        _pref=(t["area_level"].cast("int16") * 10 + folded.cast("int16")),
    )
    group = ["_area", "_area_level", "_year", "_age", "_sex"]
    best = keyed.group_by(group).aggregate(_best=keyed["_pref"].min())
    chosen = keyed.inner_join(best, [keyed[g].identical_to(best[g]) for g in group])
    chosen = chosen.filter(chosen["_pref"] == chosen["_best"])
    return chosen.group_by(
        area=chosen["_area"],
        area_level=chosen["_area_level"],
        year=chosen["_year"],
        age_band=chosen["_age"],
        sex=chosen["_sex"],
        source=chosen["source"],
    ).aggregate(population=chosen["population"].sum().cast("int64"))


def denominators_release(cells: pa.Table, agreement: Agreement) -> pa.Table:
    """One row per released cell (``RELEASE_DENOMINATORS``): its population summed over
    sources, the sources named in order."""
    population: dict[tuple[object, ...], int] = defaultdict(int)
    sources: dict[tuple[object, ...], set[str]] = defaultdict(set)
    for row in cells.to_pylist():
        key = tuple(row[k] for k in _KEY)
        population[key] += int(row["population"])
        sources[key].add(str(row["source"]))
    keys = sorted(population, key=lambda k: tuple("" if v is None else str(v) for v in k))
    rows = [
        {
            "country": agreement.sender,
            **dict(zip(_KEY, key, strict=True)),
            "population": population[key],
            "source": "; ".join(sorted(sources[key])),
        }
        for key in keys
    ]
    return pa.Table.from_pylist(rows, schema=RELEASE_DENOMINATORS)
