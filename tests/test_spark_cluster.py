"""On a real Spark standalone cluster (a master and two workers on this machine), a
worker killed in the middle of a detection changes nothing in the result."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.spark_cluster import standalone

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


def _detect(data: Path, out: Path, *engine: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "epibridge.cli",
            "detect",
            str(data),
            "--method",
            "noufaily",
            "--out",
            str(out),
            *engine,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_worker_killed_mid_job_changes_nothing(tmp_path: Path) -> None:
    data = _counts(tmp_path / "counts.csv")
    here = tmp_path / "here.csv"
    done = _detect(data, here)
    _, err = done.communicate(timeout=600)
    assert done.returncode == 0, err.decode()
    with standalone(2, tmp_path) as cluster:
        there = tmp_path / "there.csv"
        job = _detect(data, there, "--engine", "spark", "--spark-master", cluster.master_url)
        deadline = time.monotonic() + 120
        while cluster.running_apps() == 0:
            assert job.poll() is None, job.communicate()[1].decode()
            assert time.monotonic() < deadline, "the job never reached the cluster"
            time.sleep(0.2)
        time.sleep(4)  # the executors have started on their partitions
        assert job.poll() is None, "the job ended before a worker could be killed"
        cluster.kill_worker(0)
        _, err = job.communicate(timeout=600)
        assert job.returncode == 0, err.decode()
        assert cluster.alive_workers() == 1
    assert there.read_bytes() == here.read_bytes()
