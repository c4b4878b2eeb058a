"""Agreement files: every key checked with its line, the hash, the plain-words summary."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from epibridge.agreements import load_agreement, parse_agreement
from epibridge.agreements.describe import describe
from epibridge.model.agreement import AgreementError

EXAMPLES = Path(str(resources.files("epibridge.examples") / "agreements"))
PER = EXAMPLES / "per-hub-linelist.toml"


def _text() -> str:
    return PER.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_examples_load(path: Path) -> None:
    a = load_agreement(path)
    assert a.sender in {"PER", "BRA", "LKA", "PHL", "TWN", "LAO", "KHM", "THA", "VNM", "MMR"}
    assert len(a.sha256) == 64


def test_fields_are_read() -> None:
    a = load_agreement(PER)
    assert a.id == "PER-HUB-DENGUE-LINELIST"
    assert a.datasets == ("cases",)
    assert a.k == 5 and a.show_zeros
    assert a.age_bands == (0, 5, 15, 30, 45, 65)
    assert a.embargo.days == 14 and not a.embargo.after_publication
    assert a.privacy is None and not a.record_linkage
    assert a.key == "PER-HUB-DENGUE-LINELIST@1"


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("area_level = 1", "area_level = 5", "data.area_level", "between 0 and 3"),
        ('sender = "PER"', 'sender = "XXX"', "parties.sender", "ISO 3166-1"),
        ('diseases = ["DENGUE"]', 'diseases = ["DENGUE", "FLU-X"]', "data.diseases", "FLU-X"),
        (
            'time_resolution = "week"',
            'time_resolution = "fortnight"',
            "data.time_resolution",
            "fortnight",
        ),
        ("k = 5", "k = 1", "disclosure.k", ">= 2"),
        ("valid_to = 2035-12-31", 'valid_to = "2035-12-31"', "agreement.valid_to", "YYYY-MM-DD"),
        ("valid_to = 2035-12-31", "valid_to = 2025-12-31", "agreement.valid_to", "before"),
        (
            "age_bands = [0, 5, 15, 30, 45, 65]",
            "age_bands = [0, 15, 5]",
            "data.age_bands",
            "increase",
        ),
        ('"classification"]', '"classification", "name"]', "data.case_fields", "'name'"),
        ("max_withheld = 0.05", "max_withheld = 1.5", "disclosure.max_withheld", "between 0 and 1"),
        (
            "onward_sharing = false",
            "onward_sharing = 0",
            "recipient_terms.onward_sharing",
            "true or false",
        ),
        (
            "retention_days = 1825",
            "retention_dayz = 1825",
            "recipient_terms.retention_dayz",
            "unknown key",
        ),
    ],
)
def test_errors_name_key_and_line(old: str, new: str, key: str, words: str) -> None:
    text = _text()
    assert old in text
    bad = text.replace(old, new)
    with pytest.raises(AgreementError) as err:
        parse_agreement(bad, Path("bad.toml"))
    message = str(err.value)
    assert f"[{key}]" in message
    assert words in message
    line = next(i for i, ln in enumerate(bad.splitlines(), 1) if new in ln)
    assert f"line {line}" in message


def test_missing_section_and_bad_toml() -> None:
    text = _text()
    start = text.index("[recipient_terms]")
    with pytest.raises(AgreementError, match=r"missing required section \[recipient_terms\]"):
        parse_agreement(text[:start], Path("a.toml"))
    with pytest.raises(AgreementError, match="not valid TOML"):
        parse_agreement(text + "\n[data\n", Path("a.toml"))


def test_privacy_checks() -> None:
    text = _text().replace('datasets = ["cases"]', 'datasets = ["counts"]')
    dp = text + "\n[privacy]\nepsilon = 2.0\nbudget = 1.0\n"
    with pytest.raises(
        AgreementError, match=r"\[privacy.epsilon\] is larger than the whole budget"
    ):
        parse_agreement(dp, Path("a.toml"))
    ok = parse_agreement(
        text + '\n[privacy]\nepsilon = 0.5\nbudget = 2\nbudget_period = "quarter"\n', Path("a")
    )
    assert (
        ok.privacy is not None
        and ok.privacy.budget == 2.0
        and ok.privacy.budget_period == "quarter"
    )


def test_line_list_needs_quasi_identifiers() -> None:
    text = _text().replace('quasi_identifiers = ["age_band", "sex", "area", "date_onset"]\n', "")
    with pytest.raises(AgreementError, match="quasi-identifiers"):
        parse_agreement(text, Path("a.toml"))


def test_hash_ignores_layout_but_not_meaning() -> None:
    text = _text()
    base = parse_agreement(text, PER).sha256
    # Comments, blank lines, spacing and the order of sections do not change the hash.
    reordered = "# a new comment\n" + text.replace("k = 5", "k   =   5  # threshold")
    head, _, rest = reordered.partition("[recipient_terms]")
    reordered = "[recipient_terms]" + rest + "\n" + head
    assert parse_agreement(reordered, PER).sha256 == base
    assert parse_agreement(text.replace("k = 5", "k = 6"), PER).sha256 != base
    assert parse_agreement(text.replace('version = "1"', 'version = "2"'), PER).sha256 != base


def test_describe_says_what_is_allowed() -> None:
    lines = "\n".join(describe(load_agreement(PER)))
    assert "PER may send data to the regional hub from 2026-01-01 to 2035-12-31" in lines
    counts = "\n".join(describe(load_agreement(EXAMPLES / "lka-hub-counts.toml")))
    assert "Counts from 1 to 4 are suppressed" in counts and "with no breakdown" in counts
    assert "keyed pseudonyms" in lines and "unique to this agreement" in lines
    assert "14 days after the period ends" in lines
    assert "0-4, 5-14, 15-29, 30-44, 45-64, 65+" in lines
    dp = "\n".join(describe(load_agreement(EXAMPLES / "bra-hub-dp.toml")))
    assert "epsilon 1 per release, at most 3 per year" in dp


def test_missing_file() -> None:
    with pytest.raises(AgreementError, match="no such agreement file"):
        load_agreement("/nonexistent/a.toml")


def test_exact_ages_beside_an_age_quasi_identifier_are_refused() -> None:
    bad = _text().replace('"age_band", "date_onset", "classification"]', '"age_band", "age_years"]')
    with pytest.raises(AgreementError, match="exact ages"):
        parse_agreement(bad, Path("a.toml"))


def test_line_list_and_counts_in_one_agreement_are_refused() -> None:
    both = _text().replace('datasets = ["cases"]', 'datasets = ["cases", "counts"]')
    with pytest.raises(AgreementError, match=r"\[data.datasets\] a line list and counts"):
        parse_agreement(both, Path("a.toml"))
