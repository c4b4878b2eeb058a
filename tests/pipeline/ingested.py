"""Ingest a profile's text and rows into a folder, and read back its quarantine."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from epibridge.ingest import ingest
from epibridge.profiles import load_profile
from tests.conftest import TODAY


def ingest_text(write: Callable[[str, str], Path], profile: str, rows: str, out: Path) -> Path:
    """``rows`` (in.csv) ingested under ``profile`` (p.toml) into ``out``."""
    ingest(load_profile(write("p.toml", profile)), [write("in.csv", rows)], out, TODAY)
    return out


def quarantine_rows(out: Path) -> dict[int, dict[str, str]]:
    """The quarantine written into ``out``, by record number."""
    with (out / "quarantine.csv").open(encoding="utf-8") as handle:
        return {int(r["record"]): r for r in csv.DictReader(handle)}
