"""The node's state file, and the privacy ledger kept in it."""

from __future__ import annotations

import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from epibridge.node.ledger import BudgetExhausted, LedgerError, PrivacyLedger
from epibridge.node.state import SCHEMA_VERSION, NodeState, StateError

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def _spend(ledger: PrivacyLedger, release: str, epsilon: float, **kw: Any) -> float:
    args: dict[str, Any] = {
        "agreement_id": "THA-hub-dengue",
        "agreement_version": "1",
        "budget_period": "2026",
        "epsilon": epsilon,
        "budget": 1.0,
        "release_id": release,
        "at": AT,
    }
    args.update(kw)
    return ledger.spend(**args)


# -- the state file ---------------------------------------------------------------------


def test_state_file_is_created_with_its_schema(tmp_path: Path) -> None:
    path = tmp_path / "home" / "deeper" / "state.sqlite"
    with NodeState(path) as state:
        con = state.connection
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"privacy_ledger", "transfers", "agreement_stops"} <= tables
    assert path.is_file()
    with NodeState(path) as again:  # a second open neither recreates nor duplicates
        rows = again.connection.execute("SELECT version FROM schema_version").fetchall()
        assert rows == [(SCHEMA_VERSION,)]


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with NodeState(path) as state:
        state.connection.execute(
            "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,)
        )
    with pytest.raises(StateError, match=r"(?s)schema version 2, newer.*upgrade epibridge"):
        NodeState(path)


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"this is not SQLite at all, just some text " * 100)
    with pytest.raises(StateError, match="not a readable epibridge state file"):
        NodeState(path)


def test_closed_state_cannot_be_used(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        ledger = PrivacyLedger(state)
    with pytest.raises(sqlite3.ProgrammingError):
        ledger.spent("a", "2026")


def test_write_rolls_back_on_error(tmp_path: Path) -> None:
    def failing_write(state: NodeState) -> None:
        with state.write() as con:
            con.execute(
                "INSERT INTO agreement_stops (agreement_id, reason, stopped_at)"
                " VALUES ('a', 'r', '2026-01-01T00:00:00+00:00')"
            )
            raise RuntimeError("boom")

    with NodeState(tmp_path / "state.sqlite") as state:
        with pytest.raises(RuntimeError, match="boom"):
            failing_write(state)
        assert state.connection.execute("SELECT count(*) FROM agreement_stops").fetchone() == (0,)


# -- the ledger -------------------------------------------------------------------------


def test_spend_records_and_returns_what_is_left(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        ledger = PrivacyLedger(state)
        assert ledger.spent("THA-hub-dengue", "2026") == 0.0
        assert _spend(ledger, "r1", 0.25) == pytest.approx(0.75)
        assert _spend(ledger, "r2", 0.5, agreement_version="2") == pytest.approx(0.25)
        # every version of an agreement draws on one budget per period
        assert ledger.spent("THA-hub-dengue", "2026") == pytest.approx(0.75)
        assert ledger.spent("THA-hub-dengue", "2025") == 0.0
        entries = ledger.entries()
    assert [(e.release_id, e.agreement_version, e.epsilon) for e in entries] == [
        ("r1", "1", 0.25),
        ("r2", "2", 0.5),
    ]
    assert entries[0].spent_at == AT
    assert entries[0].budget == 1.0
    assert entries[0].budget_period == "2026"


def test_budget_exhausted_refuses_and_records_nothing(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        ledger = PrivacyLedger(state)
        _spend(ledger, "r1", 0.75)
        with pytest.raises(BudgetExhausted) as caught:
            _spend(ledger, "r2", 0.5)
        assert ledger.spent("THA-hub-dengue", "2026") == pytest.approx(0.75)
        assert [e.release_id for e in ledger.entries()] == ["r1"]
        # a later period and another agreement have their own budgets
        assert _spend(ledger, "r3", 0.5, budget_period="2027") == pytest.approx(0.5)
        assert _spend(ledger, "r4", 0.5, agreement_id="LAO-hub") == pytest.approx(0.5)
    message = str(caught.value)
    for part in ("THA-hub-dengue", "2026", "0.75", "of 1 ", "0.5", "next budget period"):
        assert part in message
    assert "smaller epsilon" in message
    assert caught.value.spent == pytest.approx(0.75)


def test_exact_steps_use_the_whole_budget(tmp_path: Path) -> None:
    # 0.1 summed ten times is 0.9999999999999999 or 1.0000000000000002 depending on order;
    # the tolerance lets exactly ten releases through, never an eleventh.
    with NodeState(tmp_path / "state.sqlite") as state:
        ledger = PrivacyLedger(state)
        left = [_spend(ledger, f"r{i}", 0.1) for i in range(10)]
        assert left[-1] == pytest.approx(0.0, abs=1e-9)
        assert left[-1] >= 0.0
        with pytest.raises(BudgetExhausted):
            _spend(ledger, "r10", 0.1)
        with pytest.raises(BudgetExhausted):
            _spend(ledger, "r11", 1e-6)


def test_ledger_persists_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with NodeState(path) as state:
        _spend(PrivacyLedger(state), "r1", 0.6)
    with NodeState(path) as state:
        ledger = PrivacyLedger(state)
        assert ledger.spent("THA-hub-dengue", "2026") == pytest.approx(0.6)
        with pytest.raises(BudgetExhausted):
            _spend(ledger, "r2", 0.6)
        assert [e.release_id for e in ledger.entries("THA-hub-dengue")] == ["r1"]
        assert ledger.entries("someone-else") == []


@pytest.mark.parametrize("epsilon", [0.0, -0.1, float("nan"), float("inf")])
def test_invalid_epsilon_is_refused(tmp_path: Path, epsilon: float) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        with pytest.raises(LedgerError, match="epsilon must be a positive finite number"):
            _spend(PrivacyLedger(state), "r1", epsilon)
        with pytest.raises(LedgerError, match="budget must be a positive finite number"):
            _spend(PrivacyLedger(state), "r1", 0.1, budget=epsilon)


def test_a_release_spends_once(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        ledger = PrivacyLedger(state)
        _spend(ledger, "r1", 0.1)
        with pytest.raises(LedgerError, match="already spent"):
            _spend(ledger, "r1", 0.1)
        assert ledger.spent("THA-hub-dengue", "2026") == pytest.approx(0.1)


def test_times_are_stored_in_utc_and_naive_times_refused(tmp_path: Path) -> None:
    bangkok = timezone(timedelta(hours=7))
    with NodeState(tmp_path / "state.sqlite") as state:
        ledger = PrivacyLedger(state)
        _spend(ledger, "r1", 0.1, at=datetime(2026, 11, 23, 16, 30, tzinfo=bangkok))
        assert ledger.entries()[0].spent_at == AT
        assert ledger.entries()[0].spent_at.tzinfo == UTC
        with pytest.raises(ValueError, match="timezone-aware"):
            _spend(ledger, "r2", 0.1, at=datetime(2026, 11, 23, 9, 30))


def test_ledger_is_append_only(tmp_path: Path) -> None:
    with NodeState(tmp_path / "state.sqlite") as state:
        _spend(PrivacyLedger(state), "r1", 0.9)
        con = state.connection
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("UPDATE privacy_ledger SET epsilon = 0.0001")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("DELETE FROM privacy_ledger")
        assert PrivacyLedger(state).spent("THA-hub-dengue", "2026") == pytest.approx(0.9)


# -- two processes on one file ----------------------------------------------------------

WORKERS = 4
TRIES = 8


def _spender(path: str, worker: int, start: Any, results: Any) -> None:
    """Child process: open the file on its own connection and spend 0.1 as often as allowed."""
    done = 0
    with NodeState(Path(path)) as state:
        ledger = PrivacyLedger(state)
        start.wait()
        for i in range(TRIES):
            try:
                _spend(ledger, f"w{worker}-{i}", 0.1)
                done += 1
            except BudgetExhausted:
                pass
    results.put(done)


def test_concurrent_processes_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    NodeState(path).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_spender, args=(str(path), w, start, results)) for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    done = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    # 32 attempts of 0.1 against a budget of 1.0: exactly ten succeed, whoever wins them
    assert sum(done) == 10
    with NodeState(path) as state:
        ledger = PrivacyLedger(state)
        assert len(ledger.entries()) == 10
        assert ledger.spent("THA-hub-dengue", "2026") <= 1.0 + 1e-9
