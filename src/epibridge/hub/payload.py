"""What the parts of a verified submission must be before the hub integrates them.

A signature proves who sent the bytes, not that they are usable. Before a submission is
stored, its decrypted parts are checked: only the parts a release is made of
(``counts.parquet``, ``cases.parquet``, ``reporting.parquet``, ``denominators.parquet``,
``receipt.json``); each Parquet file readable and with the columns the release format
defines (``model/schema.py``: ``RELEASE_COUNTS``, ``RELEASE_REPORTING``,
``RELEASE_DENOMINATORS``; for line lists, the structure every release keeps); the policy
receipt a JSON object naming the same agreement as the manifest. A submission that fails
is refused whole (``bad_payload``): nothing in it could be used, and the node must know
at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from epibridge.model.errors import ReasonedError
from epibridge.model.schema import RELEASE_COUNTS, RELEASE_DENOMINATORS, RELEASE_REPORTING

COUNTS = "counts.parquet"
CASES = "cases.parquet"
REPORTING = "reporting.parquet"
DENOMINATORS = "denominators.parquet"
RECEIPT = "receipt.json"
#: The data parts a release may hold, with the format of the tabular ones.
_FORMATS = {
    COUNTS: RELEASE_COUNTS,
    REPORTING: RELEASE_REPORTING,
    DENOMINATORS: RELEASE_DENOMINATORS,
}
DATA_PARTS = (COUNTS, CASES, REPORTING, DENOMINATORS)
#: The columns every released line list keeps (pipeline/release_cases.py).
CASE_STRUCTURE = ("country", "area", "disease", "period", "case_count")


class PayloadError(ReasonedError):
    """A part of a submission the hub cannot use (reason ``bad_payload``)."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_payload", message)


@dataclass(frozen=True)
class Payload:
    """The checked parts: Parquet tables by dataset, and the policy receipt."""

    counts: Path | None
    cases: Path | None
    receipt: dict[str, Any]
    reporting: Path | None = None
    denominators: Path | None = None


def _schema(path: Path, name: str) -> pa.Schema:
    try:
        schema: pa.Schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PayloadError(f"part {name} is not a readable Parquet file ({exc})") from None
    return schema


def _compatible(found: pa.DataType, wanted: pa.DataType) -> bool:
    if pa.types.is_dictionary(found):
        found = found.value_type
    if found.equals(wanted):
        return True
    text = pa.types.is_string(found) or pa.types.is_large_string(found)
    return bool(text and pa.types.is_string(wanted))


def _check_release(path: Path, part: str) -> None:
    """A tabular part has every column of its release format, of its type, filled where
    the format requires a value."""
    wanted = _FORMATS[part]
    schema = _schema(path, part)
    for field in wanted:
        if field.name not in schema.names:
            raise PayloadError(f"part {part} has no column {field.name!r}")
        found = schema.field(field.name).type
        if not _compatible(found, field.type):
            raise PayloadError(
                f"part {part}: column {field.name!r} is {found}, the release format says "
                f"{field.type}"
            )
    required = [f.name for f in wanted if not f.nullable]
    table = pq.read_table(path, columns=required)
    for name in required:
        nulls = table.column(name).null_count
        if nulls:
            raise PayloadError(f"part {part}: column {name!r} is empty in {nulls} rows")


def _check_cases(path: Path) -> None:
    schema = _schema(path, CASES)
    missing = [c for c in CASE_STRUCTURE if c not in schema.names]
    if missing:
        raise PayloadError(f"part {CASES} lacks the columns {', '.join(missing)}")


def check_payload(parts: Mapping[str, Path], manifest: Mapping[str, Any]) -> Payload:
    """The parts, checked; ``PayloadError`` names the first problem."""
    unknown = sorted(set(parts) - {*DATA_PARTS, RECEIPT})
    if unknown:
        raise PayloadError(
            f"parts {', '.join(unknown)} are not part of a release (expected "
            f"{', '.join(DATA_PARTS)} and {RECEIPT}); seal the folder 'epibridge protect' wrote"
        )
    if RECEIPT not in parts:
        raise PayloadError(f"the policy receipt ({RECEIPT}) is missing")
    if not set(DATA_PARTS) & set(parts):
        raise PayloadError(f"the submission holds no data ({', '.join(DATA_PARTS)})")
    try:
        receipt = json.loads(parts[RECEIPT].read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"the policy receipt is not JSON ({exc})") from None
    if not isinstance(receipt, dict):
        raise PayloadError("the policy receipt is not a JSON object")
    named = (receipt.get("agreement") or {}).get("sha256")
    if named != manifest.get("agreement_sha256"):
        raise PayloadError(
            "the policy receipt names another agreement text than the manifest; seal the "
            "release exactly as 'epibridge protect' wrote it"
        )
    for part in _FORMATS:
        if part in parts:
            _check_release(parts[part], part)
    if CASES in parts:
        _check_cases(parts[CASES])
    return Payload(
        parts.get(COUNTS),
        parts.get(CASES),
        receipt,
        reporting=parts.get(REPORTING),
        denominators=parts.get(DENOMINATORS),
    )
