"""The main job: ``epibridge demo`` ingests every shipped dataset and accounts for all."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from epibridge.demo import INPUTS, run_demo
from tests.conftest import TODAY


def test_demo_ingests_everything(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    run = run_demo(tmp_path / "ws", TODAY, console)
    results = run.ingested
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
    assert sorted(receipts) == sorted(
        {"PER", "TWN", "BRA", "LKA", "PHL", "LAO", "KHM", "THA", "VNM", "MMR"}
    )
    assert receipts["BRA"]["datasets"]["counts"]["privacy"]["epsilon"] == 1.0
    assert "pseudonyms" in receipts["PER"]["datasets"]["cases"]
    assert "suppression" in receipts["LKA"]["datasets"]["counts"]
    assert len({r["agreement"]["id"] for r in receipts.values()}) == 10
    assert "what each node lets leave" in text and "BRA-HUB-DENGUE-DP" in text

    # Stage 3: every release sealed and pushed to a real hub process, receipts verified.
    from epibridge.hub.home import HubHome

    with HubHome(tmp_path / "ws" / "hub").open_store() as store:
        held = store.submissions()
    assert sorted(s.origin_country for s in held) == sorted(receipts)
    assert "sealed, pushed, received" in text
    assert text.count("receipt verified") == len(receipts)
    assert "the log and the store agree" in text and "10 inclusion proofs" in text
    assert "data quality at the hub" in text

    # Stage 4: detection at the hub finds every planted outbreak, the border one as a
    # cross-border cluster of Svay Rieng (KH-20) and Tay Ninh (VN-N80).
    assert all(f.found for f in run.detection.findings), run.detection.findings
    border = run.detection.cross_border
    assert border and {"KH-20", "VN-N80"} <= set(border[0].areas)
    assert set(border[0].countries) == {"KHM", "VNM"}
    assert "found 3 of 3 planted outbreaks" in text
    burden = run.detection.burden
    assert burden.num_rows > 0 and "dengue burden" in text

    # Stage 5: the cross-border alerts were verified, sent to every country concerned and
    # acknowledged by each node; the others wait in the analyst's inbox.
    verified = [a for a in run.alerts.alerts if a.status == "verified"]
    assert verified and all(a.cross_border for a in verified)
    assert {a.alert_id for a in run.alerts.alerts if a.cross_border} == {
        a.alert_id for a in verified
    }
    border_alert = next(a for a in verified if {"KH-20", "VN-N80"} <= set(a.areas))
    assert {"KHM", "VNM"} <= set(border_alert.countries)
    acked = {(d.alert_id, d.country) for d in run.alerts.deliveries if d.acknowledged_at}
    assert {(a.alert_id, c) for a in verified for c in a.countries} == acked
    for country in ("KHM", "VNM"):
        kept = tmp_path / "ws" / "nodes" / country / "alerts"
        assert (kept / f"{border_alert.alert_id}.jws").is_file()
        assert (kept / f"{border_alert.alert_id}.ack.json").is_file()

    # Stage 6: users to log in as (tokens only in an owner-only file), what to look at.
    users = tmp_path / "ws" / "dashboard-users.txt"
    # no token printed
    assert "What to look at first" in text and "hub_analyst" in users.read_text()
    assert "ebu_" not in text
    _suggested_commands_run(tmp_path / "ws", text, border_alert.alert_id)

    # Running the release stage again starts the demo nodes afresh (else the privacy
    # budget, 3 releases of epsilon 1, would refuse the fourth).
    from epibridge.demo_release import protect_all

    for _ in range(3):
        assert len(protect_all(tmp_path / "ws", TODAY, console)) == len(INPUTS)


def _suggested_commands_run(workspace: Path, text: str, alert_id: str) -> None:
    """The commands the demo suggests that open key stores run with its passphrase file."""
    from typer.testing import CliRunner

    from epibridge.cli import app

    secret = workspace / "demo-passphrase.txt"
    for private in (secret, workspace / "dashboard-users.txt"):
        assert private.stat().st_mode & 0o777 == 0o600
    passphrase = secret.read_text(encoding="utf-8").strip()
    assert passphrase not in text
    env = {"EPIBRIDGE_KEY_PASSPHRASE": passphrase, "COLUMNS": "200"}
    audit = CliRunner().invoke(app, ["audit", "verify", "--home", str(workspace / "hub")], env=env)
    assert audit.exit_code == 0 and "the log and the store agree" in audit.stdout
    node = ["node", "alerts", "--no-fetch", "--home", str(workspace / "nodes" / "KHM")]
    inbox = CliRunner().invoke(app, node, env=env)
    assert inbox.exit_code == 0 and alert_id in inbox.stdout
