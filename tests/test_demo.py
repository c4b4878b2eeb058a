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
    # Stage 2: every country's node released under its own agreement, with a receipt.
    receipts = {
        p.parent.name: json.loads(p.read_text())
        for p in (tmp_path / "ws" / "releases").glob("*/receipt.json")
    }
    assert sorted(receipts) == sorted({"PER", "TWN", "BRA", "LKA", "PHL", "LAO", "KHM"})
    assert receipts["BRA"]["datasets"]["counts"]["privacy"]["epsilon"] == 1.0
    assert "pseudonyms" in receipts["PER"]["datasets"]["cases"]
    assert "suppression" in receipts["LKA"]["datasets"]["counts"]
    assert len({r["agreement"]["id"] for r in receipts.values()}) == 7
    assert "what each node lets leave" in text and "BRA-HUB-DENGUE-DP" in text

    # Running the release stage again starts the demo nodes afresh (else the privacy
    # budget, 3 releases of epsilon 1, would refuse the fourth).
    from epibridge.demo_release import protect_all

    for _ in range(3):
        assert len(protect_all(tmp_path / "ws", TODAY, console)) == len(INPUTS)

    # Stage 3: every release sealed and pushed to a real hub process, receipts verified.
    from epibridge.hub.home import HubHome

    with HubHome(tmp_path / "ws" / "hub").open_store() as store:
        held = store.submissions()
    assert sorted(s.origin_country for s in held) == sorted(receipts)
    assert "sealed, pushed, received" in text
    assert text.count("receipt verified") == len(receipts)
    assert "the log and the store agree" in text and "7 inclusion proofs" in text
    assert "data quality at the hub" in text
