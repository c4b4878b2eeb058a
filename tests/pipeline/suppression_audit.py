"""An attacker's view of one suppressed block, solved exactly with integer programming.

Written without the suppression code's hypercube logic: it knows only the layout of an
extended block (the last index of each dimension is the total over that dimension).
From that it writes every additivity equation, fixes the published entries to their
values, and asks `scipy.optimize.milp` for the least and greatest value each
suppressed entry can take over non-negative integer tables that are >= ``floor`` on the
suppressed entries. That is the feasible interval an attacker who knows the published
table, its additivity and those bounds can derive.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, milp

Index = tuple[int, ...]


@dataclass(frozen=True)
class Interval:
    """Feasible values of one suppressed entry; ``high`` is ``math.inf`` when unbounded."""

    low: int
    high: float


def additivity_equations(shape: tuple[int, ...]) -> list[tuple[list[Index], Index]]:
    """Every equation of an extended block as (parts, total): along each dimension, for
    every fixed position of the other dimensions (totals included), the entries at
    indices 0..n-1 sum to the entry at index n (the last one)."""
    equations = []
    for axis, size in enumerate(shape):
        others = [range(n) if d != axis else range(1) for d, n in enumerate(shape)]
        for fixed in itertools.product(*others):

            def at(i: int, fixed: Index = fixed, axis: int = axis) -> Index:
                return (*fixed[:axis], i, *fixed[axis + 1 :])

            equations.append(([at(i) for i in range(size - 1)], at(size - 1)))
    return equations


def audit_block(
    values: npt.NDArray[np.int64], suppressed: npt.NDArray[np.bool_], floor: int
) -> dict[Index, Interval]:
    """Feasible interval of every suppressed entry of one extended block.

    Raises AssertionError when the published entries break an equation, or when the
    true values are not feasible (either would mean the audit is asking the wrong question).
    """
    shape = values.shape
    hidden = [tuple(int(i) for i in ix) for ix in np.argwhere(suppressed)]
    if not hidden:
        for parts, total in additivity_equations(shape):
            assert sum(int(values[p]) for p in parts) == int(values[total])
        return {}
    column = {ix: j for j, ix in enumerate(hidden)}
    rows: list[npt.NDArray[np.float64]] = []
    rhs: list[float] = []
    for parts, total in additivity_equations(shape):
        row = np.zeros(len(hidden))
        constant = 0
        for ix, coefficient in [*((p, 1) for p in parts), (total, -1)]:
            if ix in column:
                row[column[ix]] += coefficient
            else:
                constant += coefficient * int(values[ix])
        if row.any():
            rows.append(row)
            rhs.append(-constant)
        else:
            assert constant == 0, f"published entries break the equation for total {total}"
    a = np.array(rows).reshape(len(rows), len(hidden))
    b = np.array(rhs)
    truth = np.array([values[ix] for ix in hidden], dtype=np.float64)
    assert np.allclose(a @ truth, b) and (truth >= floor).all(), "true table is not feasible"
    equal = LinearConstraint(a, b, b)
    integers = np.ones(len(hidden), dtype=np.int64)
    bounds = Bounds(floor, np.inf)
    unbounded = _unbounded_above(a)
    result = {}
    for j, ix in enumerate(hidden):
        goal = np.zeros(len(hidden))
        goal[j] = 1.0
        low = milp(goal, constraints=equal, integrality=integers, bounds=bounds)
        assert low.status == 0, low.message
        if unbounded[j]:
            high = math.inf
        else:
            top = milp(-goal, constraints=equal, integrality=integers, bounds=bounds)
            assert top.status == 0, top.message
            high = float(round(-top.fun))
        result[ix] = Interval(round(low.fun), high)
    return result


def _unbounded_above(a: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which variables grow without limit: those some direction r >= 0 with a @ r = 0 moves.

    One LP finds them all: maximise sum(s) with s <= r, 0 <= s <= 1 over that cone. A cone
    is closed under scaling and sums, so one ray is positive wherever any ray is, and at
    the optimum s is 1 exactly there. The feasible set holds an integer point (the true
    table) and a rational ray scales to an integer one, so this is exact for integers.
    """
    n_rows, n = a.shape
    cone = LinearConstraint(np.hstack([a, np.zeros((n_rows, n))]), 0.0, 0.0)
    below = LinearConstraint(np.hstack([-np.eye(n), np.eye(n)]), -np.inf, 0.0)
    lower = np.zeros(2 * n)
    upper = np.concatenate([np.full(n, np.inf), np.ones(n)])
    goal = np.concatenate([np.zeros(n), -np.ones(n)])
    ray = milp(goal, constraints=[cone, below], bounds=Bounds(lower, upper))
    assert ray.status == 0, ray.message
    return np.asarray(ray.x[n:] > 0.5)


def violations(
    values: npt.NDArray[np.int64],
    primary: npt.NDArray[np.bool_],
    suppressed: npt.NDArray[np.bool_],
    k: int,
    floor: int,
) -> list[str]:
    """Broken promises in one block: a primary whose maximum is below k, a suppressed entry
    with a single feasible value, or a true value outside its own interval."""
    problems = []
    for ix, interval in audit_block(values, suppressed, floor).items():
        true = int(values[ix])
        high = interval.high if math.isinf(interval.high) else int(interval.high)
        if not interval.low <= true <= interval.high:
            problems.append(f"{ix}: true value {true} outside [{interval.low}, {high}]")
        if primary[ix] and interval.high < k:
            problems.append(f"{ix}: primary, but at most {high} < k = {k}")
        if interval.low >= interval.high:
            problems.append(f"{ix}: recoverable exactly as {interval.low}")
    return problems
