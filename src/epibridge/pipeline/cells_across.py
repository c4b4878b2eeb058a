"""Cells sent again by a later input of the same run (counts and reporting).

Within one input a repeated cell is found while harmonizing (``duplicates.
with_duplicate_cells``). Across inputs, the shell walks the inputs in the order given and
holds back, from each, the cells an earlier input already gave: the first one given
counts, as for repeated case ids. The records of a cell held back are quarantined as
``duplicate_cell`` naming the file and record it first came from (all records of the
cell, for long formats whose cells sum several records).
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from epibridge.backend import to_arrow
from epibridge.model.schema import QUARANTINE
from epibridge.pipeline.checks import text

_FIRST_FILE, _FIRST_RECORD = "_first_file", "_first_record"


@dataclass
class SeenCells:
    """The cells of the inputs walked so far, with where each first came from."""

    keys: tuple[str, ...]
    #: how a message spells the key (``duplicates.cell_key``)
    label: str
    seen: pa.Table | None = None

    def hold_back(
        self, cells: ir.Table, records: ir.Table | None = None
    ) -> tuple[ir.Table, pa.Table]:
        """``cells`` without the ones an earlier input gave, and the quarantine rows of
        the ones held back. ``records`` (long formats): the accepted values the cells were
        summed from, so that every record of a cell held back is quarantined."""
        keys = [k for k in self.keys if k in cells.columns]
        if self.seen is None:
            kept, quarantine = cells, QUARANTINE.empty_table()
        else:
            seen = ibis.memtable(self.seen)
            kept = cells.anti_join(seen, [cells[k].identical_to(seen[k]) for k in keys])
            held = cells.inner_join(seen, [cells[k].identical_to(seen[k]) for k in keys])
            held = held.select(*[held[k] for k in keys], held[_FIRST_FILE], held[_FIRST_RECORD])
            # the records of the cells held back (a long format's cell sums several)
            source = cells if records is None else records
            again = source.inner_join(held, [source[k].identical_to(held[k]) for k in keys])
            label = ibis.literal("|").join([again[k].cast("string").fill_null("") for k in keys])
            quarantine = to_arrow(
                again.select(
                    file=again["source_file"],
                    record=again["source_record"],
                    field=ibis.literal("place and period"),
                    value=label,
                    rule=ibis.literal("duplicate_cell"),
                    message=text(
                        "the cell ",
                        label,
                        f" ({self.label}) already came from ",
                        again[_FIRST_FILE],
                        " record ",
                        again[_FIRST_RECORD],
                        "; send each cell once (the first one given is kept)",
                    ),
                    suggestion=ibis.null().cast("string"),
                    other_rules=ibis.null().cast("string"),
                )
            ).cast(QUARANTINE)
        mine = to_arrow(
            kept.select(
                *keys,
                **{_FIRST_FILE: kept["source_file"], _FIRST_RECORD: kept["source_record"]},
            )
        )
        self.seen = mine if self.seen is None else pa.concat_tables([self.seen, mine])
        return kept, quarantine


__all__ = ["SeenCells"]
