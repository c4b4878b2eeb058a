"""Recognise what a file really is before an adapter parses it.

Real inputs arrive misnamed (an Excel workbook called ``.csv``), empty, in the wrong
encoding or cut off half-way through a copy. These checks read only the first and last few
kilobytes, so they cost nothing on a 10-million-row file, and they turn what would be a
parser traceback into one sentence that names the file and says what to do.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from epibridge.model.errors import SourceError

_MAGIC = {
    b"PK\x03\x04": "a ZIP container (an Excel .xlsx/.ods workbook or a zipped file)",
    b"\xd0\xcf\x11\xe0": "a legacy Microsoft Office file (.xls)",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip-compressed file",
}
_HEAD = 64 * 1024


def container(path: Path) -> str | None:
    """Describe the binary container ``path`` is, or None for (probably) text."""
    with path.open("rb") as handle:
        head = handle.read(8)
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return _zip_kind(path) if magic == b"PK\x03\x04" else what
    return None


def _zip_kind(path: Path) -> str:
    """A ZIP container as what it holds: a workbook, or an archive of other files."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return _MAGIC[b"PK\x03\x04"]
    if any(n.startswith("xl/") for n in names):
        return "an Excel .xlsx workbook"
    if "content.xml" in names and "mimetype" in names:
        return "an OpenDocument spreadsheet (.ods)"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"a ZIP archive holding {shown or 'nothing'}"


def require_nonempty(path: Path) -> None:
    if not path.exists():
        raise SourceError(path, "no such file", "check the path")
    if path.is_dir():
        raise SourceError(path, "is a folder, not a file", "name the file(s) inside it")
    if path.stat().st_size == 0:
        raise SourceError(
            path,
            "the file is empty (0 bytes)",
            "export the data again; the copy or download may have failed",
        )


def require_text(path: Path, encoding: str, declared: str) -> str:
    """Check the head of the file decodes as ``encoding``; return the decoded head."""
    what = container(path)
    if what is not None:
        if "Excel" in what or "(.ods)" in what:
            hint = 'set format = "excel" in the profile'
        elif what.startswith("a ZIP archive"):
            hint = "unzip it and ingest the file inside"
        else:
            hint = "export the data as delimited text"
        raise SourceError(path, f"declared as {declared} but the file is {what}", hint)
    with path.open("rb") as handle:
        raw = handle.read(_HEAD)
    if b"\x00" in raw[:4096] and not encoding.lower().startswith("utf-16"):
        raise SourceError(
            path,
            "the file contains NUL bytes: it is binary or UTF-16 text",
            'if it is UTF-16, set [read] encoding = "utf-16" in the profile',
        )
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        if len(raw) < _HEAD or exc.start < len(raw) - 4:  # not a character cut at the end
            line = raw[: exc.start].count(b"\n") + 1
            raise SourceError(
                path,
                f"not valid {encoding} text: byte 0x{raw[exc.start]:02x} at line {line} "
                f"cannot be decoded",
                "set [read] encoding in the profile to the file's real encoding (often "
                '"latin-1" or "cp1252" for old exports), or re-save the file as UTF-8',
            ) from None
        text = raw[: exc.start].decode(encoding)
    except LookupError:
        raise SourceError(
            path,
            f"unknown encoding '{encoding}'",
            "use a Python codec name such as utf-8, latin-1, cp1252",
        ) from None
    return text


def tail(path: Path, size: int = 4096) -> bytes:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        length = handle.tell()
        handle.seek(max(0, length - size))
        return handle.read()


def read_utf8(path: Path, hint: str) -> str:
    """The whole file as UTF-8 text (a byte-order mark is dropped), or one clear error.

    For the small formats that are parsed whole (DHIS2 JSON, FHIR JSON): names the first
    undecodable byte and its line, and recognises UTF-16 by its byte-order mark.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot be opened: {exc.strerror or exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(path, "the file is UTF-16 text, not UTF-8", hint)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(
            path, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})", hint
        ) from None


def invalid_json(path: Path, exc: json.JSONDecodeError, hint: str) -> SourceError:
    """The error for a file that is not valid JSON, naming where the parser stopped
    (Python's messages for some errors end in "at", as in "string starting at")."""
    what = exc.msg.removesuffix(" at")
    return SourceError(
        path, f"not valid JSON: {what} at line {exc.lineno}, column {exc.colno}", hint
    )
