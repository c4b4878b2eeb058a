"""The protect stage end to end: releases, receipts, the register, and every refusal."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from epibridge.agreements import load_agreement
from epibridge.model.agreement import Agreement, Embargo, Privacy, Refusal
from epibridge.model.schema import CASES
from epibridge.node.ledger import BudgetExhausted
from epibridge.node.register import TransferRegister
from epibridge.node.state import NodeState
from epibridge.node.stops import AgreementStops
from epibridge.pipeline.noise import noise_bound
from epibridge.protect import ProtectResult, protect, state_path

EXAMPLES = Path(str(resources.files("epibridge.examples") / "agreements"))
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
AREAS = [("KH-12", None), ("KH-1", None), ("KH-2", None), ("KH-3", None)]


def _agreement(**changes: object) -> Agreement:
    base = load_agreement(EXAMPLES / "per-hub-linelist.toml")
    defaults = {"sender": "KHM", "count_fields": ("sex", "age_band")}
    return replace(base, **{**defaults, **changes})  # type: ignore[arg-type]


def _cases(n: int = 600, seed: int = 7) -> pa.Table:
    """A small Cambodian line list in the harmonized model (as ingest writes it)."""
    rng = np.random.default_rng(seed)
    start = date(2025, 1, 6)
    onset = [start + timedelta(days=int(d)) for d in rng.integers(0, 120, n)]
    weeks = [d - timedelta(days=d.weekday()) for d in onset]
    area_idx = rng.choice(4, n, p=[0.55, 0.25, 0.15, 0.05])
    rows = {
        "case_id": [f"KH-{i:05d}" for i in range(n)],
        "country": ["KHM"] * n,
        "admin1": [AREAS[i][0] for i in area_idx],
        "admin2": [None] * n,
        "admin3": [None] * n,
        "area": [AREAS[i][0] for i in area_idx],
        "area_level": [1] * n,
        "disease": rng.choice(["DENGUE", "DENGUE", "DENGUE", "MALARIA"], n).tolist(),
        "disease_detail": ["A90"] * n,
        "date_onset": onset,
        "date_diagnosis": [None] * n,
        "date_report": [d + timedelta(days=3) for d in onset],
        "period": [f"{w.isocalendar()[0]}-W{w.isocalendar()[1]:02d}" for w in weeks],
        "period_type": ["week"] * n,
        "calendar": ["iso"] * n,
        "period_start": weeks,
        "period_end": [w + timedelta(days=6) for w in weeks],
        "sex": rng.choice(["M", "F"], n).tolist(),
        "age_years": rng.gamma(2.0, 12.0, n).astype(np.float32).tolist(),
        "age_band": [None] * n,
        "classification": ["confirmed"] * n,
        "outcome": rng.choice(["alive", "dead"], n, p=[0.98, 0.02]).tolist(),
        "imported": [False] * n,
        "country_of_infection": [None] * n,
        "pathogen_detail": [None] * n,
        "case_count": [1] * n,
        "source_file": ["khm.csv"] * n,
        "source_record": list(range(1, n + 1)),
    }
    return pa.Table.from_pydict(rows, schema=CASES)


def _query(sql: str) -> list[tuple[Any, ...]]:
    return duckdb.connect().execute(sql).fetchall()


@pytest.fixture
def ingested(tmp_path: Path) -> Path:
    folder = tmp_path / "ingested"
    folder.mkdir()
    pq.write_table(_cases(), folder / "cases.parquet")
    return folder


def _run(
    agreement: Agreement, ingested: Path, tmp: Path, name: str = "out", /, **kw: Any
) -> ProtectResult:
    return protect(agreement, ingested, tmp / name, tmp / "home", TODAY, NOW, **kw)


def test_counts_release_is_safe_and_adds_up(ingested: Path, tmp_path: Path) -> None:
    a = _agreement(datasets=("counts",))
    result = _run(a, ingested, tmp_path)
    out = tmp_path / "out"
    counts = pq.read_table(out / "counts.parquet").to_pylist()
    published = [r["cases"] for r in counts if not r["cases_suppressed"]]
    assert published and all(v == 0 or v >= a.k for v in published)
    assert all(r["cases"] is None for r in counts if r["cases_suppressed"])
    assert any(r["cases_suppressed"] for r in counts)
    # Each block's grand total is listed; published grand totals equal the truth.
    truth = _query(
        f"SELECT area, period_start, disease, sum(case_count) AS n FROM "
        f"'{ingested / 'cases.parquet'}' WHERE disease = 'DENGUE' GROUP BY ALL"
    )
    totals = {
        (r["area"], r["period_start"], r["disease"]): r
        for r in counts
        if r["sex"] is None and r["age_band"] is None
    }
    assert len(totals) == len(truth)
    for area, start, disease, n in truth:
        row = totals[(area, start, disease)]
        assert row["cases_suppressed"] or row["cases"] == n
    assert {r["disease"] for r in counts} == {"DENGUE"}
    assert {r["period_type"] for r in counts} == {"week"}
    # Receipt: the agreement's hash, counts of what was withheld, the files' hashes.
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["agreement"] == {"id": a.id, "version": a.version, "sha256": a.sha256}
    section = receipt["datasets"]["counts"]
    assert section["suppression"]["primary"] > 0
    assert section["breakdowns"] == ["sex", "age_band"]
    malaria = [w for w in receipt["withheld"] if "disease" in w["why"]]
    assert malaria and malaria[0]["count"] == sum(
        1 for d in _cases().column("disease").to_pylist() if d == "MALARIA"
    )
    assert receipt["files"]["counts.parquet"]["rows"] == len(counts)
    assert result.withheld and result.release_id == receipt["release_id"]


def test_line_list_release_is_k_anonymous_and_pseudonymous(ingested: Path, tmp_path: Path) -> None:
    a = _agreement(datasets=("cases",))
    _run(a, ingested, tmp_path)
    out = tmp_path / "out"
    released = pq.read_table(out / "cases.parquet")
    quasi = ["age_band", "sex", "area", "date_onset", "period"]
    sizes = _query(
        f"SELECT count(*) AS n FROM '{out / 'cases.parquet'}' GROUP BY {', '.join(quasi)}"
    )
    assert sizes and min(n for (n,) in sizes) >= a.k
    assert set(released.column_names) >= {"case_id", "sex", "age_band", "date_onset", "area"}
    assert not {"age_years", "admin1", "outcome", "source_record"} & set(released.column_names)
    ids = released.column("case_id").to_pylist()
    assert all(len(i) == 64 and not i.startswith("KH-") for i in ids)
    receipt = json.loads((out / "receipt.json").read_text())
    k_section = receipt["datasets"]["cases"]["k_anonymity"]
    assert k_section["records_withheld"] + released.num_rows == 600 - sum(
        1 for d in _cases().column("disease").to_pylist() if d == "MALARIA"
    )
    # The same agreement gives the same pseudonyms; another agreement unlinkable ones.
    _run(a, ingested, tmp_path, "again")
    again = pq.read_table(tmp_path / "again" / "cases.parquet").column("case_id").to_pylist()
    assert set(again) == set(ids)
    _run(replace(a, id="KHM-PARTNER-VNM"), ingested, tmp_path, "other")
    other = pq.read_table(tmp_path / "other" / "cases.parquet").column("case_id").to_pylist()
    assert not set(other) & set(ids)
    # The key never leaves: not in the release, the receipt or the state.
    key = (tmp_path / "home" / "secrets" / "pseudonym.key").read_bytes()
    for path in [*out.iterdir(), tmp_path / "home" / "state.sqlite"]:
        blob = path.read_bytes()
        assert key not in blob and key.hex().encode() not in blob


def test_differential_privacy_release_spends_and_refuses(ingested: Path, tmp_path: Path) -> None:
    a = _agreement(
        datasets=("counts",),
        count_fields=(),
        privacy=Privacy(epsilon=1.0, budget=1.5, budget_period="year"),
    )
    with pytest.raises(Refusal, match="needs the periods to release given in advance"):
        _run(a, ingested, tmp_path)
    window = {"period_from": date(2025, 1, 1), "period_to": date(2025, 6, 30)}
    _run(a, ingested, tmp_path, **window)
    counts = pq.read_table(tmp_path / "out" / "counts.parquet").to_pylist()
    receipt = json.loads((tmp_path / "out" / "receipt.json").read_text())
    privacy = receipt["datasets"]["counts"]["privacy"]
    assert privacy["epsilon"] == 1.0 and privacy["budget_remaining"] == pytest.approx(0.5)
    # Every province of the registry is released for every week, noisy or not.
    blocks = {(r["area"], r["period_start"]) for r in counts}
    assert len({b[0] for b in blocks}) == 25
    true_total = sum(1 for d in _cases().column("disease").to_pylist() if d == "DENGUE")
    noisy_total = sum(r["cases"] for r in counts)
    bound = noise_bound(privacy["scale"], privacy["cells_noised"])
    assert abs(noisy_total - true_total) <= bound
    with pytest.raises(BudgetExhausted):
        _run(a, ingested, tmp_path, "second", **window)
    assert not (tmp_path / "second").exists()
    with NodeState(state_path(tmp_path / "home")) as state:
        assert len(TransferRegister(state).transfers()) == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"valid_to": date(2026, 6, 30)}, "expired on 2026-06-30"),
        ({"valid_from": date(2027, 1, 1)}, "valid from 2027-01-01"),
        ({"sender": "LAO"}, "data of KHM"),
        ({"embargo": Embargo(days=10_000)}, "only periods ending by"),
        ({"embargo": Embargo(after_publication=True)}, "national publication"),
        ({"datasets": ("cases",), "case_fields": ("sex",)}, None),
    ],
)
def test_refusals_write_nothing(
    ingested: Path, tmp_path: Path, change: dict[str, object], words: str | None
) -> None:
    a = _agreement(**change)
    if words is None:
        # Asking for a field the agreement does not allow.
        with pytest.raises(Refusal, match="'outcome' is not allowed"):
            _run(a, ingested, tmp_path, fields=["sex", "outcome"])
    else:
        with pytest.raises(Refusal, match=words):
            _run(a, ingested, tmp_path)
    assert not (tmp_path / "out").exists()
    with NodeState(state_path(tmp_path / "home")) as state:
        assert TransferRegister(state).transfers() == []


def test_stopped_agreement_and_existing_release_are_refused(ingested: Path, tmp_path: Path) -> None:
    a = _agreement(datasets=("counts",))
    _run(a, ingested, tmp_path)
    with pytest.raises(Refusal, match="already holds a release"):
        _run(a, ingested, tmp_path)
    with NodeState(state_path(tmp_path / "home")) as state:
        AgreementStops(state).stop(a.id, a.version, "renegotiation", NOW)
    with pytest.raises(Refusal, match="stopped on this node") as err:
        _run(a, ingested, tmp_path, "next")
    assert "new version" in err.value.fix
    _run(replace(a, version="2"), ingested, tmp_path, "v2")  # a new version is not stopped


def test_embargo_is_met_by_restricting_the_periods(ingested: Path, tmp_path: Path) -> None:
    late = _agreement(datasets=("counts",), embargo=Embargo(days=(TODAY - date(2025, 4, 1)).days))
    with pytest.raises(Refusal) as err:
        _run(late, ingested, tmp_path)
    cutoff = err.value.fix.split("--to ")[1].split()[0]
    _run(late, ingested, tmp_path, period_to=date.fromisoformat(cutoff))
    counts = pq.read_table(tmp_path / "out" / "counts.parquet")
    assert max(counts.column("period_end").to_pylist()) <= date.fromisoformat(cutoff)


def test_register_exports_csv(ingested: Path, tmp_path: Path) -> None:
    a = _agreement(datasets=("counts",))
    _run(a, ingested, tmp_path)
    _run(a, ingested, tmp_path, "two", period_to=date(2025, 2, 28))
    with NodeState(state_path(tmp_path / "home")) as state:
        n = TransferRegister(state).export_csv(tmp_path / "transfers.csv")
    with (tmp_path / "transfers.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert n == len(rows) == 2
    assert {r["agreement_sha256"] for r in rows} == {a.sha256}
    assert rows[0]["legal_basis"] == a.legal_basis and rows[0]["recipient"] == "hub"
    assert rows[1]["period_to"] <= "2025-02-28"


def test_receipt_counts_what_was_generalized(ingested: Path, tmp_path: Path) -> None:
    a = _agreement(datasets=("counts",), area_level=0, time_resolution="month")
    _run(a, ingested, tmp_path)
    receipt = json.loads((tmp_path / "out" / "receipt.json").read_text())
    dengue = sum(1 for d in _cases().column("disease").to_pylist() if d == "DENGUE")
    changed = receipt["datasets"]["counts"]["records_generalized"]
    # Every record was placed in a province (level 1) and dated by ISO week.
    assert changed == {"area": dengue, "period": dengue, "age": dengue}
    counts = pq.read_table(tmp_path / "out" / "counts.parquet").to_pylist()
    assert {r["area"] for r in counts} == {"KHM"} and {r["area_level"] for r in counts} == {0}
    assert {r["period_type"] for r in counts} == {"month"}


def test_line_list_and_counts_never_reach_one_recipient(ingested: Path, tmp_path: Path) -> None:
    counts = _agreement(datasets=("counts",), id="KHM-HUB-COUNTS")
    cases = _agreement(datasets=("cases",))
    _run(counts, ingested, tmp_path, "counts", period_to=date(2025, 2, 28))
    with pytest.raises(Refusal, match="could combine the line list and the counts") as err:
        _run(cases, ingested, tmp_path, "cases")
    assert "--from/--to" in err.value.fix
    assert not (tmp_path / "cases").exists()
    # Periods the recipient has not had as counts may go as a line list.
    _run(cases, ingested, tmp_path, "later", period_from=date(2025, 3, 3))
    # Another recipient may have either.
    _run(replace(cases, recipient="VNM", id="KHM-VNM"), ingested, tmp_path, "vnm")
