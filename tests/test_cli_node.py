"""The node's release commands as a user meets them: agreements, protect, transfers."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tests.test_cli import run
from tests.test_protect import _cases

EXAMPLES = Path(str(resources.files("epibridge.examples") / "agreements"))


def _agreement(tmp_path: Path) -> Path:
    text = (EXAMPLES / "lao-hub-counts.toml").read_text(encoding="utf-8")
    path = tmp_path / "khm.toml"
    path.write_text(text.replace('"LAO"', '"KHM"').replace("LAO-HUB", "KHM-HUB"), encoding="utf-8")
    return path


def _protect(agreement: Path, ingested: Path, out: Path, *more: str) -> Any:
    return run("protect", "-a", str(agreement), "--in", str(ingested), "--out", str(out), *more)


def test_check_prints_plain_words_and_errors_name_the_line(tmp_path: Path) -> None:
    done = run("agreements", "check", str(EXAMPLES / "bra-hub-dp.toml"))
    assert done.returncode == 0, done.stderr
    assert "BRA may send data to the regional hub" in done.stdout
    assert "epsilon 1 per release" in done.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        (EXAMPLES / "bra-hub-dp.toml").read_text().replace("area_level = 3", "area_level = 7")
    )
    done = run("agreements", "check", str(bad))
    assert done.returncode == 2
    assert "bad.toml, line 21: [data.area_level]" in done.stderr
    assert "Traceback" not in done.stderr


def test_protect_stop_and_transfers(tmp_path: Path) -> None:
    ingested = tmp_path / "in"
    ingested.mkdir()
    pq.write_table(_cases(), ingested / "cases.parquet")
    agreement = _agreement(tmp_path)
    home = ["--home", str(tmp_path / "home")]
    done = _protect(agreement, ingested, tmp_path / "r1", "--today", "2026-11-23", *home)
    assert done.returncode == 0, done.stderr
    assert "count from 1 to 4" in done.stdout and "receipt" in done.stdout
    assert (tmp_path / "r1" / "counts.parquet").exists()
    done = run("transfers", "--csv", str(tmp_path / "t.csv"), *home)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "t.csv").open(newline="") as f:
        assert [r["agreement_id"] for r in csv.DictReader(f)] == ["KHM-HUB-DENGUE-COUNTS"]
    done = run("transfers", *home)
    assert "KHM-HUB-DENGUE-COUNTS v1" in done.stdout
    done = run("agreements", "stop", str(agreement), "--reason", "audit", *home)
    assert done.returncode == 0 and "stopped agreement KHM-HUB-DENGUE-COUNTS" in done.stdout
    done = _protect(agreement, ingested, tmp_path / "r2", "--today", "2026-11-23", *home)
    assert done.returncode == 2
    assert "release refused" in done.stderr and "audit" in done.stderr
    assert "what to do" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r2").exists()


def test_protect_refuses_a_field_and_a_missing_input(tmp_path: Path) -> None:
    agreement = _agreement(tmp_path)
    done = _protect(
        agreement, tmp_path, tmp_path / "r", "--field", "deaths", "--home", str(tmp_path / "home")
    )
    assert done.returncode == 2
    assert "holds nothing this agreement lets leave" in done.stderr
    (tmp_path / "in").mkdir()
    pq.write_table(_cases(), tmp_path / "in" / "cases.parquet")
    done = _protect(
        agreement,
        tmp_path / "in",
        tmp_path / "r",
        "--field",
        "deaths",
        "--today",
        "2026-11-23",
        "--home",
        str(tmp_path / "home"),
    )
    assert done.returncode == 2
    assert "'deaths' is not allowed" in done.stderr


def test_protect_names_a_damaged_or_foreign_input_file(tmp_path: Path) -> None:
    agreement = _agreement(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cases.parquet").write_text("not parquet")
    done = _protect(agreement, tmp_path / "in", tmp_path / "r", "--home", str(tmp_path / "h"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cases.parquet" in done.stderr and "not a readable Parquet file" in done.stderr
    pq.write_table(pa.table({"x": [1]}), tmp_path / "in" / "cases.parquet")
    done = _protect(agreement, tmp_path / "in", tmp_path / "r", "--home", str(tmp_path / "h"))
    assert done.returncode == 2 and "not a harmonized table: no column" in done.stderr
    assert not (tmp_path / "r").exists()
