"""The main job: ``epibridge demo`` ingests every shipped dataset and accounts for all."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from epibridge.demo import INPUTS, run_demo
from tests.conftest import TODAY


def test_demo_ingests_everything(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    results = run_demo(tmp_path / "ws", TODAY, console)
    assert len(results) == len(INPUTS)
    for item, result in zip(INPUTS, results, strict=True):
        summary = json.loads((tmp_path / "ws" / item.profile / "summary.json").read_text())
        assert summary["read"] == summary["accepted"] + summary["quarantined"]
        assert summary["read"] > 0
        assert result.accepted > 0
    text = console.export_text()
    assert "quarantine.csv" in text
    assert "peru-dengue-linelist" in text
    assert (tmp_path / "ws" / "denominators.parquet").exists()
