"""One contract, every adapter (in the manner of scikit-learn's estimator checks).

Each registered format reads a real sample and must return: all source columns as text,
a ``_record`` column of distinct positive integers, unreadable records numbered apart
from the rows, and a SourceError naming the file for an empty file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ibis
import pytest

from epibridge.adapters.base import RECORD
from epibridge.adapters.registry import ADAPTERS
from epibridge.model.errors import SourceError

DATA = Path(__file__).resolve().parent.parent / "data"
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "epibridge" / "examples"


def _xlsx(tmp: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "date"])
    sheet.append([1, "2025-01-01"])
    sheet.append([None, None])
    sheet.append([3, "2025-01-03"])
    path = tmp / "sample.xlsx"
    book.save(path)
    return path


def _csv(tmp: Path) -> Path:
    path = tmp / "sample.csv"
    path.write_text("id,date\n1,2025-01-01\n2\n3,2025-01-03\n", encoding="utf-8")
    return path


SAMPLES: dict[str, Callable[[Path], Path]] = {
    "delimited": _csv,
    "excel": _xlsx,
    "dhis2-json": lambda tmp: EXAMPLES / "dhis2_datavalueset.json",
    "dhis2-csv": lambda tmp: DATA / "dhis2" / "datavalueset_export_docs.csv",
    "fhir-measurereport": lambda tmp: EXAMPLES / "fhir_madx_measurereport.json",
    "fhir-bundle": lambda tmp: DATA / "fhir" / "dengue-case-bundle.json",
}


def test_every_format_has_a_sample() -> None:
    assert set(SAMPLES) == set(ADAPTERS)


@pytest.mark.parametrize("fmt", sorted(ADAPTERS))
def test_adapter_contract(fmt: str, tmp_path: Path) -> None:
    path = SAMPLES[fmt](tmp_path)
    raw = ADAPTERS[fmt](path, {}, ibis.duckdb.connect(), ())
    table = raw.table.to_pyarrow()
    assert table.num_rows > 0
    assert str(table.schema.field(RECORD).type) == "int64"
    for field in table.schema:
        if field.name != RECORD:
            assert str(field.type) == "string", (fmt, field.name, field.type)
    records = table.column(RECORD).to_pylist()
    unreadable = [u.record for u in raw.unreadable]
    assert len(set(records)) == len(records)
    assert min(records) >= 1
    assert not set(records) & set(unreadable)
    for u in raw.unreadable:
        assert u.message


@pytest.mark.parametrize("fmt", sorted(ADAPTERS))
def test_empty_file_is_a_source_error(fmt: str, tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with pytest.raises(SourceError) as caught:
        ADAPTERS[fmt](path, {}, ibis.duckdb.connect(), ())
    assert str(path) in str(caught.value)
