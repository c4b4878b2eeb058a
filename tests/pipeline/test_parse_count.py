"""Counts are whole numbers in range: text that parses to infinity or beyond 2**53 is not
a count (it once reached the integer cast and stopped the whole run; found by the
reporting property test)."""

from __future__ import annotations

import ibis

from epibridge.pipeline.parse import parse_count


def test_only_whole_numbers_in_range_are_counts() -> None:
    texts = ["12", "12.0", "-3", "inf", "-inf", "1e309", "9e300", "nan", "1.5", "x", None]
    t = ibis.memtable({"x": texts}, schema={"x": "string"})
    got = t.select(v=parse_count(t.x)).to_pyarrow().column("v").to_pylist()
    assert got == [12, 12, -3, None, None, None, None, None, None, None, None]
