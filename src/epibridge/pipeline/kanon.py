"""k-anonymity for line-list releases: full-domain generalization, then suppression.

Every record released must share its quasi-identifier values (the generalized age band,
area, dates and sex) with at least ``k - 1`` other released records. The search is over
the lattice of *level vectors*, one level per hierarchy (Samarati 2001; LeFevre et al.
2005): the bottom node keeps every quasi-identifier at its finest level, the top node
suppresses them all. A node *satisfies* when the records in equivalence classes smaller
than ``k`` are few enough to withhold (at most ``max_withheld`` of the records); those
records are then removed. Generalizing first and suppressing the remainder keeps most
records at the finest level the data allow, instead of coarsening everything for a few
outliers or dropping many records to keep detail.

Search order: heights (the sum of the level indexes) from the bottom up, every node of a
height evaluated; the first height with a satisfying node wins, so no less
generalized node (by total height) satisfies. Among the satisfying nodes of that height
the one withholding fewest records is chosen, ties going to the node that keeps the
hierarchies finest in the order they were given (so pass the quasi-identifiers you most
want kept detailed first; the line-list release passes the agreement's quasi-identifiers
in the agreement's order, then the reporting period).

The records are read once, on the engine: one Ibis group-by counts the records of every
combination of all levels (Incognito's frequency set, at most one row per distinct
combination of finest levels). A node's class sizes are then a group-by of that frequency
set, done by Arrow in memory: a separate engine query per node cost about 20 ms of
compiling, planning and running even on 30 records (docs/k-anonymity.md has the figures).
The release itself is a lazy Ibis expression. See docs/k-anonymity.md for the limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import product

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from epibridge.backend import to_arrow
from epibridge.model.errors import EpibridgeError
from epibridge.pipeline.generalize import Hierarchy

_COUNT = "_kanon_n"
_SIZE = "_kanon_size"


class KAnonymityError(EpibridgeError):
    """The k-anonymity settings are invalid or cannot be met."""


@dataclass(frozen=True)
class KAnonymity:
    """A k-anonymous release and what it cost.

    ``withheld == n`` (every record) when the table has fewer than ``k`` records.
    """

    table: ir.Table
    levels: dict[str, str]
    heights: dict[str, int]
    withheld: int
    classes: int
    smallest_class: int | None


@dataclass(frozen=True)
class _Node:
    heights: tuple[int, ...]
    withheld: int
    classes: int
    smallest: int | None


def _check(hierarchies: Sequence[Hierarchy], k: int, max_withheld: float) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise KAnonymityError(
            f"k = {k!r} is invalid; k-anonymity needs a whole number k of at least 2 "
            "(every released record shares its quasi-identifiers with k - 1 others)"
        )
    if (
        isinstance(max_withheld, bool)
        or not isinstance(max_withheld, int | float)
        or not 0 <= max_withheld < 1
    ):
        raise KAnonymityError(
            f"max_withheld = {max_withheld!r} is invalid; give the largest share of records "
            "that may be withheld, from 0 (none) up to but not including 1 (e.g. 0.05)"
        )
    if not hierarchies:
        raise KAnonymityError(
            "k-anonymity needs at least one quasi-identifier hierarchy; list the agreement's "
            "quasi-identifiers (age, area, dates, sex) or do not ask for k-anonymity"
        )
    fields = [h.field for h in hierarchies]
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        raise KAnonymityError(
            f"quasi-identifier {', '.join(repeated)} has more than one hierarchy; keep one each"
        )


def _column(i: int, j: int) -> str:
    return f"_kanon_{i}_{j}"


def _frequencies(table: ir.Table, hierarchies: Sequence[Hierarchy]) -> pa.Table:
    """Records per combination of every level of every hierarchy: all a node's sizes need.

    The one pass over the records, on the engine. The result has at most one row per
    distinct combination of finest levels; its level columns are dictionary-encoded so the
    per-node group-bys hash small integers, not strings.
    """
    columns = {
        _column(i, j): level.expr(table)
        for i, h in enumerate(hierarchies)
        for j, level in enumerate(h.levels)
    }
    wide = table.select(**columns)
    grouped = wide.group_by(list(columns)).aggregate(**{_COUNT: wide.count()})
    # One chunk, so that each column gets one dictionary for all its rows.
    freq = to_arrow(grouped).combine_chunks()
    return pa.table(
        {
            name: freq[name] if name == _COUNT else pc.dictionary_encode(freq[name])
            for name in freq.column_names
        }
    )


def _nodes_at(shape: Sequence[int], height: int) -> list[tuple[int, ...]]:
    """Level vectors of total ``height``, in lexicographic order (finest first hierarchy first)."""
    return [v for v in product(*(range(n) for n in shape)) if sum(v) == height]


def _evaluate(freq: pa.Table, node: tuple[int, ...], k: int) -> _Node:
    """Withheld records, classes released and smallest class when generalizing to ``node``."""
    keys = [_column(i, j) for i, j in enumerate(node)]
    # Arrow's hash group-by keeps null keys as a group of their own, as SQL GROUP BY does.
    grouped = freq.group_by(keys).aggregate([(_COUNT, "sum")])
    sizes = grouped[f"{_COUNT}_sum"].to_numpy()
    small = sizes < k
    released = sizes[~small]
    return _Node(
        node,
        int(sizes[small].sum()),
        len(released),
        int(released.min()) if len(released) else None,
    )


def _search(freq: pa.Table, shape: Sequence[int], k: int, budget: int) -> _Node | None:
    """The least generalized satisfying node, or None when even the top fails."""
    for height in range(sum(shape) - len(shape) + 1):
        evaluated = [_evaluate(freq, node, k) for node in _nodes_at(shape, height)]
        satisfying = [n for n in evaluated if n.withheld <= budget]
        if satisfying:
            return min(satisfying, key=lambda n: (n.withheld, n.heights))
    return None


def _release(
    table: ir.Table, hierarchies: Sequence[Hierarchy], heights: tuple[int, ...], k: int
) -> ir.Table:
    """Records of classes of at least ``k``, quasi-identifiers at the chosen levels."""
    generalized = {
        h.field: h.levels[j].expr(table) for h, j in zip(hierarchies, heights, strict=True)
    }
    staged_as = {field: f"_kanon_{i}" for i, field in enumerate(generalized)}
    staged = table.mutate(**{staged_as[f]: e for f, e in generalized.items()})
    keys = list(staged_as.values())
    # A window count, not a join, so null quasi-identifiers form their own class as in the
    # search's group-by.
    sized = staged.mutate(**{_SIZE: staged.count().over(group_by=keys)})
    kept = sized.filter(sized[_SIZE] >= k)
    dropped = {s for h in hierarchies for s in h.sources} - set(generalized)
    out: list[ir.Value] = []
    for name in table.columns:
        if name in generalized:
            out.append(kept[staged_as[name]].name(name))
        elif name not in dropped:
            out.append(kept[name])
    out += [kept[staged_as[f]].name(f) for f in generalized if f not in table.columns]
    return kept.select(*out)


def k_anonymize(
    table: ir.Table, hierarchies: Sequence[Hierarchy], k: int, max_withheld: float = 0.05
) -> KAnonymity:
    """Generalize ``table``'s quasi-identifiers, then withhold classes smaller than ``k``.

    ``max_withheld`` is read as the decimal it is written as (0.29 of 100 records allows
    29). Columns a hierarchy reads besides its field (``Hierarchy.sources``) are dropped
    from the release; every other column passes through unchanged, so minimize first.
    """
    _check(hierarchies, k, max_withheld)
    freq = _frequencies(table, hierarchies)
    n = int(pc.sum(freq[_COUNT]).as_py() or 0)
    budget = int(Fraction(repr(float(max_withheld))) * n)
    shape = [len(h.levels) for h in hierarchies]
    if n < k:
        chosen = _Node(tuple(s - 1 for s in shape), n, 0, None)
    else:
        found = _search(freq, shape, k, budget)
        if found is None:
            raise KAnonymityError(
                f"no generalization of {', '.join(h.field for h in hierarchies)} withholds at "
                f"most {max_withheld:.0%} of {n} records, not even suppressing them all; a "
                "hierarchy's last level '*' must give every record the same value"
            )
        chosen = found
    return KAnonymity(
        table=_release(table, hierarchies, chosen.heights, k),
        levels={
            h.field: h.levels[j].name for h, j in zip(hierarchies, chosen.heights, strict=True)
        },
        heights={h.field: j for h, j in zip(hierarchies, chosen.heights, strict=True)},
        withheld=chosen.withheld,
        classes=chosen.classes,
        smallest_class=chosen.smallest,
    )
