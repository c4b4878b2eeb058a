"""Repeated case ids and repeated cells (counts, reporting, denominators), found by a
group-by and joined back.

A window over all columns, or a group-by inside the main expression, would make the
engine carry every column of every record through a partition (decision 0005).
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import ibis.selectors as s
import numpy as np
import pyarrow as pa

from epibridge.adapters.base import RECORD
from epibridge.model.profile import Profile
from epibridge.pipeline.fields import MEASURE
from epibridge.pipeline.parse import (
    blank_to_null,
    source,
)

#: Order key of a record across the inputs of one run: file position, then record.
_FILE_STRIDE = 10**12


def _ids(tables: Sequence[tuple[str, ir.Table]], profile: Profile) -> ir.Table:
    """Every given case id with its order key (file position, then record)."""
    fm = profile.fields["case_id"]
    parts = []
    for rank, (_name, raw) in enumerate(tables):
        ids = raw.select(
            case_id=blank_to_null(source(raw, str(fm.column)), fm.missing),
            order=raw[RECORD] + rank * _FILE_STRIDE,
        )
        parts.append(ids.filter(ids["case_id"].notnull()))
    return parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)


def id_hashes(tables: Sequence[tuple[str, ir.Table]], profile: Profile) -> ir.Table:
    """The 64-bit hash of every given case id (column ``_h``), for :func:`clashing`."""
    ids = _ids(tables, profile)
    return ids.select(_h=ids["case_id"].hash())


def clashing(hashes: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The hash values that occur more than once.

    Grouping ten million distinct case ids in the engine is the slow part of finding the
    repeated ones (a hash table of every id, 3-4 CPU-s and most of the memory limit);
    sorting their hashes takes a fraction of that. Only records whose hash clashes can
    have a repeated id (a collision of different ids merely adds a candidate).
    """
    values = np.sort(np.asarray(hashes.to_numpy(), dtype=np.int64))
    same = values[1:][values[1:] == values[:-1]]
    return pa.array(np.unique(same), pa.int64())


def repeated_ids(
    tables: Sequence[tuple[str, ir.Table]], profile: Profile, clashes: pa.Array | None = None
) -> ir.Table:
    """Case ids that occur more than once across the inputs of a run, with their first
    occurrence (file and record).

    ``tables`` are (file name, prepared table) in input order. The shell runs this on its
    own (it reads one column) and hands the few repeated ids back through ``Lookups``: a
    window over all columns, or a group-by inside the main expression, would make the
    engine keep every column of every record around. ``clashes`` (from :func:`clashing`
    over :func:`id_hashes`), when given, limits the exact group-by to the records whose
    id hash occurs more than once.
    """
    ids = _ids(tables, profile)
    if clashes is not None:
        known = ibis.memtable(pa.table({"_h": pa.array(clashes, pa.int64())}))
        ids = ids.filter(ids["case_id"].hash().isin(known["_h"]))
    repeated = ids.group_by("case_id").aggregate(first=ids["order"].min(), n=ids.count())
    repeated = repeated.filter(repeated["n"] > 1)
    rank = repeated["first"] // _FILE_STRIDE
    file_name = ibis.cases(*[(rank == i, name) for i, (name, _raw) in enumerate(tables)])
    return repeated.select(
        "case_id",
        _dup_file=file_name.cast("string"),
        _dup_first=(repeated["first"] % _FILE_STRIDE).cast("int64"),
    )


def with_repeated_ids(t: ir.Table, repeated: pa.Table, source_file: str) -> ir.Table:
    """Mark records whose case id already appeared earlier in the run (this or an earlier
    input), with where it first appeared."""
    table = ibis.memtable(repeated).rename(_dup_id="case_id")
    joined = t.left_join(table, t["case_id"] == table["_dup_id"]).drop("_dup_id")
    itself = (joined["_dup_file"] == source_file) & (joined["_dup_first"] == joined[RECORD])
    return joined.mutate(_dup_seen=(joined["_dup_first"].notnull() & ~itself).fill_null(False))


CELL_KEYS = ("area", "disease", "period_start", "period_end", "age_band", "sex")

#: What makes a row unique, per dataset (columns of the harmonized layers), and how the
#: duplicate_cell message spells the key. Reporting keys on the measure too, so that a
#: long format (one measure per row) repeats a cell only when it repeats a measure; a wide
#: reporting table has no measure column and keys on area, disease and period alone.
CELLS: dict[str, tuple[tuple[str, ...], str]] = {
    "counts": (CELL_KEYS, "area|disease|start|end|age|sex"),
    "reporting": (
        ("area", "disease", "period_start", "period_end", MEASURE),
        "area|disease|start|end|measure",
    ),
    "denominators": (("area", "period", "age_band", "sex"), "area|year|age|sex"),
}


def cell_key(profile: Profile) -> tuple[tuple[str, ...], str]:
    """The columns that make one cell of the profile's dataset, and their spelling in the
    duplicate_cell message (a wide reporting table has no measure column)."""
    keys, label = CELLS[profile.dataset]
    if profile.measures is None and MEASURE in keys:
        return tuple(k for k in keys if k != MEASURE), label.replace("|measure", "")
    return keys, label


def with_duplicate_cells(t: ir.Table, keys: Sequence[str] = CELL_KEYS) -> ir.Table:
    """Attach the first record of every cell (``keys``) that occurs more than once."""
    parts = [
        t[c].cast("string").fill_null("") if c in t.columns else ibis.literal("") for c in keys
    ]
    keyed = t.mutate(_cell=ibis.literal("|").join(parts))
    cells = keyed.select("_cell", RECORD)
    repeated = cells.group_by("_cell").aggregate(
        _cell_first=cells[RECORD].min(), _cell_n=cells.count()
    )
    repeated = repeated.filter(repeated["_cell_n"] > 1).drop("_cell_n")
    return keyed.left_join(repeated, "_cell").drop(s.endswith("_right"))
