"""DHIS2 data value sets (aggregate data), in JSON and CSV.

Both readers return one row per data value, with these columns (all strings, ``null`` where
the source had no value, empty strings read as ``null``):

==========================  ======================================================  ============
column                      JSON (``dataValues[i]`` key, else data value set key)   CSV column
==========================  ======================================================  ============
``data_element``            ``dataElement``                                         1
``period``                  ``period``, else the set's ``period``                   2
``org_unit``                ``orgUnit``, else the set's ``orgUnit``                 3
``category_option_combo``   ``categoryOptionCombo``                                 4
``attribute_option_combo``  ``attributeOptionCombo``, else the set's                5
``value``                   ``value``                                               6
``stored_by``               ``storedBy``                                            7
``last_updated``            ``lastUpdated``                                         8
``comment``                 ``comment``                                             9
``followup``                ``followup`` (also ``followUp``)                        10
``deleted``                 ``deleted``                                             11
``data_set``                ``dataSet`` of the set                                  option
``complete_date``           ``completeDate`` of the set                             (null)
``_record``                 position in ``dataValues``, 1-based                     data row
==========================  ======================================================  ============

``deleted`` is present in exports made with ``includeDeleted=true`` (and as an eleventh CSV
column in recent DHIS2 versions); a row with ``deleted = "true"`` is a soft-deleted value.

Identifiers are passed through untouched, whatever the id scheme (UID, CODE, NAME): the
mapping profile says how to read them. Periods are not parsed here (``202401``,
``2024W3``, ``2024Q1`` stay strings). JSON numbers and booleans become their JSON spelling
(``12``, ``true``).

CSV follows the DHIS2 Web API documentation ("CSV data value format"): the columns are
positional, in the order above; a file has 6 to 11 columns. The header row is optional:
it is recognised when its first cell is ``dataelement`` (or ``de``), and its names are
then checked against the documented names for each position (``catoptcombo`` /
``categoryoptioncombo``, ``flwup`` / ``followup``, ``timestamp`` / ``lastupdated`` ...), so
a file whose columns are in another order is refused instead of being read wrongly.
Records are data rows, header excluded, blank lines skipped. DHIS2 CSV carries no data
set; pass ``options["data_set"]`` to fill ``data_set`` (like DHIS2's own ``dataSet``
import parameter). ``options["header"]`` (``True``/``False``) overrides header detection.

What stops the whole file (:class:`SourceError`): empty file, not UTF-8, invalid JSON
(with line and column), JSON that is not a data value set, a CSV header with the wrong
number of columns or unknown column names, a CSV that cannot be tokenised. What is
quarantined as :class:`Unreadable` (one record): a JSON data value that is not an object,
or whose fields are objects/lists; a CSV row with fewer than 6 or more fields than the
header.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from epibridge.adapters.base import RawTable, Unreadable, raw_from_arrow, strings_table
from epibridge.adapters.sniff import invalid_json, read_utf8
from epibridge.model.errors import SourceError

COLUMNS: tuple[str, ...] = (
    "data_element",
    "period",
    "org_unit",
    "category_option_combo",
    "attribute_option_combo",
    "value",
    "stored_by",
    "last_updated",
    "comment",
    "followup",
    "deleted",
    "data_set",
    "complete_date",
)

#: (output column, JSON keys tried in order) for the fields of one data value.
_JSON_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("data_element", ("dataElement",)),
    ("period", ("period",)),
    ("org_unit", ("orgUnit",)),
    ("category_option_combo", ("categoryOptionCombo",)),
    ("attribute_option_combo", ("attributeOptionCombo",)),
    ("value", ("value",)),
    ("stored_by", ("storedBy",)),
    ("last_updated", ("lastUpdated",)),
    ("comment", ("comment",)),
    ("followup", ("followup", "followUp")),
    ("deleted", ("deleted",)),
    ("data_set", ("dataSet",)),
    ("complete_date", ("completeDate",)),
)

#: Data value set keys that apply to every value that lacks them.
_SET_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("period", "period"),
    ("org_unit", "orgUnit"),
    ("attribute_option_combo", "attributeOptionCombo"),
    ("data_set", "dataSet"),
    ("complete_date", "completeDate"),
)

#: Accepted header names per CSV position (lower-cased, non-alphanumerics removed).
_CSV_HEADER_NAMES: tuple[frozenset[str], ...] = (
    frozenset({"dataelement", "de", "dataelementid", "dataelementuid"}),
    frozenset({"period", "pe"}),
    frozenset({"orgunit", "ou", "organisationunit", "organizationunit", "orgunitid"}),
    frozenset({"categoryoptioncombo", "catoptcombo", "coc", "co", "categoryoptioncomboid"}),
    frozenset({"attributeoptioncombo", "attroptcombo", "aoc", "cp", "attributeoptioncomboid"}),
    frozenset({"value"}),
    frozenset({"storedby", "strby"}),
    frozenset({"lastupdated", "lstupd", "timestamp", "created"}),
    frozenset({"comment", "cmt"}),
    frozenset({"followup", "flwup"}),
    frozenset({"deleted"}),
)
_CSV_CANONICAL = (
    "dataelement",
    "period",
    "orgunit",
    "categoryoptioncombo",
    "attributeoptioncombo",
    "value",
    "storedby",
    "lastupdated",
    "comment",
    "followup",
    "deleted",
)
_CSV_DOC_NAMES = ",".join(_CSV_CANONICAL[:-1]) + "[,deleted]"
_CSV_MIN_COLUMNS = 6
_CSV_MAX_COLUMNS = len(_CSV_HEADER_NAMES)
_CHUNK_ROWS = 50_000
_SHOW_CHARS = 200
_UTF8_HINT = "save it as UTF-8 (in Excel: 'CSV UTF-8'; or iconv -f latin1 -t utf-8)"


def read_dhis2_json(path: Path, options: Mapping[str, Any]) -> RawTable:
    """Read a DHIS2 data value set in JSON (``/api/dataValueSets.json``)."""
    path = Path(path)
    text = read_utf8(path, _UTF8_HINT)
    if not text.strip():
        raise SourceError(path, "the file is empty", "export the data value set again")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = "the file may be truncated or hand-edited; export it again from DHIS2"
        raise invalid_json(path, exc, hint) from None
    except RecursionError:
        raise SourceError(path, "not valid JSON: nested too deeply") from None
    if not isinstance(document, dict) or not isinstance(document.get("dataValues"), list):
        raise SourceError(
            path,
            "not a DHIS2 data value set: expected a JSON object with a 'dataValues' list",
            "export from /api/dataValueSets.json, or choose the adapter for this format",
        )
    defaults: dict[str, str | None] = {}
    for column, key in _SET_DEFAULTS:
        scalar = _scalar(document.get(key))
        defaults[column] = scalar if isinstance(scalar, str) or scalar is None else None

    columns: dict[str, list[str | None]] = {name: [] for name in COLUMNS}
    records: list[int] = []
    unreadable: list[Unreadable] = []
    for index, item in enumerate(document["dataValues"], start=1):
        where = f"dataValues[{index - 1}]"
        if not isinstance(item, dict):
            unreadable.append(
                Unreadable(
                    index,
                    where,
                    _show(item),
                    f"data value {index} is a JSON {_json_type(item)}, not an object",
                )
            )
            continue
        row: dict[str, str | None] = {}
        problem: Unreadable | None = None
        for column, keys in _JSON_FIELDS:
            raw = next((item[k] for k in keys if k in item), None)
            value = _scalar(raw)
            if isinstance(value, _Bad):
                problem = Unreadable(
                    index,
                    f"{where}.{keys[0]}",
                    _show(raw),
                    f"data value {index}: '{keys[0]}' is a JSON {value.kind}, "
                    "expected a string or number",
                )
                break
            row[column] = value if value is not None else defaults.get(column)
        if problem is not None:
            unreadable.append(problem)
            continue
        for name in COLUMNS:
            columns[name].append(row[name])
        records.append(index)
    return raw_from_arrow(path, strings_table(columns, records), tuple(unreadable))


def read_dhis2_csv(path: Path, options: Mapping[str, Any]) -> RawTable:
    """Read a DHIS2 data value set in CSV (``/api/dataValueSets.csv`` or an import file)."""
    path = Path(path)
    _check_not_utf16(path, _head_bytes(path))
    data_set = options.get("data_set")
    data_set = str(data_set) if data_set not in (None, "") else None
    header_option = options.get("header", "auto")

    tables: list[pa.Table] = []
    unreadable: list[Unreadable] = []
    columns = _empty_columns()
    records: list[int] = []
    width: int | None = None
    record = 0
    try:
        for line_no, fields in _csv_rows(path):
            if not fields:
                continue  # blank line
            if width is None:
                width = _check_header_width(path, fields)
                is_header = (
                    header_option if isinstance(header_option, bool) else _looks_like_header(fields)
                )
                if is_header:
                    _check_header_names(path, fields)
                    continue
            record += 1
            if len(fields) < _CSV_MIN_COLUMNS or len(fields) > width:
                unreadable.append(
                    Unreadable(
                        record,
                        f"line {line_no}",
                        _show(",".join(fields)),
                        f"row {record} has {len(fields)} fields, the file has {width} columns",
                    )
                )
                continue
            for position, name in enumerate(COLUMNS[:_CSV_MAX_COLUMNS]):
                value = fields[position] if position < len(fields) else None
                columns[name].append(value if value else None)
            columns["data_set"].append(data_set)
            columns["complete_date"].append(None)
            records.append(record)
            if len(records) >= _CHUNK_ROWS:
                tables.append(strings_table(columns, records))
                columns, records = _empty_columns(), []
    except UnicodeDecodeError as exc:
        raise SourceError(
            path,
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} after data row {record})",
            "save the file as UTF-8 (for example: iconv -f latin1 -t utf-8)",
        ) from None
    except csv.Error as exc:
        raise SourceError(
            path,
            f"cannot be read as CSV after data row {record}: {exc}",
            "check for an unclosed quote or a binary file",
        ) from None
    if width is None:
        raise SourceError(path, "the file is empty", "export the data value set again")
    tables.append(strings_table(columns, records))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return raw_from_arrow(path, table, tuple(unreadable))


# --- helpers ---------------------------------------------------------------------------


class _Bad:
    """Marks a JSON field that is an object or list where a scalar is expected."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


def _scalar(value: object) -> str | _Bad | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float):
        return json.dumps(value)
    return _Bad(_json_type(value))


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _show(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + "..."


def _head_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(4)
    except OSError as exc:
        raise SourceError(path, f"cannot be opened: {exc.strerror or exc}") from None


def _check_not_utf16(path: Path, head: bytes) -> None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(
            path,
            "the file is UTF-16 text, not UTF-8",
            _UTF8_HINT,
        )


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        for fields in reader:
            yield reader.line_num, fields


def _empty_columns() -> dict[str, list[str | None]]:
    return {name: [] for name in COLUMNS}


_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def _norm(cell: str) -> str:
    return _NOT_ALNUM.sub("", cell.strip().lower())


def _looks_like_header(fields: list[str]) -> bool:
    return _norm(fields[0]) in _CSV_HEADER_NAMES[0]


def _check_header_width(path: Path, fields: list[str]) -> int:
    width = len(fields)
    if _CSV_MIN_COLUMNS <= width <= _CSV_MAX_COLUMNS:
        return width
    hint = f"DHIS2 CSV has {_CSV_MIN_COLUMNS} to {_CSV_MAX_COLUMNS} columns: {_CSV_DOC_NAMES}"
    if width == 1 and any(sep in fields[0] for sep in ";\t|"):
        hint = "the file seems to use ';', tab or '|' as separator; DHIS2 CSV uses ','"
    raise SourceError(path, f"the first row has {width} column(s)", hint)


def _check_header_names(path: Path, fields: list[str]) -> None:
    for position, cell in enumerate(fields):
        if _norm(cell) not in _CSV_HEADER_NAMES[position]:
            expected = _CSV_CANONICAL[position]
            raise SourceError(
                path,
                f"header column {position + 1} is {cell!r}, expected {expected!r}",
                f"DHIS2 CSV columns are positional, in this order: {_CSV_DOC_NAMES}",
            )
