"""Properties of whole releases over random line lists and random agreements.

The truth is recomputed here independently (plain Python over the input rows), each
released block is rebuilt from the release file, and the integer-programming audit of
``tests/pipeline/suppression_audit.py`` solves every suppressed entry's feasible interval.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epibridge.model.agreement import Agreement
from epibridge.model.schema import CASES
from epibridge.node.ledger import BudgetExhausted, PrivacyLedger
from epibridge.node.state import NodeState
from epibridge.pipeline.release_counts import SEXES, UNKNOWN_AGE, age_labels
from epibridge.protect import protect
from tests.pipeline.suppression_audit import violations
from tests.test_protect import _agreement

PROVINCES = ("KH-12", "KH-1", "KH-2")
FIRST = date(2025, 3, 3)

row = st.tuples(
    st.integers(0, 2),  # province
    st.integers(0, 40),  # days after FIRST
    st.sampled_from(["M", "F", "U", None]),
    st.one_of(st.none(), st.integers(0, 90)),
    st.sampled_from(["DENGUE", "DENGUE", "MALARIA"]),
)
agreement_changes = st.fixed_dictionaries(
    {
        "k": st.integers(2, 6),
        "show_zeros": st.booleans(),
        "count_fields": st.sampled_from([(), ("sex",), ("age_band",), ("sex", "age_band")]),
        "area_level": st.sampled_from([0, 1]),
        "time_resolution": st.sampled_from(["week", "month"]),
        "age_bands": st.sampled_from([(0,), (0, 15), (0, 5, 15, 65)]),
    }
)


def _table(rows: list[tuple[int, int, str | None, int | None, str]]) -> pa.Table:
    onset = [FIRST + timedelta(days=r[1]) for r in rows]
    weeks = [d - timedelta(days=d.weekday()) for d in onset]
    n = len(rows)
    cols = {
        "case_id": [f"c{i}" for i in range(n)],
        "country": ["KHM"] * n,
        "admin1": [PROVINCES[r[0]] for r in rows],
        "area": [PROVINCES[r[0]] for r in rows],
        "area_level": [1] * n,
        "disease": [r[4] for r in rows],
        "date_onset": onset,
        "period": [f"{w.isocalendar()[0]}-W{w.isocalendar()[1]:02d}" for w in weeks],
        "period_type": ["week"] * n,
        "calendar": ["iso"] * n,
        "period_start": weeks,
        "period_end": [w + timedelta(days=6) for w in weeks],
        "sex": [r[2] for r in rows],
        "age_years": [None if r[3] is None else float(r[3]) for r in rows],
        "case_count": [1] * n,
        "source_file": ["x.csv"] * n,
        "source_record": list(range(1, n + 1)),
    }
    full = {f.name: cols.get(f.name, [None] * n) for f in CASES}
    return pa.Table.from_pydict(full, schema=CASES)


def _band(age: int | None, edges: tuple[int, ...]) -> str:
    if age is None:
        return UNKNOWN_AGE
    labels = age_labels(edges)
    return labels[max(i for i, e in enumerate(edges) if age >= e)]


def _truth(
    rows: list[tuple[int, int, str | None, int | None, str]], a: Agreement
) -> Counter[tuple[object, ...]]:
    """Cases per (area, period start, sex, age band), computed without the pipeline."""
    found: Counter[tuple[object, ...]] = Counter()
    for prov, day, sex, age, disease in rows:
        if disease != "DENGUE":
            continue
        week = FIRST + timedelta(days=day)
        week -= timedelta(days=week.weekday())
        mid = week + timedelta(days=3)  # a week belongs to the month of its Thursday
        start = week if a.time_resolution == "week" else mid.replace(day=1)
        area = PROVINCES[prov] if a.area_level == 1 else "KHM"
        found[(area, start, sex or "U", _band(age, a.age_bands))] += 1
    return found


def _blocks(
    truth: Counter[tuple[object, ...]], release: list[dict[str, object]], a: Agreement
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(true extended block, suppressed mask) for every released block."""
    dims: list[tuple[str, tuple[str, ...]]] = []
    if "sex" in a.count_fields:
        dims.append(("sex", SEXES))
    if "age_band" in a.count_fields:
        dims.append(("age_band", (*age_labels(a.age_bands), UNKNOWN_AGE)))
    shape = tuple(len(c) + 1 for _, c in dims)
    out = []
    keys = {(r["area"], r["period_start"]) for r in release}
    for area, start in keys:
        values = np.zeros(shape, dtype=np.int64)
        for (t_area, t_start, sex, band), n in truth.items():
            if (t_area, t_start) != (area, start):
                continue
            cell = {"sex": sex, "age_band": band}
            idx = tuple(cats.index(cell[name]) for name, cats in dims)
            for corner in itertools.product(
                *[(i, len(c)) for i, (_, c) in zip(idx, dims, strict=True)]
            ):
                values[corner] += n
        hidden = np.zeros(shape, dtype=bool)
        for r in release:
            if (r["area"], r["period_start"]) != (area, start):
                continue
            idx = tuple(
                len(cats) if r[name] is None else cats.index(str(r[name])) for name, cats in dims
            )
            hidden[idx] = bool(r["cases_suppressed"])
            if not r["cases_suppressed"]:
                assert r["cases"] == values[idx], "a published entry differs from the truth"
        out.append((values, hidden))
    return out


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(row, min_size=1, max_size=60), change=agreement_changes)
def test_every_release_keeps_the_promise(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, int, str | None, int | None, str]],
    change: dict[str, object],
) -> None:
    tmp = tmp_path_factory.mktemp("p")
    (tmp / "in").mkdir()
    pq.write_table(_table(rows), tmp / "in" / "cases.parquet")
    a = replace(_agreement(datasets=("counts",)), **change)  # type: ignore[arg-type]
    protect(a, tmp / "in", tmp / "out", tmp / "home", date(2026, 11, 23), datetime.now(UTC))
    release = pq.read_table(tmp / "out" / "counts.parquet").to_pylist()
    z = 1 if a.show_zeros else 0
    for r in release:
        if not r["cases_suppressed"]:
            assert not z <= r["cases"] < a.k or (r["cases"] == 0 and a.show_zeros)
    truth = _truth(rows, a)
    assert sum(truth.values()) == sum(
        r["cases"] or 0 for r in release if r["sex"] is None and r["age_band"] is None
    ) + sum(
        n
        for (area, start, _, _), n in truth.items()
        if any(
            r["area"] == area
            and r["period_start"] == start
            and r["cases_suppressed"]
            and r["sex"] is None
            and r["age_band"] is None
            for r in release
        )
    )
    for values, hidden in _blocks(truth, release, a):
        primary = hidden & (values >= z) & (values < a.k)
        assert (primary == ((values >= z) & (values < a.k))).all(), "a small entry was published"
        assert violations(values, primary, hidden, a.k, z) == []


@settings(max_examples=30, deadline=None)
@given(
    budget=st.floats(0.5, 5.0),
    spends=st.lists(st.floats(0.05, 2.0), min_size=1, max_size=25),
)
def test_the_budget_is_never_exceeded(
    tmp_path_factory: pytest.TempPathFactory, budget: float, spends: list[float]
) -> None:
    path: Path = tmp_path_factory.mktemp("ledger") / "state.sqlite"
    with NodeState(path) as state:
        ledger = PrivacyLedger(state)
        accepted = 0.0
        for i, eps in enumerate(spends):
            try:
                ledger.spend(
                    agreement_id="A",
                    agreement_version="1",
                    budget_period="2026",
                    epsilon=eps,
                    budget=budget,
                    release_id=f"r{i}",
                    at=datetime.now(UTC),
                )
                accepted += eps
            except BudgetExhausted:
                assert accepted + eps > budget
        assert accepted <= budget + 1e-9
        assert ledger.spent("A", "2026") == pytest.approx(accepted)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(row, min_size=1, max_size=60),
    epsilon=st.floats(0.2, 3.0),
    by_sex=st.booleans(),
)
def test_noisy_totals_stay_within_the_noise(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, int, str | None, int | None, str]],
    epsilon: float,
    by_sex: bool,
) -> None:
    from epibridge.model.agreement import Privacy
    from epibridge.pipeline.noise import noise_bound

    tmp = tmp_path_factory.mktemp("dp")
    (tmp / "in").mkdir()
    pq.write_table(_table(rows), tmp / "in" / "cases.parquet")
    a = replace(
        _agreement(datasets=("counts",)),
        count_fields=("sex",) if by_sex else (),
        privacy=Privacy(epsilon=epsilon, budget=10.0),
    )
    result = protect(
        a,
        tmp / "in",
        tmp / "out",
        tmp / "home",
        date(2026, 11, 23),
        datetime.now(UTC),
        period_from=date(2025, 3, 1),
        period_to=date(2025, 4, 30),
    )
    info = result.receipt["datasets"]["counts"]["privacy"]
    release = pq.read_table(tmp / "out" / "counts.parquet").to_pylist()
    grand = [r for r in release if r["sex"] is None]
    # Every province of the registry and every week in the data's range has a block.
    assert len({r["area"] for r in grand}) == 25
    truth = sum(1 for r in rows if r[4] == "DENGUE")
    noisy = sum(r["cases"] for r in grand)
    assert abs(noisy - truth) <= noise_bound(info["scale"], info["cells_noised"])
    # Margins are sums of the noisy cells (post-processing), so they add up exactly.
    if by_sex:
        for g in grand:
            parts = [
                r["cases"]
                for r in release
                if r["sex"] is not None
                and (r["area"], r["period_start"]) == (g["area"], g["period_start"])
            ]
            assert sum(parts) == g["cases"]
