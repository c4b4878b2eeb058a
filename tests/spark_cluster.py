"""A Spark standalone cluster on this machine: a master and workers started with the
scripts that ship with PySpark (``bin/spark-class``), each a process a test can kill."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class Cluster:
    master_url: str
    ui: str
    master: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    def state(self) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.ui}/json/", timeout=5) as answer:
            found: dict[str, object] = json.load(answer)
        return found

    def kill_worker(self, i: int) -> None:
        """Kill worker ``i`` and the executors it started (its process group)."""
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait(timeout=30)

    def alive_workers(self) -> int:
        workers = self.state().get("workers", [])
        assert isinstance(workers, list)
        return sum(1 for w in workers if w.get("state") == "ALIVE")

    def running_apps(self) -> int:
        apps = self.state().get("activeapps", [])
        assert isinstance(apps, list)
        return len(apps)


def _wait(test: object, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if test():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the Spark cluster did not come up: {what}")


@contextmanager
def standalone(workers: int, work: Path) -> Iterator[Cluster]:
    """A master on a free port and ``workers`` workers of one core and 1 GB each."""
    home = spark_home()
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOG_DIR": str(work / "logs"),
        "SPARK_WORKER_DIR": str(work / "work"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    port, ui = _free_port(), _free_port()
    spark_class = str(home / "bin" / "spark-class")
    log = (work / "master.log").open("wb")
    master = subprocess.Popen(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}", master, logs=[log])
    try:
        _wait(lambda: cluster.state() is not None, "master")
        for i in range(workers):
            out = (work / f"worker{i}.log").open("wb")
            cluster.logs.append(out)
            cluster.workers.append(
                subprocess.Popen(
                    [
                        spark_class,
                        "org.apache.spark.deploy.worker.Worker",
                        cluster.master_url,
                        "--cores",
                        "1",
                        "--memory",
                        "1g",
                        "--webui-port",
                        str(_free_port()),
                        "--work-dir",
                        str(work / f"work{i}"),
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    # its own process group: killing it takes its executors too, as when
                    # a machine of the cluster goes down
                    start_new_session=True,
                )
            )
        _wait(lambda: cluster.alive_workers() == workers, f"{workers} workers")
        yield cluster
    finally:
        for i, p in enumerate(cluster.workers):
            if p.poll() is None:
                cluster.kill_worker(i)
        master.kill()
        master.wait(timeout=30)
        for handle in cluster.logs:
            handle.close()
