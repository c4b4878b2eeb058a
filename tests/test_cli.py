"""The command line as a user meets it: help everywhere, clear errors, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.test_docs import _commands

PROFILE = """
[profile]
name = "t"
format = "delimited"
dataset = "cases"
country = "KHM"
[fields]
disease = { value = "DENGUE" }
date_report = "reported"
[period]
from_date = "date_report"
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "epibridge.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


@pytest.mark.parametrize("command", [[], *[c.split() for c in sorted(_commands())]])
def test_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def _zipped(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data.csv", "reported,x\n2025-01-01,1\n")
    return path


def _xlsx(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["reported"])
    sheet.append(["2025-01-01"])
    book.save(path)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


BAD_FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty": (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    "latin-1": (
        lambda p: (p.write_bytes("reported,x\n2025-01-01,Jos\xe9\n".encode("latin-1")), p)[1],
        "not valid utf-8",
    ),
    "semicolons": (
        lambda p: (p.write_text("reported;x\n2025-01-01;1\n"), p)[1],
        "separated by ';'",
    ),
    "truncated": (
        lambda p: (p.write_text("reported,x,y\n2025-01-01,1,2\n2025-01-02,1"), p)[1],
        "cut off",
    ),
    "open quote": (lambda p: (p.write_text('reported,x\n2025-01-01,"abc'), p)[1], "cut off"),
    "xlsx named csv": (_xlsx, "Excel"),
    "zipped csv": (_zipped, "a ZIP archive holding data.csv"),
    "pdf": (lambda p: (p.write_bytes(b"%PDF-1.4 ..."), p)[1], "PDF"),
    "wrong columns": (
        lambda p: (p.write_text("date,x\n2025-01-01,1\n"), p)[1],
        "lacks column(s) the profile needs: reported",
    ),
    "folder": (_folder, "folder"),
    "missing": (lambda p: p, "no such file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_unreadable_file_gives_one_clear_error(
    case: str, tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    make, expected = BAD_FILES[case]
    path = make(tmp_path / "input.csv")
    profile = write("p.toml", PROFILE)
    result = run("ingest", "--profile", str(profile), "--out", str(tmp_path / "out"), str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr
    assert expected.lower() in result.stderr.lower(), result.stderr


def test_profile_errors_name_key_and_line(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    profile = write(
        "p.toml", PROFILE.replace('date_report = "reported"', 'date_reportt = "reported"')
    )
    data = write("in.csv", "reported\n2025-01-01\n")
    result = run("ingest", "-p", str(profile), "-o", str(tmp_path / "o"), str(data))
    assert result.returncode == 2
    assert "p.toml, line 9: [fields.date_reportt]" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_profile_lists_shipped_ones(tmp_path: Path) -> None:
    result = run("ingest", "-p", "no-such-profile", "-o", str(tmp_path), "x.csv")
    assert result.returncode == 2
    assert "peru-dengue-linelist" in result.stderr


def test_ingest_prints_summary_and_writes_outputs(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    profile = write("p.toml", PROFILE)
    data = write("in.csv", "reported\n2025-01-01\n2025-13-01\n")
    result = run(
        "ingest", "-p", str(profile), "-o", str(tmp_path / "o"), "--today", "2026-11-23", str(data)
    )
    assert result.returncode == 0, result.stderr
    assert "quarantined" in result.stdout and "bad_date" in result.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert (summary["read"], summary["accepted"], summary["quarantined"]) == (2, 1, 1)


def test_profiles_lists_shipped_profiles() -> None:
    result = run("profiles")
    assert result.returncode == 0
    for name in (
        "peru-dengue-linelist",
        "taiwan-dengue-linelist",
        "dhis2-example-weekly",
        "fhir-madx-example",
    ):
        assert name in result.stdout
    # in a narrow terminal (or a file) the names are never cut: --profile takes them
    narrow = subprocess.run(
        [sys.executable, "-m", "epibridge.cli", "profiles"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "COLUMNS": "60"},
    )
    assert "brazil-dengue-microregion-monthly" in narrow.stdout


def test_bad_date_format_in_profile_is_reported_before_reading(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    profile = write(
        "p.toml",
        PROFILE.replace(
            'date_report = "reported"',
            'date_report = { column = "reported", formats = ["%d.%Q.%Y"] }',
        ),
    )
    data = write("in.csv", "reported\n2025-01-01\n")
    result = run("ingest", "-p", str(profile), "-o", str(tmp_path / "o"), str(data))
    assert result.returncode == 2
    assert "[fields.date_report.formats]" in result.stderr
    assert "%Q is not supported" in result.stderr


def test_unwritable_output_folder_is_a_clear_error(
    tmp_path: Path, write: Callable[[str, str], Path]
) -> None:
    blocker = write("blocker", "a file where the output folder should go")
    data = write("in.csv", "reported\n2025-01-01\n")
    result = run(
        "ingest", "-p", str(write("p.toml", PROFILE)), "-o", str(blocker / "out"), str(data)
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(blocker) in result.stderr
