"""Small-cell suppression: the promise checked by an independent integer-programming audit."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epibridge.model.errors import EpibridgeError
from epibridge.pipeline.suppress import (
    CHUNK,
    Suppression,
    SuppressionError,
    suppress,
    with_margins,
)
from tests.pipeline.suppression_audit import Interval, audit_block, violations

# Skewed small counts: many zeros, many below any threshold, some mid-sized, a few large.
COUNTS = st.one_of(
    st.just(0), st.just(0), st.integers(1, 4), st.integers(0, 12), st.integers(40, 400)
)


@st.composite
def batches(draw: st.DrawFn, max_cells: int) -> tuple[npt.NDArray[np.int64], int, bool]:
    """A batch of blocks with 0..3 strata of 1..4 categories (at most ``max_cells`` cells)."""
    m = draw(st.integers(0, 3))
    sizes: list[int] = []
    for _ in range(m):
        sizes.append(draw(st.integers(1, min(4, max_cells // max(1, math.prod(sizes))))))
    n_blocks = draw(st.integers(1, 3))
    flat = draw(
        st.lists(COUNTS, min_size=n_blocks * math.prod(sizes), max_size=n_blocks * math.prod(sizes))
    )
    cells = np.array(flat, dtype=np.int64).reshape(n_blocks, *sizes)
    return cells, draw(st.integers(2, 10)), draw(st.booleans())


def _summed(cells: npt.NDArray[np.int64], index: tuple[int, ...]) -> int:
    """An extended entry recomputed from the cells alone: sum over the totalled dimensions."""
    ranges = [
        range(n) if i == n else range(i, i + 1) for i, n in zip(index, cells.shape, strict=True)
    ]
    return sum(int(cells[ix]) for ix in itertools.product(*ranges))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(max_cells=24))
def test_every_block_keeps_the_promise_under_the_milp_audit(
    case: tuple[npt.NDArray[np.int64], int, bool],
) -> None:
    cells, k, show_zeros = case
    result = suppress(cells, k, show_zeros)
    floor = int(show_zeros)
    for b in range(cells.shape[0]):
        problems = violations(result.values[b], result.primary[b], result.suppressed[b], k, floor)
        assert not problems, f"block {cells[b].tolist()} k={k} show_zeros={show_zeros}: {problems}"


@settings(max_examples=100, deadline=None)
@given(batches(max_cells=64))
def test_release_structure(case: tuple[npt.NDArray[np.int64], int, bool]) -> None:
    cells, k, show_zeros = case
    result = suppress(cells, k, show_zeros)
    floor = int(show_zeros)
    extended = tuple(n + 1 for n in cells.shape[1:])
    assert result.values.shape == (cells.shape[0], *extended)
    assert result.values.dtype == np.int64
    for b in range(cells.shape[0]):
        for index in itertools.product(*(range(n) for n in extended)):
            assert result.values[(b, *index)] == _summed(cells[b], index)
    published = result.values[~result.suppressed]
    assert not ((published >= floor) & (published < k)).any()
    assert np.array_equal(result.primary, (result.values >= floor) & (result.values < k))
    assert not (result.primary & result.secondary).any()
    if show_zeros:
        assert not (result.suppressed & (result.values == 0)).any()
    # Blocks are independent: each block alone gets the pattern it got in the batch.
    for b in range(cells.shape[0]):
        alone = suppress(cells[b : b + 1], k, show_zeros)
        assert np.array_equal(alone.secondary[0], result.secondary[b])


def _pattern(result: Suppression, block: int = 0) -> object:
    """One block's suppressed entries as nested lists of 0/1."""
    return result.suppressed[block].astype(int).tolist()


def test_one_small_cell_in_two_by_two_suppresses_the_rectangle() -> None:
    result = suppress([[[1, 10], [10, 10]]], k=3, show_zeros=True)
    # Rows: the two sexes and their total; columns: two ages and their total.
    assert _pattern(result) == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert result.primary[0].astype(int).tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    # x00 = t, x01 = x10 = 11 - t, x11 = 9 + t with everything >= 1: t in 1..10.
    assert audit_block(result.values[0], result.suppressed[0], floor=1) == {
        (0, 0): Interval(1, 10),
        (0, 1): Interval(1, 10),
        (1, 0): Interval(1, 10),
        (1, 1): Interval(10, 19),
    }


def test_small_row_and_its_total_take_the_other_row_with_them() -> None:
    result = suppress([[[1, 1], [20, 20]]], k=3, show_zeros=True)
    # Row 0 and its total (2) are primary; the column totals pin nothing once row 1
    # and its total are suppressed too. Column totals and the grand total stay.
    assert result.primary[0].astype(int).tolist() == [[1, 1, 1], [0, 0, 0], [0, 0, 0]]
    assert _pattern(result) == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    intervals = audit_block(result.values[0], result.suppressed[0], floor=1)
    assert intervals[(0, 0)] == Interval(1, 20)
    assert intervals[(0, 2)] == Interval(2, 40)


def test_later_cubes_reuse_earlier_suppressions() -> None:
    # Ages 0/1 x sexes 0/1 with a published zero: the 1 at (0, 0) can only hide behind
    # totals (its cube takes the grand total); the second 1 then reuses that cube's
    # suppressions instead of opening row 1 (which would cost its cell and row total).
    result = suppress([[[1, 1], [0, 9]]], k=3, show_zeros=True)
    assert _pattern(result) == [[1, 1, 1], [0, 0, 0], [1, 1, 1]]
    assert result.secondary[0].astype(int).tolist() == [[0, 0, 0], [0, 0, 0], [0, 1, 1]]
    intervals = audit_block(result.values[0], result.suppressed[0], floor=1)
    assert intervals[(0, 0)] == Interval(1, math.inf)
    assert intervals[(2, 1)] == Interval(10, math.inf)


def test_one_dimension_pairs_the_small_cell_with_the_smaller_neighbour() -> None:
    result = suppress([[2, 5, 7]], k=3, show_zeros=True)
    assert _pattern(result) == [1, 1, 0, 0]
    assert audit_block(result.values[0], result.suppressed[0], floor=1) == {
        (0,): Interval(1, 6),
        (1,): Interval(1, 6),
    }


def test_published_zeros_are_never_suppressed() -> None:
    shown = suppress([[1, 0, 0]], k=5, show_zeros=True)
    # The zeros cannot hide the 1, so the total goes with it and both are unbounded.
    assert _pattern(shown) == [1, 0, 0, 1]
    assert not shown.secondary.any()
    assert audit_block(shown.values[0], shown.suppressed[0], floor=1) == {
        (0,): Interval(1, math.inf),
        (3,): Interval(1, math.inf),
    }
    hidden = suppress([[1, 0, 0]], k=5, show_zeros=False)
    assert _pattern(hidden) == [1, 1, 1, 1]
    assert hidden.primary.all()


def test_no_strata_is_primary_suppression_only() -> None:
    result = suppress([3, 0, 12], k=5, show_zeros=False)
    assert result.values.tolist() == [3, 0, 12]
    assert result.primary.tolist() == [True, True, False]
    assert not result.secondary.any()
    assert suppress([3, 0, 12], k=5, show_zeros=True).primary.tolist() == [True, False, False]


def test_dimensions_of_size_one() -> None:
    single = suppress([[[4]]], k=5, show_zeros=True)
    assert single.values.tolist() == [[[4, 4], [4, 4]]]
    assert single.primary.all() and not single.secondary.any()
    # Two sexes, one age band: a cell equals its row total, so rows go together.
    result = suppress([[[3], [9]]], k=5, show_zeros=True)
    assert _pattern(result) == [[1, 1], [1, 1], [0, 0]]
    assert audit_block(result.values[0], result.suppressed[0], floor=1)[(0, 0)] == Interval(1, 11)


def test_large_counts_take_the_wide_integer_path() -> None:
    big = 2**40
    result = suppress([[[1, big], [big, big]]], k=3, show_zeros=True)
    assert result.values[0, 2, 2] == 1 + 3 * big
    assert _pattern(result) == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]


def test_many_chunks_threads_and_order_do_not_change_any_block() -> None:
    # More distinct blocks than one search chunk, with repeats (the all-small ones).
    rng = np.random.default_rng(7)
    cells = rng.poisson(rng.gamma(1.0, 2.0, 3 * CHUNK)[:, None, None], size=(3 * CHUNK, 2, 3))
    result = suppress(cells, k=4, show_zeros=True)
    assert result.secondary.any()
    threaded = suppress(cells, k=4, show_zeros=True, workers=2)
    assert np.array_equal(threaded.secondary, result.secondary)
    order = rng.permutation(len(cells))
    shuffled = suppress(cells[order], k=4, show_zeros=True)
    assert np.array_equal(shuffled.secondary, result.secondary[order])
    for b in rng.choice(len(cells), size=20, replace=False):
        assert np.array_equal(suppress(cells[b : b + 1], 4, True).secondary[0], result.secondary[b])


def test_with_margins_fills_every_total() -> None:
    extended = with_margins([[[1, 2, 3], [4, 5, 6]]])
    assert extended.tolist() == [[[1, 2, 3, 6], [4, 5, 6, 15], [5, 7, 9, 21]]]
    assert with_margins(np.zeros((0, 3, 8), dtype=np.int64)).shape == (0, 4, 9)


def test_the_audit_catches_unsafe_patterns() -> None:
    values = with_margins([[1, 5, 6]])[0]
    lone = np.array([True, False, False, False])
    # One suppressed cell with its total published: recovered exactly, and known small.
    assert audit_block(values, lone, floor=0) == {(0,): Interval(1, 1)}
    problems = violations(values, lone, lone, k=3, floor=0)
    assert any("recoverable" in p for p in problems)
    assert any("primary, but at most 1" in p for p in problems)
    # Two small cells hide each other but their published total shows both are small.
    values = with_margins([[1, 1, 20]])[0]
    pair = np.array([True, True, False, False])
    assert audit_block(values, pair, floor=0) == {(0,): Interval(0, 2), (1,): Interval(0, 2)}
    assert violations(values, pair, pair, k=5, floor=0) == [
        "(0,): primary, but at most 2 < k = 5",
        "(1,): primary, but at most 2 < k = 5",
    ]


@pytest.mark.parametrize(
    ("cells", "k", "message"),
    [
        ([[1, -2, 3]], 5, "non-negative, found -2 at index (0, 1)"),
        ([[1, 2]], 1, "at least 2, got 1"),
        ([[1, 2]], True, "at least 2, got True"),
        ([[1.5, 2.0]], 5, "must be integers, got float64"),
        (7, 5, "leading block axis"),
        (np.zeros((2, 0), dtype=np.int64), 5, "at least one category"),
        (np.ones((1, 2, 2, 2, 2), dtype=np.int64), 5, "at most 3 strata dimensions"),
    ],
)
def test_bad_input_is_refused_with_a_message(cells: object, k: int, message: str) -> None:
    with pytest.raises(SuppressionError) as raised:
        suppress(cells, k, show_zeros=False)  # type: ignore[arg-type]
    assert isinstance(raised.value, EpibridgeError)
    assert message in str(raised.value)
