"""Repeated case ids and repeated counts cells, found by a group-by and joined back.

A window over all columns, or a group-by inside the main expression, would make the
engine carry every column of every record through a partition (decision 0005).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import ibis.selectors as s
import pyarrow as pa

from epibridge.adapters.base import RECORD
from epibridge.model.profile import Profile
from epibridge.pipeline.parse import (
    blank_to_null,
    source,
)


def repeated_ids(raw: ir.Table, profile: Profile) -> ir.Table:
    """Case ids that occur more than once in a prepared table, with their first record.

    The shell runs this on its own (it reads one column) and hands the few repeated ids
    back through :class:`Lookups`: a window over all columns, or a group-by inside the
    main expression, would make the engine keep every column of every record around.
    """
    fm = profile.fields["case_id"]
    ids = raw.select(
        case_id=blank_to_null(source(raw, str(fm.column)), fm.missing), rec=raw[RECORD]
    )
    ids = ids.filter(ids["case_id"].notnull())
    repeated = ids.group_by("case_id").aggregate(_dup_first=ids["rec"].min(), _dup_n=ids.count())
    return repeated.filter(repeated["_dup_n"] > 1).select("case_id", "_dup_first")


def with_repeated_ids(t: ir.Table, repeated: pa.Table) -> ir.Table:
    """Attach the first record of every case id that occurs more than once."""
    table = ibis.memtable(repeated).rename(_dup_id="case_id")
    return t.left_join(table, t["case_id"] == table["_dup_id"]).drop("_dup_id")


CELL_KEYS = ("area", "disease", "period_start", "period_end", "age_band", "sex")


def with_duplicate_cells(t: ir.Table) -> ir.Table:
    """Attach the first record of every counts cell that occurs more than once."""
    parts = [
        t[c].cast("string").fill_null("") if c in t.columns else ibis.literal("") for c in CELL_KEYS
    ]
    keyed = t.mutate(_cell=ibis.literal("|").join(parts))
    cells = keyed.select("_cell", RECORD)
    repeated = cells.group_by("_cell").aggregate(
        _cell_first=cells[RECORD].min(), _cell_n=cells.count()
    )
    repeated = repeated.filter(repeated["_cell_n"] > 1).drop("_cell_n")
    return keyed.left_join(repeated, "_cell").drop(s.endswith("_right"))
