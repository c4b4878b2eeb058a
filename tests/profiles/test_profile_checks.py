"""Profiles are checked before any data is read; each mistake names the key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from epibridge.model.errors import ProfileError
from epibridge.profiles import load_profile, parse_profile, shipped

BASE = """[profile]
name = "t"
format = "delimited"
dataset = "cases"
country = "KHM"
[fields]
disease = { value = "DENGUE" }
date_report = "reported"
[period]
from_date = "date_report"
"""


@pytest.mark.parametrize(
    ("old", "new", "key", "line"),
    [
        ('country = "KHM"', 'country = "XYZ"', "profile.country", 5),
        ('format = "delimited"', 'format = "xml"', "profile.format", 3),
        (
            'from_date = "date_report"',
            'from_date = "date_report"\ncalendar = "moon"',
            "period.calendar",
            11,
        ),
        (
            'disease = { value = "DENGUE" }',
            'disease = { column = "d", codes_from = "KHM:x" }',
            "fields.disease.codes_from",
            7,
        ),
        (
            'date_report = "reported"',
            'date_report = { column = "r", formats = ["%Q"] }',
            "fields.date_report.formats",
            8,
        ),
        ('date_report = "reported"', 'date_reported = "reported"', "fields.date_reported", 8),
    ],
)
def test_mistakes_name_key_and_line(old: str, new: str, key: str, line: int) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(BASE.replace(old, new), Path("p.toml"))
    assert caught.value.key == key
    assert caught.value.line == line


def test_country_calendar_needs_a_recorded_convention() -> None:
    text = BASE.replace('country = "KHM"', 'country = "FRA"').replace(
        'from_date = "date_report"', 'from_date = "date_report"\ncalendar = "country"'
    )
    with pytest.raises(ProfileError, match="no week convention for FRA"):
        parse_profile(text, Path("p.toml"))


@pytest.mark.parametrize("name", sorted(shipped()))
def test_shipped_profiles_load(name: str) -> None:
    assert load_profile(name).name == name
