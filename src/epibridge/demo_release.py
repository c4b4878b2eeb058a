"""The demo's second stage: every country's node applies its own sharing agreement.

Each country is its own node, with its home folder under ``WORKSPACE/nodes/<ISO3>``
(state and pseudonym key) and its release under ``WORKSPACE/releases/<ISO3>``. Both are
reset on every run, so that the demo can be run again (a real node keeps them: its
privacy ledger would otherwise refuse a release once the budget is spent).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from epibridge.agreements import load_agreement
from epibridge.protect import ProtectResult, protect


def agreement_path(name: str) -> Path:
    return Path(str(resources.files("epibridge.examples") / "agreements" / name))


def _protection(receipt: dict[str, Any]) -> str:
    parts = []
    for name, section in receipt["datasets"].items():
        if "suppression" in section:
            sup = section["suppression"]
            parts.append(
                f"{name}: k={sup['k']}, {sup['primary']:,} small + "
                f"{sup['secondary']:,} complementary cells suppressed"
            )
        if "privacy" in section:
            p = section["privacy"]
            parts.append(
                f"{name}: noise epsilon {p['epsilon']:g}, {p['budget_remaining']:g} left "
                f"in {p['budget_period_label']}"
            )
        if "k_anonymity" in section:
            k = section["k_anonymity"]
            pseud = " + pseudonyms" if "pseudonyms" in section else ""
            parts.append(
                f"{name}: {k['k']}-anonymous{pseud}, {k['records_withheld']:,} records withheld"
            )
    return "; ".join(parts)


def _context_rows(receipt: dict[str, Any]) -> str:
    """Rows of reporting and population released beside the counts or cases."""
    files = receipt["files"]
    return ", ".join(
        f"{name} {files[f'{name}.parquet']['rows']:,}"
        for name in ("reporting", "denominators")
        if f"{name}.parquet" in files
    )


def protect_all(workspace: Path, today: date, console: Console) -> list[ProtectResult]:
    """Release every ingested dataset under its country's example agreement: one release
    per country, from all its ingest folders (counts or cases, reporting, population)."""
    from epibridge.demo import INPUTS, input_folders

    for folder in ("releases", "nodes"):
        shutil.rmtree(workspace / folder, ignore_errors=True)
    table = Table(title="what each node lets leave (node stage 2: protect, under its agreement)")
    for col in ("country", "agreement", "rows released", "also released", "protection"):
        table.add_column(col, justify="right" if col == "rows released" else "left")
    results = []
    for item in INPUTS:
        agreement = load_agreement(agreement_path(item.agreement))
        country = agreement.sender
        first, last = item.period if item.period else (None, None)
        result = protect(
            agreement,
            input_folders(item, workspace),
            workspace / "releases" / country,
            workspace / "nodes" / country,
            today,
            datetime.now(UTC),
            period_from=first,
            period_to=last,
        )
        results.append(result)
        files = result.receipt["files"]
        rows = sum(files[f]["rows"] for f in ("counts.parquet", "cases.parquet") if f in files)
        table.add_row(
            country,
            agreement.id,
            f"{rows:,}",
            _context_rows(result.receipt),
            _protection(result.receipt),
        )
    console.print()
    console.print(table)
    console.print("Policy receipts (what was withheld and why, epsilon spent, file hashes):")
    for result in results:
        console.print(f"  {result.out / 'receipt.json'}", soft_wrap=True)
    per = results[0].receipt
    console.print(
        f"\nA policy receipt ({workspace / 'releases' / per['sender'] / 'receipt.json'}), excerpt:",
        soft_wrap=True,
    )
    excerpt = {
        "agreement": per["agreement"],
        "withheld": per["withheld"],
        "cases": {
            k: per["datasets"]["cases"][k] for k in ("k_anonymity", "pseudonyms", "fields_dropped")
        },
    }
    console.print_json(json.dumps(excerpt, default=str))
    return results
