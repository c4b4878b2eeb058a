"""Spreadsheets (.xlsx, .xlsm, .xls, .ods) read with python-calamine.

Options (profile ``[read]``): ``sheet`` (name or 0-based index; default the first),
``header_row`` (1-based row holding the column names; default 1).

Cells become text the way a person reads them: whole numbers without ``.0``, dates as
ISO ``YYYY-MM-DD``, date-times as ISO with a ``T``. Record numbers are data rows below the
header (record 1 is the row right under it); fully empty rows are skipped but keep their
numbers, so a record number still points at the right spreadsheet row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook

from epibridge.adapters.base import RawTable, raw_from_arrow, strings_table
from epibridge.adapters.sniff import container, require_nonempty
from epibridge.model.errors import SourceError


def _text(cell: object) -> str | None:
    if cell is None or cell == "":
        return None
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime):
        return cell.isoformat() if cell.time() != dt.time(0) else cell.date().isoformat()
    if isinstance(cell, dt.date):
        return cell.isoformat()
    text = str(cell).strip()
    return text or None


def read_excel(
    path: Path, options: Mapping[str, Any], con: Any = None, expected: Collection[str] = ()
) -> RawTable:
    require_nonempty(path)
    what = container(path)
    if what is not None and what.startswith("a ZIP archive"):
        raise SourceError(
            path, f"declared as an Excel workbook but the file is {what}", "unzip it first"
        )
    if what is None or "PDF" in what or "gzip" in what:
        raise SourceError(
            path,
            f"declared as an Excel workbook but the file is {what or 'plain text'}",
            'set format = "delimited" in the profile if it is CSV text',
        )
    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own untyped errors
        raise SourceError(
            path,
            f"cannot be opened as a workbook: {exc}",
            "open it in a spreadsheet program and save it again as .xlsx",
        ) from None
    sheet_opt = options.get("sheet", 0)
    names = book.sheet_names
    if isinstance(sheet_opt, int):
        if not 0 <= sheet_opt < len(names):
            raise SourceError(
                path,
                f"has no sheet number {sheet_opt}; sheets: {names}",
                "set [read] sheet in the profile",
            )
        sheet_name = names[sheet_opt]
    elif sheet_opt in names:
        sheet_name = str(sheet_opt)
    else:
        raise SourceError(
            path,
            f"has no sheet named '{sheet_opt}'; sheets: {names}",
            "set [read] sheet in the profile",
        )
    rows = book.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
    header_row = int(options.get("header_row", 1))
    if len(rows) < header_row:
        raise SourceError(
            path,
            f"sheet '{sheet_name}' has no row {header_row} to read the header from",
            "set [read] header_row in the profile",
        )
    header = [_text(c) or f"column_{i + 1}" for i, c in enumerate(rows[header_row - 1])]
    missing = [c for c in expected if c not in header]
    if missing:
        raise SourceError(
            path,
            f"sheet '{sheet_name}' lacks column(s) the profile needs: "
            f"{', '.join(missing)}; header row {header_row} has: "
            f"{', '.join(header[:30])}",
            "check the sheet and header_row, or the profile's column names",
        )
    columns: dict[str, list[str | None]] = {name: [] for name in header}
    records: list[int] = []
    for number, row in enumerate(rows[header_row:], start=1):
        cells = [_text(c) for c in row]
        if not any(cells):
            continue
        records.append(number)
        for i, name in enumerate(header):
            columns[name].append(cells[i] if i < len(cells) else None)
    return raw_from_arrow(path, strings_table(columns, records))
