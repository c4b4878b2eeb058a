"""The benchmark scripts run end to end on a small file (no timing is asserted, ever)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_generator_writes_a_realistic_line_list(tmp_path: Path) -> None:
    data, truth = tmp_path / "ll.csv", tmp_path / "truth.csv"
    _run(
        "benchmarks.generate_linelist",
        "--rows",
        "2000",
        "--out",
        str(data),
        "--seed",
        "3",
        "--truth",
        str(truth),
    )
    with data.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2000
    assert list(rows[0]) == ["case_id", "disease", "onset", "reported", "sex", "age", "province"]
    assert {r["sex"] for r in rows} <= {"M", "F", "U"}
    assert sum(r["disease"].startswith(("A90", "A91", "A97")) for r in rows) > 1950
    with truth.open(newline="") as f:
        planted = list(csv.DictReader(f))
    assert planted, "some bad rows are planted"
    # Same seed, same file.
    again = tmp_path / "again.csv"
    _run("benchmarks.generate_linelist", "--rows", "2000", "--out", str(again), "--seed", "3")
    assert again.read_bytes() == data.read_bytes()


@pytest.mark.slow
def test_benchmark_accounts_for_every_row(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    docs = ROOT / "docs" / "benchmarks.md"
    before = docs.read_bytes() if docs.exists() else None
    _run(
        "benchmarks.bench_ingest",
        "--rows",
        "2000",
        "--no-docs",
        "--out-dir",
        str(tmp_path),
        "--json",
        str(figures),
    )
    result = json.loads(figures.read_text(encoding="utf-8"))
    epi, base = result["epibridge"], result["baseline"]
    assert epi["rows"] == base["rows"] == 2000
    assert epi["accepted"] + epi["quarantined"] == epi["rows"]
    planted = result["planted"]
    assert planted["planted"] > 0
    assert planted["quarantined"] == planted["same_rule"] == planted["planted"]
    assert epi["quarantined"] == planted["planted"]
    assert epi["cells"] > 0
    assert base["cells"] > 0
    # The floor (one hand-written pass) must have done the same work, cell by cell.
    low = result["floor"]
    assert low["rows"] == 2000
    assert (low["accepted"], low["cells"]) == (epi["accepted"], epi["cells"])
    assert result["floor_counts_equal"] is True
    assert (docs.read_bytes() if docs.exists() else None) == before


def test_protect_benchmark_runs_small(tmp_path: Path) -> None:
    figures = tmp_path / "protect.json"
    _run(
        "benchmarks.bench_protect",
        "--areas",
        "20",
        "--no-docs",
        "--out-dir",
        str(tmp_path),
        "--json",
        str(figures),
    )
    result = json.loads(figures.read_text(encoding="utf-8"))
    epi, base = result["epibridge"], result["baseline"]
    # Every non-zero input cell is one row; the baseline aggregates them all.
    assert base["cells"] == result["rows"] > 0
    assert epi["blocks"] > 0 and epi["rows"] >= epi["blocks"]
    assert epi["primary"] > 0


def test_seal_benchmark_runs_small(tmp_path: Path) -> None:
    figures = tmp_path / "seal.json"
    _run(
        "benchmarks.bench_seal",
        "--mb",
        "2",
        "--no-docs",
        "--out-dir",
        str(tmp_path),
        "--json",
        str(figures),
    )
    result = json.loads(figures.read_text(encoding="utf-8"))
    assert result["bytes"] == 2_000_000
    for stage in ("raw_memory", "raw_files", "epibridge"):
        assert result[stage]["seal"] > 0 and result[stage]["open"] > 0
    assert (tmp_path / "seal-2" / "opened" / "part.parquet").read_bytes() == (
        tmp_path / "seal-2" / "payload.bin"
    ).read_bytes()


def test_intake_benchmark_runs_small(tmp_path: Path) -> None:
    from benchmarks import bench_intake

    result = bench_intake.main(
        ["--nodes", "3", "--per-node", "1", "--kib", "16", "--database", "sqlite",
         "--workers", "1", "--out-dir", str(tmp_path), "--no-docs"]
    )  # fmt: skip
    check = result["check"]
    assert check["held"] == check["sealed"] == check["acknowledged"] == 3
    assert check["lost"] == check["duplicated"] == 0


def test_detect_benchmark_runs_small(tmp_path: Path) -> None:
    from benchmarks import bench_detect

    result = bench_detect.main(
        ["--data", "synthetic", "--series", "3", "--out-dir", str(tmp_path), "--no-docs"]
    )
    assert result["points"] == 3 * bench_detect.MONITORED
    assert result["farrington_seconds"] > 0
    # Where R surveillance is installed, the benchmark also checked identical results.
    for name in ("farrington", "noufaily", "C1", "C2", "C3"):
        assert result.get(f"{name}_same", True) is True


# PySpark's gateway leaves its sockets to the garbage collector (py4j): not our leak.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_scan_benchmark_runs_small() -> None:
    from benchmarks import bench_scan

    # on Spark too: the benchmark stops when a scan there differs from the one here
    result = bench_scan.main(["--areas", "60", "--no-docs", "--spark", "local[2]"])
    assert result["zones"] > 60 and result["permutation"] > 0 and result["poisson"] > 0
    assert result["blocks"] == 10 and result["spark_permutation"] > 0


def test_hub_query_benchmark_times_every_query(tmp_path: Path) -> None:
    out = _run(
        "benchmarks.bench_hub_queries",
        "--areas",
        "20",
        "--years",
        "1",
        "--diseases",
        "2",
        "--repeat",
        "1",
        "--no-docs",
        "--work",
        str(tmp_path / "hub"),
        "--spark",
        "local[2]",
    )
    assert "20 areas x 52 weeks x 2 diseases" in out
    for query in ("one week of the region", "a country's year of reporting", "scorecards"):
        assert query in out
    spark = next(line for line in out.splitlines() if "scorecards on Spark local[2]" in line)
    every = next(line for line in out.splitlines() if "scorecards (every cell)" in line)
    assert spark.split("|")[2] == every.split("|")[2]  # the same rows scored


def test_scale_benchmark_runs_small(tmp_path: Path) -> None:
    from benchmarks import bench_scale

    result = bench_scale.main(
        ["--rows", "3000", "--series", "20", "--monitor", "10", "--engines", "duckdb",
         "local[2]", "--out-dir", str(tmp_path), "--no-docs"]
    )  # fmt: skip
    ingested, detected = result["ingest"], result["detect"]
    assert ingested["duckdb"]["rows"] == ingested["local[2]"]["rows"] == 3000
    assert ingested["duckdb"]["accepted"] == ingested["local[2]"]["accepted"] > 0
    assert detected["duckdb"]["points"] == 200
    assert detected["duckdb"]["digest"] == detected["local[2]"]["digest"]
    assert all(r["peak_tree"] > 0 for r in (*ingested.values(), *detected.values()))
