"""The expansion-factor registry and a hub's own file."""

from __future__ import annotations

from pathlib import Path

import pytest

from epibridge.model.errors import SourceError
from epibridge.registry.expansion import FILE_NAME, expansion_factors, registry_version

HEADER = "country,disease,factor,low,high,interval,population,source,note\n"


def test_the_shipped_factors_name_their_source_and_interval() -> None:
    factors = expansion_factors()
    assert registry_version()
    assert {("KHM", "DENGUE"), ("THA", "DENGUE"), ("VNM", "DENGUE")} <= set(factors)
    for f in factors.values():
        assert f.source and f.interval and f.population
        assert f.low <= f.factor <= f.high
        assert f.sigma > 0
    assert factors[("THA", "DENGUE")].factor == 8.7  # Wichmann et al. 2011
    assert "pntd.0000996" in factors[("KHM", "DENGUE")].source


def test_a_hubs_own_file_overrides_the_default(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text(
        HEADER + 'KHM,DENGUE,4.0,3.0,6.0,95% CI,all ages,"a national study, 2024",\n'
        "PER,DENGUE,2.5,2.0,3.5,95% CI,all ages,a cohort,\n",
        "utf-8",
    )
    factors = expansion_factors(tmp_path)
    assert factors[("KHM", "DENGUE")].factor == 4.0
    assert factors[("KHM", "DENGUE")].origin == str(tmp_path / FILE_NAME)
    assert factors[("PER", "DENGUE")].factor == 2.5
    assert factors[("THA", "DENGUE")].factor == 8.7  # untouched default


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("KH,DENGUE,4,3,6,ci,all,src,", "line 2, field country"),
        ("KHM,DENGUE,four,3,6,ci,all,src,", "line 2, field factor"),
        ("KHM,DENGUE,0.5,0.4,6,ci,all,src,", "at least 1"),
        ("KHM,DENGUE,7,3,6,ci,all,src,", "does not contain the factor"),
        ("KHM,DENGUE,4,3,6,ci,all,,", "field source: empty"),
    ],
)
def test_a_bad_row_is_named_with_its_line_and_field(tmp_path: Path, row: str, message: str) -> None:
    (tmp_path / FILE_NAME).write_text(HEADER + row + "\n", "utf-8")
    with pytest.raises(SourceError, match=message) as caught:
        expansion_factors(tmp_path)
    assert str(tmp_path / FILE_NAME) in str(caught.value)
    assert "what to do" in str(caught.value)


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text("country,disease,factor\nKHM,DENGUE,4\n", "utf-8")
    with pytest.raises(SourceError, match="low, high, interval, population, source"):
        expansion_factors(tmp_path)
