"""Publishing a bulletin: write the file, then log it as a hub release.

The file is written whole or not at all (a temporary file beside it, then a rename).
Then a transparency-log leaf of kind ``release`` records what was published: the
week, disease, format, as-of time, size and SHA-256 of the file, and the epibridge
version that made it (``hub/audit.py`` checks its shape). Its subject is
``bulletin/<week>/<format>/<sha256>``: writing the same bytes again (the same week,
disease, as-of time and version) adds no leaf, while a bulletin made as of a later
time, with other bytes, gets its own. The store does not keep the file: anyone holding a
copy computes its SHA-256 and finds that leaf (``docs/bulletin.md``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from epibridge import __version__
from epibridge.hub.audit import RELEASE_KIND, release_subject
from epibridge.hub.log import append
from epibridge.transport.keys import format_time

from .content import Bulletin, BulletinError


@dataclass(frozen=True)
class Released:
    path: Path
    sha256: str
    size_bytes: int
    subject: str
    leaf: int | None  # None: the same file was logged before


def release_entry(bulletin: Bulletin, fmt: str, data: bytes) -> dict[str, Any]:
    """The log entry of a bulletin file (without ``kind``, which ``log.append`` adds)."""
    return {
        "artifact": "bulletin",
        "disease": bulletin.disease,
        "week": bulletin.week,
        "as_of": format_time(bulletin.as_of.replace(microsecond=0)),
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "generator": f"epibridge {__version__}",
    }


def write_file(out: Path, data: bytes) -> None:
    """``data`` at ``out``, complete or not at all; a clear error when it cannot be written."""
    partial = out.with_name(out.name + ".partial")
    try:
        if out.is_dir():
            raise IsADirectoryError(21, "is a folder, not a file", str(out))
        partial.write_bytes(data)
        os.replace(partial, out)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise BulletinError(
            f"cannot write the bulletin to {out}: {error.strerror or error}\n"
            "  what to do: choose a folder you can write to with --out"
        ) from None


def publish(
    engine: Engine, bulletin: Bulletin, fmt: str, data: bytes, out: Path, now: datetime
) -> Released:
    """Write ``data`` to ``out`` and log it (once per distinct file)."""
    write_file(out, data)
    return log_release(engine, bulletin, fmt, data, now, out)


def log_release(
    engine: Engine, bulletin: Bulletin, fmt: str, data: bytes, now: datetime, out: Path
) -> Released:
    """Log ``data`` as a hub release (once per distinct file): the CLI's file or the
    dashboard's download alike."""
    entry = release_entry(bulletin, fmt, data)
    subject = release_subject(entry)
    with engine.begin() as connection:
        seq = append(connection, RELEASE_KIND, subject, entry, now)
    return Released(out, entry["sha256"], len(data), subject, seq)
