"""The demo's serving stage stops cleanly on Ctrl-C or SIGTERM (its hub is then stopped
by ``running_hub``), never leaving the dashboard's process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, cast

from rich.console import Console

from epibridge.demo_exchange import DemoHub
from epibridge.demo_serve import serve_until_stopped


def test_sigterm_ends_the_wait_like_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(["sleep", "30"])
    running = DemoHub(cast(Any, None), "", {}, "http://127.0.0.1:1", process, tmp_path / "log")
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    console = Console(record=True)
    try:
        serve_until_stopped(running, console)
    finally:
        process.kill()
        process.wait()
    assert "stopping the hub" in console.export_text()
    assert signal.getsignal(signal.SIGTERM) is not None
