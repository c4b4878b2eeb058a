"""k-anonymity: hand-checked releases, and a brute-force check of the lattice search."""

from __future__ import annotations

from collections import Counter
from datetime import date
from itertools import product
from typing import Any

import ibis  # type: ignore[import-untyped, unused-ignore]
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epibridge.model.schema import CASES
from epibridge.pipeline.generalize import (
    Hierarchy,
    Level,
    age_hierarchy,
    area_hierarchy,
    date_hierarchy,
    sex_hierarchy,
    suppressed_level,
)
from epibridge.pipeline.kanon import KAnonymity, KAnonymityError, k_anonymize

COLUMNS = (
    "case_id",
    "country",
    "admin1",
    "admin2",
    "admin3",
    "area",
    "area_level",
    "disease",
    "date_onset",
    "sex",
    "age_years",
    "age_band",
)


def _cases(rows: list[dict[str, Any]]) -> Any:
    """A line list with the CASES columns above; unspecified fields are null or defaults."""
    filled = []
    for i, row in enumerate(rows):
        record: dict[str, Any] = {name: None for name in COLUMNS}
        record.update(case_id=f"c{i}", country="VNM", disease="DENGUE")
        record.update(row)
        places = [record["country"], record["admin1"], record["admin2"], record["admin3"]]
        level = max(j for j, code in enumerate(places) if code is not None)
        record.update(area=places[level], area_level=level)
        filled.append(record)
    schema = pa.schema([CASES.field(name).with_nullable(True) for name in COLUMNS])
    return ibis.memtable(pa.Table.from_pylist(filled, schema=schema))


def _rows(result: KAnonymity) -> list[dict[str, Any]]:
    """Released rows in case_id order (a release, like any SQL result, has no row order)."""
    rows = result.table.to_pyarrow().to_pylist()
    return sorted(rows, key=lambda r: (len(r["case_id"]), r["case_id"]))


# --- hand-checked examples -----------------------------------------------------------------


def test_k2_forces_sex_suppression_but_keeps_age_bands() -> None:
    # Bottom and every height-1 node leave singletons; suppressing sex pairs the ages.
    t = _cases(
        [
            {"sex": "M", "age_years": 30},
            {"sex": "F", "age_years": 31},
            {"sex": "M", "age_years": 50},
            {"sex": "F", "age_years": 52},
        ]
    )
    result = k_anonymize(t, [age_hierarchy([0, 20, 40, 60]), sex_hierarchy()], 2, 0)
    assert result.heights == {"age_band": 0, "sex": 1}
    assert result.levels == {"age_band": "bands 0-19,20-39,40-59,60+", "sex": "*"}
    assert (result.withheld, result.classes, result.smallest_class) == (0, 2, 2)
    rows = _rows(result)
    assert [(r["case_id"], r["age_band"], r["sex"]) for r in rows] == [
        ("c0", "20-39", "*"),
        ("c1", "20-39", "*"),
        ("c2", "40-59", "*"),
        ("c3", "40-59", "*"),
    ]


def test_k2_generalizes_districts_to_provinces_with_weeks() -> None:
    # Two districts per province, two days per ISO week (2025-W02: Jan 6-12; W06: Feb 3-9).
    t = _cases(
        [
            {"admin1": "VN-01", "admin2": "VN-01-A", "date_onset": date(2025, 1, 6)},
            {"admin1": "VN-01", "admin2": "VN-01-B", "date_onset": date(2025, 1, 7)},
            {"admin1": "VN-02", "admin2": "VN-02-A", "date_onset": date(2025, 2, 3)},
            {"admin1": "VN-02", "admin2": "VN-02-B", "date_onset": date(2025, 2, 9)},
        ]
    )
    hierarchies = [area_hierarchy(2), date_hierarchy("date_onset", "week")]
    result = k_anonymize(t, hierarchies, 2, max_withheld=0)
    assert result.levels == {"area": "admin1", "date_onset": "week (iso)"}
    rows = _rows(result)
    assert [(r["area"], r["date_onset"]) for r in rows] == [
        ("VN-01", "2025-W02"),
        ("VN-01", "2025-W02"),
        ("VN-02", "2025-W06"),
        ("VN-02", "2025-W06"),
    ]
    # The admin columns and area_level would undo the generalization: they are dropped;
    # columns that are no quasi-identifier here pass through, in place.
    assert list(rows[0]) == [
        "case_id",
        "country",
        "area",
        "disease",
        "date_onset",
        "sex",
        "age_years",
        "age_band",
    ]


def _one_outlier() -> Any:
    common = [{"sex": "F", "age_years": 30 + i % 5} for i in range(9)]
    return _cases([*common, {"sex": "M", "age_years": 88}])


def test_withholding_an_outlier_is_chosen_over_generalizing() -> None:
    hierarchies = [age_hierarchy([0, 20, 40, 60]), sex_hierarchy()]
    result = k_anonymize(_one_outlier(), hierarchies, 2, max_withheld=0.1)
    assert result.heights == {"age_band": 0, "sex": 0}
    assert (result.withheld, result.classes, result.smallest_class) == (1, 1, 9)
    rows = _rows(result)
    assert len(rows) == 9
    assert {(r["age_band"], r["sex"]) for r in rows} == {("20-39", "F")}
    assert "c9" not in {r["case_id"] for r in rows}


def test_without_a_withholding_allowance_the_outlier_forces_generalization() -> None:
    hierarchies = [age_hierarchy([0, 20, 40, 60]), sex_hierarchy()]
    result = k_anonymize(_one_outlier(), hierarchies, 2, max_withheld=0)
    # The man of 88 has company only once age is one known band (0+) and sex is suppressed:
    # every node of heights 1 and 2, and (*, sex) at height 3, still isolates him.
    assert result.heights == {"age_band": 2, "sex": 1}
    assert result.withheld == 0
    assert len(_rows(result)) == 10


def test_ties_keep_the_first_hierarchy_finest() -> None:
    # Two sexes and two provinces, each pair crossed once: suppressing either one works.
    t = _cases(
        [
            {"admin1": "VN-01", "sex": "M"},
            {"admin1": "VN-01", "sex": "F"},
            {"admin1": "VN-02", "sex": "M"},
            {"admin1": "VN-02", "sex": "F"},
        ]
    )
    area_first = k_anonymize(t, [area_hierarchy(1), sex_hierarchy()], 2, 0)
    sex_first = k_anonymize(t, [sex_hierarchy(), area_hierarchy(1)], 2, 0)
    assert area_first.heights == {"area": 0, "sex": 1}
    assert sex_first.heights == {"sex": 0, "area": 1}


def test_unknown_values_form_their_own_class() -> None:
    t = _cases([{"sex": None}, {"sex": None}, {"sex": "F"}, {"sex": "F"}, {"sex": "M"}])
    result = k_anonymize(t, [sex_hierarchy()], 2, max_withheld=0.2)
    assert result.withheld == 1
    assert sorted(Counter(r["sex"] for r in _rows(result)).items(), key=str) == [
        ("F", 2),
        (None, 2),
    ]


def test_withholding_allowance_is_read_as_a_decimal() -> None:
    # 0.29 * 100 is 28.999999999999996 in floating point; the agreement means 29 records.
    rows = [{"sex": "F"}] * 71 + [{"sex": "M", "age_years": i} for i in range(29)]
    t = _cases(rows)
    result = k_anonymize(t, [sex_hierarchy(), age_hierarchy(list(range(30)))], 2, 0.29)
    assert result.heights == {"sex": 0, "age_band": 0}
    assert result.withheld == 29


def test_fewer_records_than_k_withholds_everything() -> None:
    t = _cases([{"sex": "F"}, {"sex": "F"}])
    result = k_anonymize(t, [sex_hierarchy()], 3)
    assert (result.withheld, result.classes, result.smallest_class) == (2, 0, None)
    assert result.levels == {"sex": "*"}
    assert _rows(result) == []
    empty = k_anonymize(t.filter(t["sex"] == "M"), [sex_hierarchy()], 2)
    assert (empty.withheld, empty.classes) == (0, 0)


def test_a_non_constant_top_level_is_reported() -> None:
    fake = Hierarchy("sex", (Level("*", lambda t: t["sex"]),))
    t = _cases([{"sex": "F"}, {"sex": "F"}, {"sex": "M"}])
    with pytest.raises(KAnonymityError, match="must give every record the same value"):
        k_anonymize(t, [fake], 2, 0)


@pytest.mark.parametrize(
    ("k", "max_withheld", "message"),
    [
        (1, 0.05, "k = 1 is invalid"),
        (True, 0.05, "k = True is invalid"),
        (2.5, 0.05, "k = 2.5 is invalid"),
        (2, 1.0, "max_withheld = 1.0 is invalid"),
        (2, -0.1, "max_withheld = -0.1 is invalid"),
        (2, float("nan"), "max_withheld = nan is invalid"),
    ],
)
def test_invalid_settings_are_refused(k: Any, max_withheld: Any, message: str) -> None:
    t = _cases([{"sex": "F"}])
    with pytest.raises(KAnonymityError, match=message):
        k_anonymize(t, [sex_hierarchy()], k, max_withheld)


def test_quasi_identifiers_must_be_given_once() -> None:
    t = _cases([{"sex": "F"}])
    with pytest.raises(KAnonymityError, match="at least one quasi-identifier"):
        k_anonymize(t, [], 2)
    with pytest.raises(KAnonymityError, match="sex has more than one hierarchy"):
        k_anonymize(t, [sex_hierarchy(), sex_hierarchy()], 2)


# --- the search against brute force ------------------------------------------------------

HIERARCHIES = [
    area_hierarchy(2),
    date_hierarchy("date_onset", "month"),
    age_hierarchy([0, 15, 45, 65]),
    sex_hierarchy(),
]

RECORDS = st.fixed_dictionaries(
    {
        "admin1": st.sampled_from(["VN-01", "VN-02", None]),
        "admin2": st.sampled_from(["A", "B", None]),
        "date_onset": st.one_of(
            st.none(), st.dates(min_value=date(2024, 11, 1), max_value=date(2025, 2, 28))
        ),
        "sex": st.sampled_from(["M", "F", "U", None]),
        "age_years": st.one_of(st.none(), st.floats(0, 90, width=32)),
        "age_band": st.sampled_from([None, "40-44", "10-19", "70+"]),
    }
).map(lambda r: {**r, "admin2": f"{r['admin1']}-{r['admin2']}" if r["admin1"] else None})


@st.composite
def line_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Mostly repeats of a few records (so low nodes can satisfy), plus a few one-offs."""
    pool = draw(st.lists(RECORDS, min_size=1, max_size=6))
    repeats = draw(st.lists(st.sampled_from(pool), max_size=30))
    return repeats + draw(st.lists(RECORDS, max_size=4))


def _class_sizes(levels: list[dict[str, Any]], node: tuple[int, ...]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(row[f"{i}_{j}"] for i, j in enumerate(node)) for row in levels)


def _withheld(sizes: Counter[tuple[Any, ...]], k: int) -> int:
    return sum(size for size in sizes.values() if size < k)


@settings(max_examples=30, deadline=None)
@given(
    records=line_lists(),
    k=st.integers(2, 6),
    max_withheld=st.sampled_from([0.0, 0.1, 0.25]),
)
def test_search_is_minimal_and_release_is_k_anonymous(
    records: list[dict[str, Any]], k: int, max_withheld: float
) -> None:
    t = _cases(records)
    n = len(records)
    result = k_anonymize(t, HIERARCHIES, k, max_withheld)
    released = _rows(result)

    # Accounting, and k-anonymity checked on the output itself.
    assert result.withheld + len(released) == n
    fields = [h.field for h in HIERARCHIES]
    sizes = Counter(tuple(r[f] for f in fields) for r in released)
    assert all(size >= k for size in sizes.values())
    assert result.classes == len(sizes)
    assert result.smallest_class == (min(sizes.values()) if sizes else None)

    # Every node of the lattice, evaluated in Python from the level values of each record.
    levels = t.select(
        **{
            f"{i}_{j}": lv.expr(t)
            for i, h in enumerate(HIERARCHIES)
            for j, lv in enumerate(h.levels)
        }
    )
    level_rows = levels.to_pyarrow().to_pylist()
    budget = int(max_withheld * 100) * n // 100
    chosen = tuple(result.heights[f] for f in fields)
    if n < k:
        assert chosen == tuple(len(h.levels) - 1 for h in HIERARCHIES)
        assert result.withheld == n
        return
    assert _withheld(_class_sizes(level_rows, chosen), k) == result.withheld <= budget
    shape = [len(h.levels) for h in HIERARCHIES]
    for node in product(*(range(s) for s in shape)):
        withheld = _withheld(_class_sizes(level_rows, node), k)
        if sum(node) < sum(chosen):
            assert withheld > budget, f"lower node {node} satisfies"
        elif sum(node) == sum(chosen) and withheld <= budget:
            assert (result.withheld, chosen) <= (withheld, node)

    # The released values are the chosen levels' values of the records kept.
    by_id = {f"c{i}": row for i, row in enumerate(level_rows)}
    for r in released:
        expected = tuple(by_id[r["case_id"]][f"{i}_{j}"] for i, j in enumerate(chosen))
        assert tuple(r[f] for f in fields) == expected
    assert result.levels == {
        h.field: h.levels[j].name for h, j in zip(HIERARCHIES, chosen, strict=True)
    }


def test_the_suppressed_level_is_constant() -> None:
    t = _cases([{"sex": "F"}, {"sex": None}])
    assert t.select(v=suppressed_level().expr(t)).to_pyarrow().column("v").to_pylist() == [
        "*",
        "*",
    ]
