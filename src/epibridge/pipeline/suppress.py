"""Small-cell suppression of aggregate counts, with complementary suppression.

A release is a batch of blocks, one per (area, period, disease). A block cross-classifies
its counts by up to a few strata (typically sex x age band) and is published with every
within-block margin, up to the block's grand total. No total across blocks is
published, so blocks are independent tables. ``cells`` has shape (B, n1, ..., nm); the
extended array has shape (B, n1+1, ..., nm+1), the last index of each dimension being
the total over it.

With threshold ``k`` and ``z = 1 if show_zeros else 0``, every entry (cell or margin)
whose value lies in [z, k-1] is a primary suppression. Complementary suppressions are
then added (by the hypercube method, :mod:`epibridge.pipeline.hypercube`) so that an
attacker who knows every published entry, every additivity equation of the block, that
counts are non-negative integers and that suppressed entries are >= z, finds:

1. for every primary-suppressed entry, the maximum feasible value is >= k (the attacker
   cannot prove the entry is small);
2. for every suppressed entry (primary or secondary), the minimum feasible value is
   less than the maximum feasible value (none is recoverable exactly).

With ``show_zeros`` a zero is published as it is and never suppressed. Identical
blocks get identical patterns, so each distinct block is protected once.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from epibridge.model.errors import EpibridgeError
from epibridge.pipeline.hypercube import BoolArray, IntArray, positions, protect_chunk

CHUNK = 1 << 13
"""Distinct blocks searched at once. Small enough that a position's search (entries x
chunk, int32) stays in cache: 8192 ran ~15% faster than 32768 or 65536 on the benchmark."""


MAX_STRATA = 3
"""Strata dimensions per block: the hypercube search key is sized for 2**3 corners."""


class SuppressionError(EpibridgeError):
    """Counts or parameters that small-cell suppression cannot work with."""


@dataclass(frozen=True)
class Suppression:
    """The protected release of a batch of blocks, in extended shape (B, n1+1, ..., nm+1)."""

    values: IntArray  # true cells and margins (int64)
    primary: BoolArray  # value in [z, k-1]
    secondary: BoolArray  # added to protect the primaries; disjoint from primary
    k: int
    show_zeros: bool

    @property
    def suppressed(self) -> BoolArray:
        """Every entry that is not published."""
        return self.primary | self.secondary


def _checked(cells: npt.ArrayLike) -> IntArray:
    array = np.asarray(cells)
    if array.ndim < 1:
        raise SuppressionError(
            "counts must have a leading block axis: shape (blocks, n1, ..., nm), "
            "got a scalar; wrap a single block as [counts]"
        )
    if array.dtype.kind not in "iub" and array.size:
        raise SuppressionError(
            f"counts must be integers, got {array.dtype}; round or cast them before suppression"
        )
    if array.ndim - 1 > MAX_STRATA:
        raise SuppressionError(
            f"at most {MAX_STRATA} strata dimensions per block are supported, got "
            f"{array.ndim - 1} (shape {array.shape}); publish finer tables as separate releases"
        )
    if 0 in array.shape[1:]:
        raise SuppressionError(
            f"every strata dimension needs at least one category, got shape {array.shape}"
        )
    counts = array.astype(np.int64, copy=False)
    if counts.size and counts.min() < 0:
        where = tuple(int(i) for i in np.argwhere(counts < 0)[0])
        raise SuppressionError(
            f"counts must be non-negative, found {counts[where]} at index {where}; "
            "fix the source data or the aggregation that produced it"
        )
    return counts


def with_margins(cells: npt.ArrayLike) -> IntArray:
    """Cells (B, n1, ..., nm) -> extended (B, n1+1, ..., nm+1) with every within-block
    margin: index n_d of dimension d holds the total over d (totals of totals included)."""
    return _extend(_checked(cells))


def _extend(counts: IntArray) -> IntArray:
    sizes = counts.shape[1:]
    extended = np.empty((counts.shape[0], *(n + 1 for n in sizes)), dtype=np.int64)
    extended[(slice(None), *(slice(0, n) for n in sizes))] = counts
    # Sum out one dimension at a time into its total slot. Dimensions already summed
    # keep their total slots in the source, which fills the margins of margins.
    for axis, n in enumerate(sizes, start=1):
        source = [
            slice(None),
            *(slice(0, s) if d > axis else slice(None) for d, s in enumerate(sizes, start=1)),
        ]
        target = list(source)
        source[axis] = slice(0, n)
        target[axis] = n
        np.sum(extended[tuple(source)], axis=axis, out=extended[tuple(target)])
    return extended


# Odd 64-bit multipliers (splitmix64 of 0, 1, 2, ...) for the block hash. Fixed, so the
# result never depends on a random state; a collision only costs a repeated search,
# because blocks are merged only when they are equal entry by entry.
def _multiplier(j: int) -> int:
    mask = (1 << 64) - 1
    x = (j * 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return (x ^ (x >> 31)) | 1


def _distinct(rows: IntArray) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Indices of one representative per distinct row, and for each row the number of
    its representative. ``np.unique(axis=0)`` sorts rows as opaque records and takes a minute on
    the benchmark; a linear hash, an integer sort and an exact neighbour check take ~1 s."""
    n = rows.shape[0]
    if n == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    weights = np.array([_multiplier(j) for j in range(rows.shape[1])], dtype=np.uint64)
    hashes = rows.view(np.uint64) @ weights  # wraps modulo 2**64, as intended
    order = np.argsort(hashes, kind="stable")
    ranked = rows[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    ranked_hashes = hashes[order]
    starts[1:] = ranked_hashes[1:] != ranked_hashes[:-1]
    starts[1:] |= (ranked[1:] != ranked[:-1]).any(axis=1)
    group = np.empty(n, dtype=np.intp)
    group[order] = np.cumsum(starts) - 1
    return order[starts], group


def _entry_major(rows: IntArray, small: bool) -> npt.NDArray[np.int32] | IntArray:
    """(blocks, entries) -> (entries, blocks), so that one entry of every block in a chunk
    is a contiguous row; int32 when counts and k allow, halving the search's memory traffic."""
    if small:
        return rows.T.astype(np.int32, order="C")
    return rows.T.copy(order="C")


def suppress(cells: npt.ArrayLike, k: int, show_zeros: bool, *, workers: int = 1) -> Suppression:
    """Primary and complementary suppression of every block of ``cells`` (B, n1, ..., nm).

    ``workers`` threads search chunks of blocks at once; the result does not depend on it.

    Guarantees, against an attacker who knows the published entries, the additivity of
    each block, that counts are non-negative integers and that suppressed entries are at
    least z (z = 1 with ``show_zeros``, else 0): every primary entry can be k or more,
    and no suppressed entry has a single feasible value.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise SuppressionError(
            f"the suppression threshold k must be an integer of at least 2, got {k!r}; "
            "k = 1 would suppress nothing but zeros"
        )
    k = int(k)
    counts = _checked(cells)
    values = _extend(counts)
    floor = 1 if show_zeros else 0
    primary = values < k
    if show_zeros:
        primary &= values != 0  # counts are non-negative: >= 1 is != 0
    n_blocks, shape = values.shape[0], values.shape[1:]
    secondary = np.zeros_like(primary)
    if shape and primary.any():
        flat = values.reshape(n_blocks, -1)
        # A block needs a search when some entry is primary and some is not (a block
        # suppressed whole, like an all-zero block without show_zeros, is safe as it is).
        flags = primary.reshape(n_blocks, -1)
        busy = np.flatnonzero(flags.any(axis=1) & ~flags.all(axis=1))
        chosen, group = _distinct(counts.reshape(n_blocks, -1)[busy])
        distinct = busy[chosen]
        cubes = positions(shape)
        small = max(int(flat.max()), k) < np.iinfo(np.int32).max // 2
        added = np.zeros((distinct.size, flat.shape[1]), dtype=bool)

        def protect(start: int) -> None:
            part = distinct[start : start + CHUNK]
            chunk_primary = np.ascontiguousarray(flags[part].T)
            chunk_suppressed = chunk_primary.copy()
            chunk = _entry_major(flat[part], small)
            protect_chunk(chunk, chunk_primary, chunk_suppressed, shape, cubes, k, floor)
            added[start : start + CHUNK] = (chunk_suppressed & ~chunk_primary).T

        starts = range(0, distinct.size, CHUNK)
        if workers > 1:
            # Chunks are independent and write disjoint rows; numpy releases the GIL in
            # the search's array operations (the search ran 1.6x faster on 2 idle cores).
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(protect, starts))
        else:
            for start in starts:
                protect(start)
        secondary.reshape(n_blocks, -1)[busy] = added[group]
    return Suppression(values, primary, secondary, k, show_zeros)
