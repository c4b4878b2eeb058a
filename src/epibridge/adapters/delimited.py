"""Delimited text (CSV, TSV, semicolon files) scanned by DuckDB without Python per row.

Options (profile ``[read]``): ``encoding`` (default utf-8; a BOM is handled), ``delimiter``
(default ","), ``quote`` (default '"'), ``header`` (default true), ``skip_rows``.

Every column is read as text: types are the pipeline's business, so a bad date is a
quarantined record, not a failed file. Records that cannot be split into the header's
number of fields are kept as :class:`Unreadable` records with the line they were on.
A file whose shape is wrong as a whole (wrong delimiter, wrong encoding, cut off, not
text at all) raises :class:`SourceError` instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir

from epibridge.adapters.base import RECORD, RawTable, Unreadable
from epibridge.adapters.sniff import require_nonempty, require_text, tail
from epibridge.model.errors import SourceError

#: Above this share of malformed lines the file's shape is wrong, not a few records.
_MAX_MALFORMED_SHARE = 0.05
_DUCKDB_ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "utf-16": "utf-16",
}

#: Every column trimmed exactly as ``pipeline.parse.trim`` (DuckDB's ``trim``, which
#: removes Unicode space separators). Pure-ASCII text can only start or end with the
#: ASCII space, so ``trim`` (which copies every value) runs only where a value starts or
#: ends with a space or holds non-ASCII text: half the cost on ten million rows.
_TRIMMED = (
    "CASE WHEN starts_with(COLUMNS(*), ' ') OR ends_with(COLUMNS(*), ' ') "
    "OR strlen(COLUMNS(*)) <> length(COLUMNS(*)) THEN trim(COLUMNS(*)) ELSE COLUMNS(*) END"
)


def _split_header(text: str, delimiter: str, quote: str) -> list[str]:
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    return next(csv.reader(io.StringIO(first), delimiter=delimiter, quotechar=quote), [])


def _check_header(
    path: Path, header: list[str], head: str, delimiter: str, quote: str, expected: Collection[str]
) -> None:
    missing = [c for c in expected if c not in header]
    if not missing:
        return
    for other in (",", ";", "\t", "|"):
        if other != delimiter and set(expected) <= set(_split_header(head, other, quote)):
            shown = "tab" if other == "\t" else f"'{other}'"
            raise SourceError(
                path,
                f"the fields are separated by {shown}, not by "
                f"'{delimiter}' as the profile declares",
                f'set [read] delimiter = "{other}" in the profile',
            )
    raise SourceError(
        path,
        f"the header lacks column(s) the profile needs: "
        f"{', '.join(missing)}; header has: {', '.join(header[:30])}",
        "check this is the right file for this profile, or fix the profile's column names",
    )


def _check_truncated(
    path: Path, header: list[str], delimiter: str, quote: str, encoding: str
) -> None:
    end = tail(path)
    if end.endswith(b"\n") or end.endswith(b"\r"):
        return
    last = end.rsplit(b"\n", 1)[-1].decode(encoding, errors="replace")
    if last.count(quote) % 2 == 1:
        raise SourceError(
            path,
            "the file ends inside a quoted field: it was cut off",
            "copy or download the file again",
        )
    fields = next(csv.reader(io.StringIO(last), delimiter=delimiter, quotechar=quote), [])
    if len(fields) < len(header):
        raise SourceError(
            path,
            f"the last line has {len(fields)} of {len(header)} fields "
            "and no line ending: the file was cut off",
            "copy or download the file again",
        )


def read_delimited(
    path: Path, options: Mapping[str, Any], con: Any, expected: Collection[str] = ()
) -> RawTable:
    """Scan ``path`` with DuckDB into a table of strings; see the module docstring."""
    require_nonempty(path)
    encoding = str(options.get("encoding", "utf-8"))
    delimiter = str(options.get("delimiter", ","))
    quote = str(options.get("quote", '"'))
    header_row = bool(options.get("header", True))
    skip = int(options.get("skip_rows", 0))
    head = require_text(path, encoding, "delimited text")
    if skip:
        head = "\n".join(head.splitlines()[skip:])
    header = (
        _split_header(head, delimiter, quote)
        if header_row
        else [str(c) for c in options.get("columns", [])]
    )
    if not header or header == [""]:
        raise SourceError(path, "the file has no header line", "export it with a header row")
    _check_header(path, header, head, delimiter, quote, expected)
    _check_truncated(path, header, delimiter, quote, encoding)
    duck_encoding = _DUCKDB_ENCODINGS.get(encoding.lower())
    if duck_encoding is None:
        raise SourceError(
            path,
            f"encoding '{encoding}' is not supported for large text files",
            "re-save the file as UTF-8, or use latin-1 / utf-16",
        )
    raw_con: duckdb.DuckDBPyConnection = con.con
    name = f"raw_{abs(hash((str(path), id(con)))):x}"
    columns = {c: "VARCHAR" for c in header}
    try:
        # Loaded once into a columnar temporary table in file order (insertion order is
        # preserved), so the row id is the record number and the look-ups that scan a
        # column or two do not parse the text again. Values are stored trimmed (see
        # _TRIMMED): every later use trims them, and trimming once here is cheaper than
        # trimming in every query that reads a column.
        raw_con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {_TRIMMED} FROM read_csv(?, "
            "header=?, delim=?, quote=?, escape=?, columns=?, encoding=?, skip=?, "
            f"store_rejects=true, rejects_table='{name}_rejects', rejects_scan='{name}_scans', "
            "auto_detect=false)",
            [str(path), header_row, delimiter, quote, quote, columns, duck_encoding, skip],
        )
        raw_con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name}_v AS SELECT *, "
            f"(rowid + 1)::BIGINT AS {RECORD} FROM {name}"
        )
    except duckdb.Error as exc:
        _check_line_endings(path)
        first = str(exc).splitlines()[0]
        raise SourceError(
            path,
            f"cannot be read as delimited text: {first}",
            "check [read] encoding and delimiter in the profile",
        ) from None
    _check_swallowed(path, raw_con, name)
    rejects = raw_con.execute(
        # One reject row per missing column: keep one per line.
        f"SELECT line, first(error_type), first(error_message), first(csv_line) "
        f"FROM {name}_rejects GROUP BY line ORDER BY line"
    ).fetchall()
    n_good = int(raw_con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
    if rejects and len(rejects) > _MAX_MALFORMED_SHARE * (n_good + len(rejects)) + 10:
        raise SourceError(
            path,
            f"{len(rejects)} of {n_good + len(rejects)} records do not "
            f"have the header's {len(header)} fields (first at line "
            f"{rejects[0][0]}: {rejects[0][2]})",
            "check the delimiter and quoting, or repair the export",
        )
    table: ir.Table = con.table(f"{name}_v")
    unreadable: list[Unreadable] = []
    if rejects:
        offset = 1 + skip if header_row else skip
        lines = [int(line) for line, *_ in rejects]
        blanks = _blank_lines_before(path, lines)
        records = [line - offset - blank for line, blank in zip(lines, blanks, strict=True)]
        table = _renumber(table, records)
        _check_numbering(path, table, records, lines)
        unreadable = [
            Unreadable(
                record=r,
                field="(whole record)",
                value=str(text)[:200],
                message=f"line {line}: {kind.lower()}: {msg}",
            )
            for r, (line, kind, msg, text) in zip(records, rejects, strict=True)
        ]
    return RawTable(path=path, table=table, unreadable=tuple(unreadable), trimmed=True)


def _check_line_endings(path: Path) -> None:
    """Name a file that mixes Windows (CRLF) and Unix (LF) line endings, which the reader
    cannot split into records (it only reports an invalid parser state). Runs only after
    the reader failed, so a good file is never read twice."""
    first: str | None = None
    with path.open("rb") as handle:
        for number, text in enumerate(handle, start=1):  # binary lines end at LF
            if not text.endswith(b"\n"):
                return
            kind = "CRLF" if text.endswith(b"\r\n") else "LF"
            if first is None:
                first = kind
            elif kind != first:
                raise SourceError(
                    path,
                    f"the file mixes Windows (CRLF) and Unix (LF) line endings (line 1 ends "
                    f"with {first}, line {number} with {kind}), so it cannot be split into "
                    "records",
                    "re-save the file with one kind of line ending (a text editor's 'line "
                    "endings' setting, or dos2unix)",
                )


def _check_swallowed(path: Path, raw_con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Refuse a file where a quote opened on one line is never closed.

    The reader then takes every following line, up to the end of the file or the next
    stray quote, as part of one field: quarantining that as one unreadable record would
    lose all the records it swallowed without a word.
    """
    found = raw_con.execute(
        f"SELECT line, csv_line FROM {name}_rejects "
        "WHERE error_message LIKE '%unterminated quote%' "
        "AND contains(trim(csv_line, chr(13) || chr(10)), chr(10)) ORDER BY line LIMIT 1"
    ).fetchall()
    if not found:
        return
    line, text = found[0]
    lines = str(text).strip("\r\n").splitlines()
    swallowed, start = len(lines) - 1, lines[0][:80]
    raise SourceError(
        path,
        f"line {line} opens a quote that is not closed on that line ({start!r}), so the "
        f"reader would take the next {swallowed:,} line(s) as part of one field",
        f"close or remove the quote on line {line} and ingest again",
    )


def _check_numbering(path: Path, table: ir.Table, records: list[int], lines: list[int]) -> None:
    """Refuse a file whose malformed records cannot be numbered unambiguously.

    Malformed records are reported by physical line; a line break inside a quoted field
    makes lines and records drift apart. Rather than give two records one number, say so.
    """
    clash = table.filter(table[RECORD].isin(records)).count().to_pyarrow().as_py()
    if clash or len(set(records)) != len(records) or min(records) < 1:
        shown = ", ".join(str(n) for n in lines[:10])
        raise SourceError(
            path,
            f"has records with the wrong number of fields (lines {shown}) "
            "and fields containing line breaks, so its records cannot be "
            "numbered reliably",
            "repair the listed lines and ingest again",
        )


def _blank_lines_before(path: Path, lines: list[int]) -> list[int]:
    """How many blank lines precede each of the (sorted) physical ``lines``.

    Blank lines are not records, but the engine reports malformed records by physical
    line; this converts one to the other. It reads the file once, and only runs when a
    file has malformed records.
    """
    counts: list[int] = []
    blank, wanted = 0, iter(lines)
    target = next(wanted, None)
    with path.open("rb") as handle:
        for number, text in enumerate(handle, start=1):
            while target is not None and number == target:
                counts.append(blank)
                target = next(wanted, None)
            if target is None:
                break
            if not text.rstrip(b"\r\n"):
                blank += 1
    counts += [blank] * (len(lines) - len(counts))
    return counts


def _renumber(table: ir.Table, rejected: list[int]) -> ir.Table:
    """Give the k-th good row its record number, counting the rejected records before it."""
    # Rejected record r_i (sorted, i from 0) shifts every good row from k = r_i - i onward
    # by one more; an as-of join finds, for each good row, how many shifts apply.
    ordered = sorted(rejected)
    # Consecutive rejected records give the same threshold: the last (largest) shift wins.
    shift_from = {r - i: i + 1 for i, r in enumerate(ordered)}
    steps = ibis.memtable({"_from": list(shift_from), "_shift": list(shift_from.values())})
    joined = table.asof_join(steps, on=table[RECORD] >= steps["_from"])
    shifted = joined.mutate(**{RECORD: joined[RECORD] + joined["_shift"].fill_null(0)})
    return shifted.drop("_from", "_shift")
