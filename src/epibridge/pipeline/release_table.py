"""Protected block arrays back to a release table (``model.schema.RELEASE_COUNTS``).

Each block is released as its cells and all its margins (the totals over sex, over age
and over both), so the recipient has exact totals wherever they are safe. Entries that
are zero and not suppressed are left out (a released block's missing cells are zeros);
the block's grand total is always listed, so every released block has a row.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from epibridge.model.agreement import Agreement, Refusal
from epibridge.model.schema import RELEASE_COUNTS
from epibridge.pipeline.noise import noisy_counts
from epibridge.pipeline.release_counts import Blocks, period_columns
from epibridge.pipeline.suppress import suppress


def _sums(cells: np.ndarray) -> np.ndarray:
    """Cells with their margins appended along each strata axis (any sign: noisy cells)."""
    for axis in range(1, cells.ndim):
        cells = np.concatenate([cells, cells.sum(axis=axis, keepdims=True)], axis=axis)
    return cells


def _grand_totals(shape: tuple[int, ...]) -> np.ndarray:
    """Mask of each block's grand total: the last entry of the block in C order."""
    mask = np.zeros(shape, dtype=bool)
    if mask.size:
        mask.reshape(shape[0], -1)[:, -1] = True
    return mask


def _dictionary(indices: np.ndarray, labels: pa.Array, mask: np.ndarray | None = None) -> pa.Array:
    """Text column as dictionary indices: the release repeats a few labels millions of times."""
    return pa.DictionaryArray.from_arrays(
        pa.array(indices.astype(np.int32), mask=mask), labels.cast(pa.string())
    )


def _constant(value: str, n: int) -> pa.Array:
    return _dictionary(np.zeros(n, dtype=np.int32), pa.array([value]))


def _encoded(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    if pa.types.is_dictionary(array.type):
        return array.indices.to_numpy(zero_copy_only=False), array.dictionary
    enc = pc.dictionary_encode(array)
    return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary


def _entries(keep: np.ndarray, blocks: Blocks, agreement: Agreement) -> dict[str, Any]:
    """Columns for the entries of the extended arrays where ``keep`` holds.

    Block-level values (place, period, disease) are computed once per block and taken by
    block index, as dictionary-encoded columns.
    """
    idx = np.nonzero(keep)
    b = idx[0]
    n = len(b)
    area_i, area_labels = _encoded(blocks.area)
    disease_i, disease_labels = _encoded(blocks.disease)
    start_i, starts = _encoded(blocks.period_start)
    periods = period_columns(starts, agreement)
    cols: dict[str, Any] = {
        "country": _constant(agreement.sender, n),
        "area": _dictionary(area_i[b], area_labels),
        "area_level": pa.array(blocks.area_level[b], pa.int8()),
        "disease": _dictionary(disease_i[b], disease_labels),
        "period": _dictionary(start_i[b], periods["period"]),
        "period_type": _constant(periods["period_type"][0].as_py(), n) if n else pa.array([]),
        "calendar": _constant(periods["calendar"][0].as_py(), n) if n else pa.array([]),
        "period_start": starts.take(pa.array(start_i[b])),
        "period_end": periods["period_end"].take(pa.array(start_i[b])),
    }
    for name in ("sex", "age_band"):
        if name in blocks.dims.names:
            pos = blocks.dims.names.index(name)
            cats = blocks.dims.categories[pos]
            where = idx[1 + pos]
            total = where == len(cats)
            cols[name] = _dictionary(np.where(total, 0, where), pa.array(cats), mask=total)
        else:
            cols[name] = pa.nulls(n, pa.string())
    return cols


def _table(cols: dict[str, Any], n: int) -> pa.Table:
    """The release table; text columns stay dictionary-encoded (same values, less memory)."""
    fields, arrays = [], []
    for f in RELEASE_COUNTS:
        array = cols.get(f.name)
        if array is None:
            array = pa.nulls(n, f.type)
        if pa.types.is_dictionary(array.type) and array.type.value_type == f.type:
            fields.append(f.with_type(array.type))
        else:
            array = array.cast(f.type)
            fields.append(f)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=RELEASE_COUNTS.metadata))


def suppressed_release(blocks: Blocks, agreement: Agreement) -> tuple[pa.Table, dict[str, Any]]:
    """Small-cell suppression with complementary suppression, measure by measure."""
    results = {
        m: suppress(arr, agreement.k, agreement.show_zeros) for m, arr in blocks.measures.items()
    }
    cases = results["cases"]
    grand = _grand_totals(cases.values.shape)
    keep = (cases.values != 0) | cases.suppressed | grand
    if "deaths" in results:
        keep |= (results["deaths"].values != 0) | results["deaths"].suppressed
    cols = _entries(keep, blocks, agreement)
    n = int(keep.sum())
    info: dict[str, Any] = {
        "k": agreement.k,
        "show_zeros": agreement.show_zeros,
        "method": "threshold rule, hypercube complementary suppression "
        "(docs/disclosure-control.md)",
        "entries_released": n,
        "primary": 0,
        "secondary": 0,
    }
    for m, res in results.items():
        flags = res.suppressed[keep]
        cols[m] = pa.array(np.where(flags, 0, res.values[keep]), pa.int64(), mask=flags)
        cols[f"{m}_suppressed"] = pa.array(flags)
        info["primary"] += int(res.primary.sum())
        info["secondary"] += int(res.secondary.sum())
        info[m] = {"primary": int(res.primary.sum()), "secondary": int(res.secondary.sum())}
    return _table(cols, n), info


def budget_period_of(agreement: Agreement, blocks: Blocks) -> str:
    """The one budget period (year, quarter or month) the release's periods fall in."""
    assert agreement.privacy is not None
    unit = agreement.privacy.budget_period

    def label(d: date) -> str:
        if unit == "year":
            return f"{d.year}"
        if unit == "quarter":
            return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
        return f"{d.year}-{d.month:02d}"

    # A week counts in the year (quarter, month) of its Thursday, like its ISO label.
    shift = timedelta(days=3) if agreement.time_resolution == "week" else timedelta(0)
    found = {label(d + shift) for d in blocks.period_start.to_pylist()}
    if len(found) > 1:
        raise Refusal(
            f"a release under differential privacy must lie within one budget period "
            f"({unit}); these data span {', '.join(sorted(found))}",
            "release one budget period at a time with --from and --to",
        )
    return found.pop() if found else "none"


def noised_release(blocks: Blocks, agreement: Agreement) -> tuple[pa.Table, dict[str, Any]]:
    """Discrete-Laplace noise on every cell (OpenDP); margins are sums of noisy cells.

    One case adds one to one cell of each measure, so the L1 sensitivity of the released
    vector is the number of measures (cases, and deaths when released).
    """
    assert agreement.privacy is not None
    sensitivity = len(blocks.measures)
    measures = list(blocks.measures)
    flat = np.concatenate([blocks.measures[m].ravel() for m in measures])
    noised = noisy_counts(flat, agreement.privacy.epsilon, sensitivity=sensitivity)
    parts = np.split(noised.values, len(measures))
    extended = {
        m: _sums(p.reshape(blocks.measures[m].shape)) for m, p in zip(measures, parts, strict=True)
    }
    cases = extended["cases"]
    grand = _grand_totals(cases.shape)
    keep = (cases != 0) | grand
    if "deaths" in extended:
        keep |= extended["deaths"] != 0
    cols = _entries(keep, blocks, agreement)
    n = int(keep.sum())
    for m, arr in extended.items():
        cols[m] = pa.array(arr[keep], pa.int64())
        cols[f"{m}_suppressed"] = pa.array(np.zeros(n, dtype=bool))
    info = {
        "mechanism": noised.mechanism,
        "epsilon": noised.epsilon,
        "scale": noised.scale,
        "sensitivity": sensitivity,
        "cells_noised": int(flat.size),
        "budget": agreement.privacy.budget,
        "budget_period": agreement.privacy.budget_period,
    }
    return _table(cols, n), info
