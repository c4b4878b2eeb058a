"""The privacy-budget ledger: every epsilon spent, per agreement and budget period.

Each release under differential privacy spends its epsilon before it is written; the
agreement caps what all releases of one budget period (say, a year) may spend together,
across every version of the agreement. Releases compose: k releases of epsilon each are
k * epsilon private together, which is what the budget bounds.

The check and the spend are one ``BEGIN IMMEDIATE`` transaction, so two processes
releasing at the same moment (a scheduled job and a person at the terminal) cannot both
read "enough left" and together overspend. The table is append-only (triggers in the
state file): a spend is never undone, even when the release fails after it, because the
noise was drawn and may have been seen.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from epibridge.model.errors import EpibridgeError
from epibridge.node.state import NodeState, utc_text, utc_time

# Sums of floats like 0.1 + 0.2 land a few ulps off; a budget spent in exact steps
# (ten releases of 0.1 against 1.0) must not be refused for that.
TOLERANCE = 1e-9


class BudgetExhausted(EpibridgeError):  # noqa: N818 (a refusal, not a failure)
    """This release would take the agreement past its privacy budget for the period."""

    def __init__(
        self, agreement_id: str, budget_period: str, spent: float, epsilon: float, budget: float
    ) -> None:
        self.agreement_id = agreement_id
        self.budget_period = budget_period
        self.spent = spent
        self.epsilon = epsilon
        self.budget = budget
        super().__init__(
            f"release refused: the privacy budget of agreement {agreement_id} for budget "
            f"period {budget_period} is used up: {spent:g} of {budget:g} already spent, "
            f"and this release needs epsilon {epsilon:g} more\n"
            "  what to do: wait for the next budget period, or agree a new version of the "
            "agreement with a smaller epsilon per release"
        )


class LedgerError(EpibridgeError):
    """A spend that cannot be recorded (invalid epsilon or budget, or a repeated release)."""


@dataclass(frozen=True)
class LedgerEntry:
    """One spend: which release used how much of which agreement's budget, and when."""

    agreement_id: str
    agreement_version: str
    budget_period: str
    epsilon: float
    budget: float
    release_id: str
    spent_at: datetime


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LedgerError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise LedgerError(f"{name} must be a positive finite number, got {value!r}")


class PrivacyLedger:
    """Spends and reads the privacy budget recorded in the node's state file."""

    def __init__(self, state: NodeState) -> None:
        self._state = state

    def spent(self, agreement_id: str, budget_period: str) -> float:
        """Epsilon spent so far under ``agreement_id`` (all versions) in ``budget_period``."""
        return self._spent(self._state.connection, agreement_id, budget_period)

    @staticmethod
    def _spent(con: sqlite3.Connection, agreement_id: str, budget_period: str) -> float:
        rows = con.execute(
            "SELECT epsilon FROM privacy_ledger WHERE agreement_id = ? AND budget_period = ?",
            (agreement_id, budget_period),
        ).fetchall()
        # fsum: exact, and independent of the order SQLite returns rows in.
        return math.fsum(r[0] for r in rows)

    def spend(
        self,
        *,
        agreement_id: str,
        agreement_version: str,
        budget_period: str,
        epsilon: float,
        budget: float,
        release_id: str,
        at: datetime,
    ) -> float:
        """Record ``epsilon`` spent by ``release_id``; return the budget left for the period.

        Raises ``BudgetExhausted`` (recording nothing) when the spend would pass ``budget``.
        """
        _positive("epsilon", epsilon)
        _positive("budget", budget)
        when = utc_text(at, "the time of the spend")
        with self._state.write() as con:
            spent = self._spent(con, agreement_id, budget_period)
            if spent + epsilon > budget + TOLERANCE:
                raise BudgetExhausted(agreement_id, budget_period, spent, epsilon, budget)
            try:
                con.execute(
                    "INSERT INTO privacy_ledger (agreement_id, agreement_version, budget_period,"
                    " epsilon, budget, release_id, spent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        agreement_id,
                        agreement_version,
                        budget_period,
                        float(epsilon),
                        float(budget),
                        release_id,
                        when,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise LedgerError(
                    f"release {release_id} has already spent privacy budget\n"
                    "  what to do: give each release (each draw of noise) a new release id"
                ) from exc
        return max(0.0, budget - (spent + epsilon))

    def entries(self, agreement_id: str | None = None) -> list[LedgerEntry]:
        """Every spend, oldest first; only those of ``agreement_id`` when given."""
        sql = (
            "SELECT agreement_id, agreement_version, budget_period, epsilon, budget,"
            " release_id, spent_at FROM privacy_ledger"
        )
        args: tuple[str, ...] = ()
        if agreement_id is not None:
            sql += " WHERE agreement_id = ?"
            args = (agreement_id,)
        rows = self._state.connection.execute(sql + " ORDER BY seq", args).fetchall()
        return [
            LedgerEntry(a, v, p, float(e), float(b), r, utc_time(t)) for a, v, p, e, b, r, t in rows
        ]
