"""Aggregate releases: harmonized cases or counts -> blocks of cells -> a protected table.

A block is one (area, period, disease) after generalization; inside it the cells are
cross-classified by the breakdowns the agreement allows (sex, age band). The engine does
the generalization and the group-by (Ibis); the cells then become a dense numpy array
(blocks x strata) for suppression or noise, and the protected array goes back to Arrow.
Only blocks present in the data are released, except under differential privacy, where
the set of blocks must not depend on the data (``dense_blocks``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from epibridge.model.agreement import Agreement
from epibridge.pipeline.generalize import age_band_expr, area_expr, date_expr
from epibridge.registry.calendar_exprs import shift
from epibridge.registry.calendars import period_containing

SEXES = ("M", "F", "U")
UNKNOWN_AGE = "unknown"
_PERIOD_TYPE = {
    "day": "day",
    "week": "week",
    "month": "month",
    "quarter": "quarter",
    "year": "year",
}


def age_labels(edges: Sequence[int]) -> tuple[str, ...]:
    """Band labels for ``edges`` in order (as ``generalize.age_band_expr`` writes them)."""
    labels = [f"{a}-{b - 1}" for a, b in itertools.pairwise(edges)]
    return (*labels, f"{edges[-1]}+")


@dataclass(frozen=True)
class Dimensions:
    """The breakdowns inside each block, with their categories in array order."""

    names: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.categories)


def dimensions(agreement: Agreement, has_sex: bool, has_age: bool) -> Dimensions:
    names: list[str] = []
    cats: list[tuple[str, ...]] = []
    if "sex" in agreement.count_fields and has_sex:
        names.append("sex")
        cats.append(SEXES)
    if "age_band" in agreement.count_fields and has_age:
        names.append("age_band")
        cats.append((*age_labels(agreement.age_bands), UNKNOWN_AGE))
    return Dimensions(tuple(names), tuple(cats))


def release_period_start(t: ir.Table, agreement: Agreement) -> ir.DateValue:
    """Start of the release period containing each row's period (never finer than the data).

    A row's period is represented by its start date, shifted to the middle of the period
    for weeks so that a week is counted in the month or quarter holding most of its days
    (its Thursday for ISO weeks), as ECDC and WHO aggregate weekly data to months.
    """
    mid = ibis.cases(
        (t["period_type"] == "week", shift(t["period_start"], ibis.interval(days=3))),
        else_=t["period_start"],
    )
    return date_expr(mid.cast("date"), agreement.time_resolution, agreement.calendar)


def generalized(t: ir.Table, agreement: Agreement) -> ir.Table:
    """How many records each generalization changes (for the receipt: counts, not values).

    A place finer than the agreement's level moves up; a period of another type (or week
    convention) is regrouped; an exact age becomes a band.
    """
    resolution = agreement.time_resolution
    same_period = t["period_type"] == resolution
    if resolution == "week":
        same_period &= t["calendar"] == agreement.calendar
    measures = {
        "area": (t["area_level"] > agreement.area_level).sum(),
        "period": (~same_period).sum(),
    }
    if "age_years" in t.columns:
        measures["age"] = t["age_years"].notnull().sum()
    return t.aggregate(**{k: v.fill_null(0).cast("int64") for k, v in measures.items()})


def _keys(t: ir.Table, agreement: Agreement, dims: Dimensions) -> dict[str, ir.Value]:
    """Block and stratum of each row: generalized place, period, disease, sex, age band.

    A stratum the source leaves null (unknown sex, no age) becomes the unknown category.
    """
    keys: dict[str, ir.Value] = {
        "area": area_expr(t, agreement.area_level),
        "area_level": ibis.least(t["area_level"], agreement.area_level).cast("int8"),
        "period_start": release_period_start(t, agreement),
        "disease": t["disease"],
    }
    if "sex" in dims.names:
        keys["sex"] = t["sex"].fill_null("U")
    if "age_band" in dims.names:
        keys["age_band"] = age_band_expr(t, agreement.age_bands).fill_null(UNKNOWN_AGE)
    return keys


def cells_from_cases(cases: ir.Table, agreement: Agreement, dims: Dimensions) -> ir.Table:
    """Cases per block and stratum (and deaths when allowed), summed by the engine."""
    measures = {"cases": cases["case_count"].sum().cast("int64")}
    if "deaths" in agreement.count_fields:
        dead = ibis.cases((cases["outcome"] == "dead", cases["case_count"]), else_=0)
        measures["deaths"] = dead.sum().cast("int64")
    return cases.group_by(**_keys(cases, agreement, dims)).aggregate(**measures)


def cells_from_counts(counts: ir.Table, agreement: Agreement, dims: Dimensions) -> ir.Table:
    """Counts re-aggregated to the release's blocks and strata (a stratum given as null,
    all ages or both sexes, becomes the unknown category when the agreement asks for it)."""
    if "age_years" not in counts.columns:
        counts = counts.mutate(age_years=ibis.null("float32"))
    measures = {"cases": counts["cases"].sum().cast("int64")}
    if "deaths" in agreement.count_fields:
        measures["deaths"] = counts["deaths"].fill_null(0).sum().cast("int64")
    return counts.group_by(**_keys(counts, agreement, dims)).aggregate(**measures)


def observed(dims: Dimensions, cells: pa.Table) -> Dimensions:
    """Only the categories that occur in ``cells``, in the canonical order.

    A category with no case anywhere adds only zeros to every block; leaving it out keeps
    the arrays (and the suppression) a third smaller for sex x age releases. Not for
    differential privacy, whose categories must not depend on the data, nor where zeros
    are suppressed (a category left out would read as published zeros).
    """
    if cells.num_rows == 0:
        return dims
    cats = []
    for name, full in zip(dims.names, dims.categories, strict=True):
        present = set(pc.unique(cells.column(name)).to_pylist())
        cats.append(tuple(c for c in full if c in present))
    return Dimensions(dims.names, tuple(cats))


@dataclass(frozen=True)
class Blocks:
    """Cells as dense arrays: ``measures[name]`` has shape (blocks, *dims.shape)."""

    area: pa.Array
    area_level: np.ndarray
    period_start: pa.Array
    disease: pa.Array
    dims: Dimensions
    measures: dict[str, np.ndarray]

    @property
    def count(self) -> int:
        return len(self.area)


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    enc = pc.dictionary_encode(column)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


def to_blocks(cells: pa.Table, dims: Dimensions, measures: Sequence[str]) -> Blocks:
    """Dense block arrays from the aggregated cells (one row per non-empty cell)."""
    if cells.num_rows == 0:
        return Blocks(
            area=pa.array([], pa.string()),
            area_level=np.zeros(0, dtype=np.int8),
            period_start=pa.array([], pa.date32()),
            disease=pa.array([], pa.string()),
            dims=dims,
            measures={m: np.zeros((0, *dims.shape), dtype=np.int64) for m in measures},
        )
    a_idx, a_dict = _codes(cells.column("area"))
    p_idx, p_dict = _codes(cells.column("period_start"))
    d_idx, d_dict = _codes(cells.column("disease"))
    key = (a_idx * len(p_dict) + p_idx) * len(d_dict) + d_idx
    unique, block = np.unique(key, return_inverse=True)
    flat = block.astype(np.int64)
    for name, cats in zip(dims.names, dims.categories, strict=True):
        s_idx, s_dict = _codes(cells.column(name))
        position = {c: i for i, c in enumerate(cats)}
        remap = np.array([position[v] for v in s_dict.to_pylist()], dtype=np.int64)
        flat = flat * len(cats) + remap[s_idx]
    size = len(unique) * int(np.prod(dims.shape, dtype=np.int64))
    arrays = {}
    for m in measures:
        weights = cells.column(m).to_numpy(zero_copy_only=False).astype(np.float64)
        dense = np.bincount(flat, weights=weights, minlength=size)
        arrays[m] = np.rint(dense).astype(np.int64).reshape((len(unique), *dims.shape))
    level = np.zeros(len(unique), dtype=np.int8)
    level[block] = cells.column("area_level").to_numpy(zero_copy_only=False)
    d_of = unique % len(d_dict)
    p_of = (unique // len(d_dict)) % len(p_dict)
    a_of = unique // (len(d_dict) * len(p_dict))
    return Blocks(
        area=pa.DictionaryArray.from_arrays(pa.array(a_of, pa.int32()), a_dict),
        area_level=level,
        period_start=pa.DictionaryArray.from_arrays(pa.array(p_of, pa.int32()), p_dict),
        disease=pa.DictionaryArray.from_arrays(pa.array(d_of, pa.int32()), d_dict),
        dims=dims,
        measures=arrays,
    )


def dense_blocks(
    blocks: Blocks,
    areas: Sequence[tuple[str, int]],
    starts: Sequence[date],
    diseases: Sequence[str],
) -> Blocks:
    """``blocks`` extended to every area x period x disease given (zero where absent).

    Differential privacy needs the released blocks fixed in advance: a block that appears
    only when it has cases would itself reveal that it has cases, noise or not.
    """
    index = {
        (a, p, d): i
        for i, (a, p, d) in enumerate(
            zip(
                blocks.area.to_pylist(),
                blocks.period_start.to_pylist(),
                blocks.disease.to_pylist(),
                strict=True,
            )
        )
    }
    levels = dict(zip(blocks.area.to_pylist(), blocks.area_level.tolist(), strict=True))
    levels.update(dict(areas))
    full = [(a, p, d) for a, _ in areas for p in starts for d in diseases]
    planned = set(full)
    # Data outside the planned grid (an area the registry does not list at this level)
    # is kept, not dropped: its presence is then visible, which the docs point out.
    full += [k for k in index if k not in planned]
    pos = np.array([index.get(k, -1) for k in full], dtype=np.int64)
    arrays = {}
    for m, arr in blocks.measures.items():
        out = np.zeros((len(full), *arr.shape[1:]), dtype=np.int64)
        found = pos >= 0
        out[found] = arr[pos[found]]
        arrays[m] = out
    return Blocks(
        area=pa.array([k[0] for k in full], pa.string()),
        area_level=np.array([levels[k[0]] for k in full], dtype=np.int8),
        period_start=pa.array([k[1] for k in full], pa.date32()),
        disease=pa.array([k[2] for k in full], pa.string()),
        dims=blocks.dims,
        measures=arrays,
    )


def period_columns(starts: pa.Array, agreement: Agreement) -> dict[str, pa.Array]:
    """Label, type, calendar and end of each release period, from its start date."""
    typ = _PERIOD_TYPE[agreement.time_resolution]
    if pa.types.is_dictionary(starts.type):
        starts = starts.dictionary_decode()
    distinct = pc.unique(starts).to_pylist()
    found = {d: period_containing(d, typ, agreement.calendar) for d in distinct}
    idx = pc.index_in(starts, pa.array(distinct, pa.date32()))
    labels = pa.array([found[d].label for d in distinct], pa.string())
    ends = pa.array([found[d].end for d in distinct], pa.date32())
    calendar = found[distinct[0]].calendar if distinct else "gregorian"
    n = len(starts)
    return {
        "period": labels.take(idx),
        "period_type": pa.array([typ] * n, pa.string()),
        "calendar": pa.array([calendar] * n, pa.string()),
        "period_end": ends.take(idx),
    }
