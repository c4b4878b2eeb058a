"""Delimited and spreadsheet adapters: malformed input never escapes as a traceback.

Hypothesis writes files with random fields (quotes, delimiters, line breaks, stray bytes,
short and long rows). Each one either reads, with every record accounted for as a row
or an unreadable record, or fails as a whole with a SourceError naming the file.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import ibis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.utils.exceptions import IllegalCharacterError

from epibridge.adapters.base import RECORD, RawTable
from epibridge.adapters.delimited import read_delimited
from epibridge.adapters.excel import read_excel
from epibridge.model.errors import SourceError

HEADER = ["id", "date", "place"]


def _read_or_refuse(reader: Callable[..., RawTable], path: Path, con: object) -> RawTable | None:
    """Either outcome is fine: rows, or a SourceError naming the file (None then)."""
    try:
        return reader(path, {}, con, HEADER)
    except SourceError as exc:
        assert str(path) in str(exc)
        return None


field = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
row = st.lists(field, min_size=0, max_size=5)


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, max_size=25))
def test_delimited_accounts_for_every_record(rows: list[list[str]]) -> None:
    text = _csv_text(rows)
    con = ibis.duckdb.connect()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.csv"
        path.write_text(text, encoding="utf-8")
        raw = _read_or_refuse(read_delimited, path, con)
        if raw is None:
            return
        table = raw.table.to_pyarrow()
        records = sorted(table.column(RECORD).to_pylist() + [u.record for u in raw.unreadable])
        assert len(set(records)) == len(records)
        if not any("\r" in f or "\n" in f for r in rows for f in r):
            # Records are numbered 1..n with no gaps (a line break inside a quoted field
            # shifts the numbers of malformed records after it: docs/validation.md).
            assert records == list(range(1, len(records) + 1))
        # Blank lines (empty rows) are not records; every other row is one.
        physical = sum(1 for r in rows if r)
        assert len(records) == physical
        for name in HEADER:
            assert str(table.schema.field(name).type) == "string"


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=1, max_size=300))
def test_delimited_random_bytes_never_traceback(data: bytes) -> None:
    con = ibis.duckdb.connect()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.csv"
        path.write_bytes(b"id,date,place\n" + data)
        raw = _read_or_refuse(read_delimited, path, con)
        if raw is None:
            return
        table = raw.table.to_pyarrow()
        records = sorted(table.column(RECORD).to_pylist() + [u.record for u in raw.unreadable])
        assert records == list(range(1, len(records) + 1))


def test_short_and_long_rows_are_unreadable_records(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    lines = ["id,date,place"] + [f"{i},2025-01-01,Takeo" for i in range(1, 60)]
    lines[10] = "10,2025-01-01"  # record 10: a field short
    lines[20] = "20,2025-01-01,Takeo,extra"  # record 20: a field too many
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = read_delimited(path, {}, ibis.duckdb.connect(), HEADER)
    assert sorted(u.record for u in raw.unreadable) == [10, 20]
    table = raw.table.to_pyarrow().to_pylist()
    by_record = {r[RECORD]: r["id"] for r in table}
    # Good records keep their own numbers around the broken ones.
    assert by_record[9] == "9"
    assert by_record[11] == "11"
    assert by_record[21] == "21"
    assert len(table) == 57


def test_a_quote_never_closed_refuses_the_file_instead_of_swallowing_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.csv"
    lines = ["id,date,place"] + [f"{i},2025-01-01,Takeo" for i in range(1, 300)]
    lines[3] = '3,2025-01-01,"Takeo'  # record 3, line 4: the quote runs to the end
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(SourceError) as refused:
        read_delimited(path, {}, ibis.duckdb.connect(), HEADER)
    message = str(refused.value)
    assert str(path) in message and "line 4 opens a quote" in message
    assert "next 296 line(s)" in message


@pytest.mark.parametrize(("usual", "odd"), [(b"\r\n", b"\n"), (b"\n", b"\r\n")])
def test_mixed_line_endings_are_named(tmp_path: Path, usual: bytes, odd: bytes) -> None:
    path = tmp_path / "in.csv"
    lines = [b"id,date,place"] + [f"{i},2025-01-01,Takeo".encode() for i in range(1, 9)]
    path.write_bytes(b"".join(line + (odd if i == 4 else usual) for i, line in enumerate(lines)))
    with pytest.raises(SourceError, match=r"mixes Windows \(CRLF\) and Unix \(LF\) line endings"):
        read_delimited(path, {}, ibis.duckdb.connect(), HEADER)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 40),
    at=st.integers(1, 39),
    bad=st.sampled_from(['"x', 'x"y', '"x"y', '""', '"', 'x"']),
)
def test_a_stray_quote_never_loses_records(n: int, at: int, bad: str) -> None:
    """Wherever a stray quote lands, either every line is a record (read or quarantined)
    or the file is refused: no record vanishes inside another."""
    lines = ["id,date,place"] + [f"{i},2025-01-01,Takeo" for i in range(1, n + 1)]
    at = min(at, n)
    lines[at] = f"{at},2025-01-01,{bad}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        raw = _read_or_refuse(read_delimited, path, ibis.duckdb.connect())
        if raw is None:
            return
        records = raw.table.to_pyarrow().column(RECORD).to_pylist()
        assert sorted(records + [u.record for u in raw.unreadable]) == list(range(1, n + 1))


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(
        st.lists(
            st.one_of(
                st.none(),
                st.integers(-5, 10**6),
                field,
                st.floats(allow_nan=False, allow_infinity=False),
                st.dates(),
            ),
            max_size=4,
        ),
        max_size=15,
    )
)
def test_excel_accounts_for_every_non_empty_row(rows: list[list[object]]) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    try:
        for values in rows:
            sheet.append(values)
    except IllegalCharacterError:
        return  # openpyxl cannot write control characters: not an input to test
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.xlsx"
        book.save(path)
        raw = _read_or_refuse(read_excel, path, None)
        if raw is None:
            return
        table = raw.table.to_pyarrow()
        non_empty = [
            i + 1 for i, values in enumerate(rows) if any(v not in (None, "") for v in values)
        ]
        assert table.column(RECORD).to_pylist() == non_empty[: table.num_rows]


def test_excel_rejects_text_and_names_sheets(tmp_path: Path) -> None:
    text = tmp_path / "x.xlsx"
    text.write_text("id,date\n1,2\n")
    with pytest.raises(SourceError, match="plain text"):
        read_excel(text, {}, None, HEADER)
    book = Workbook()
    book.save(tmp_path / "b.xlsx")
    with pytest.raises(SourceError, match="no sheet named 'Data'"):
        read_excel(tmp_path / "b.xlsx", {"sheet": "Data"}, None, HEADER)
