"""The contract every adapter meets.

An adapter reads one input file and returns a :class:`RawTable`: a table whose columns are
all strings (``null`` where the source had no value) plus ``_record``, the 1-based number
of the source record the row came from. Adapters do not validate or map codes: that is
the job of ``pipeline.validate`` and ``pipeline.harmonize``, driven by the mapping
profile. Adapters raise :class:`~epibridge.model.errors.SourceError` when the whole file
cannot be read, and never for one bad row.

Record numbers are what a data manager needs to find the row again: for delimited text
the data row (header excluded, so record 1 is the first line after the header); for a
spreadsheet the data row below the header; for JSON the position in the list of values;
for FHIR the position of the resource or stratum, as each adapter documents.

Small formats (JSON, FHIR, spreadsheets) are parsed in Python into an Arrow table with
:func:`strings_table`; delimited text is scanned by DuckDB directly so that a 10-million
row file is never held in Python objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import ibis
import pyarrow as pa

RECORD = "_record"


@dataclass(frozen=True)
class Unreadable:
    """A record the adapter could not split into fields (broken JSON value, invalid FHIR)."""

    record: int
    field: str
    value: str
    message: str


@dataclass(frozen=True)
class RawTable:
    """What an adapter hands to the pipeline."""

    path: Path
    table: ibis.Table
    #: Records that never made it into ``table``; each is quarantined with its message.
    unreadable: tuple[Unreadable, ...] = field(default_factory=tuple)
    #: The text columns are stored with surrounding spaces removed (exactly as the
    #: pipeline's trim would remove them), so ``harmonize.prepare`` does not trim again.
    trimmed: bool = False


class Adapter(Protocol):
    def __call__(self, path: Path, options: Mapping[str, Any]) -> RawTable: ...


def strings_table(columns: Mapping[str, list[str | None]], records: list[int]) -> pa.Table:
    """Build a RawTable-shaped Arrow table (all strings plus ``_record``) from Python lists."""
    arrays = {name: pa.array(values, type=pa.string()) for name, values in columns.items()}
    arrays[RECORD] = pa.array(records, type=pa.int64())
    return pa.table(arrays)


def raw_from_arrow(
    path: Path, table: pa.Table, unreadable: tuple[Unreadable, ...] = ()
) -> RawTable:
    """Wrap an Arrow table built by :func:`strings_table` as a RawTable."""
    return RawTable(path=path, table=ibis.memtable(table), unreadable=unreadable)
