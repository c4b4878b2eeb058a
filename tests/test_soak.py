"""A short soak on every test run: nodes keep pushing while the hub is killed (SIGKILL)
and restarted at random; afterwards every submission is stored exactly once, every node's
acknowledgements are true, and the log verifies (benchmarks/soak_hub.py; the long run, 50
nodes for minutes, is in docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import soak_hub


def test_soak_with_random_kills(tmp_path: Path) -> None:
    result = soak_hub.main(
        [
            "--nodes", "6",
            "--seconds", "25",
            "--kill-every", "3", "7",
            "--min-kills", "2",
            "--database", "postgresql",
            "--out-dir", str(tmp_path),
            "--no-docs",
        ]
    )  # fmt: skip
    assert result["kills"] >= 2
    assert result["held"] == result["sealed"] == result["acknowledged"] > 50
    assert result["duplicated"] == result["believed_delivered_not_held"] == 0
    assert result["log_problems"] == []
