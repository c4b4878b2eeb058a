"""Loading and checking data-sharing agreement files (TOML; ``docs/sharing-agreements.md``).

An agreement is checked completely when loaded, so that a typo is reported with its key
and line before any data is touched. Its hash is the SHA-256 of its RFC 8785 canonical
JSON form, so that reformatting the TOML (comments, key order, spacing) keeps the hash
both parties signed, while any change of meaning changes it.
"""

from __future__ import annotations

import hashlib
import itertools
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pycountry
import rfc8785

from epibridge.model.agreement import (
    BUDGET_PERIODS,
    CASE_DATASETS,
    CASE_FIELDS,
    COUNT_FIELDS,
    DATASETS,
    QUASI_IDENTIFIERS,
    RESOLUTIONS,
    Agreement,
    AgreementError,
    Embargo,
    Privacy,
)
from epibridge.registry import diseases
from epibridge.registry.calendars import WEEK_SYSTEMS
from epibridge.tomlcheck import Checker

_TOP = {
    "agreement",
    "parties",
    "purpose",
    "data",
    "disclosure",
    "privacy",
    "pseudonyms",
    "embargo",
    "recipient_terms",
}
_SECTIONS: dict[str, set[str]] = {
    "agreement": {"id", "version", "title", "valid_from", "valid_to"},
    "parties": {"sender", "recipient", "sender_authority", "recipient_authority"},
    "purpose": {"purposes", "legal_basis"},
    "data": {
        "datasets",
        "diseases",
        "case_fields",
        "count_fields",
        "area_level",
        "time_resolution",
        "calendar",
        "age_bands",
    },
    "disclosure": {"k", "show_zeros", "quasi_identifiers", "max_withheld"},
    "privacy": {"epsilon", "budget", "budget_period"},
    "pseudonyms": {"record_linkage"},
    "embargo": {"days_after_period", "after_national_publication"},
    "recipient_terms": {"retention_days", "onward_sharing"},
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "agreement": ("id", "version", "valid_from", "valid_to"),
    "parties": ("sender", "recipient"),
    "purpose": ("purposes", "legal_basis"),
    "data": ("datasets", "diseases", "area_level", "time_resolution"),
    "disclosure": ("k",),
    "recipient_terms": ("retention_days", "onward_sharing"),
}


def _plain(value: Any) -> Any:
    """TOML values as JSON values (dates as ISO text) for the canonical form."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def canonical_json(doc: dict[str, Any]) -> bytes:
    """The agreement's RFC 8785 canonical JSON: the bytes both parties sign."""
    return rfc8785.dumps(_plain(doc))


def _date(check: Checker, section: str, key: str, value: Any) -> date:
    if not isinstance(value, date) or hasattr(value, "hour"):
        raise check.fail(section, key, "must be a date written as YYYY-MM-DD (no quotes)")
    return value


def _country(check: Checker, section: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or pycountry.countries.get(alpha_3=value) is None:
        raise check.fail(
            section, key, f"'{value}' is not an ISO 3166-1 alpha-3 code (KHM, VNM ...)"
        )
    return value


def _subset(
    check: Checker, section: str, key: str, value: Any, allowed: tuple[str, ...]
) -> tuple[str, ...]:
    items = check.strs(section, key, value)
    for item in items:
        if item not in allowed:
            raise check.fail(
                section, key, f"'{item}' is not one of the allowed values: {', '.join(allowed)}"
            )
    return tuple(dict.fromkeys(items))


def _diseases(check: Checker, value: Any) -> tuple[str, ...]:
    codes = check.strs("data", "diseases", value)
    known = diseases.diseases()
    for code in codes:
        if code not in known:
            raise check.fail(
                "data",
                "diseases",
                f"'{code}' is not a regional disease code; see docs/registries/diseases.md "
                f"(e.g. {', '.join(sorted(known)[:5])})",
            )
    return tuple(dict.fromkeys(codes))


def _age_bands(check: Checker, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise check.fail("data", "age_bands", "must be a list of whole years, e.g. [0, 5, 15, 65]")
    if not value or value[0] != 0 or any(b <= a for a, b in itertools.pairwise(value)):
        raise check.fail(
            "data",
            "age_bands",
            "must start at 0 and increase: each number is the first age of a band, "
            "the last band is open (e.g. [0, 5, 15, 65] gives 0-4, 5-14, 15-64, 65+)",
        )
    return tuple(value)


def _datasets(check: Checker, value: Any) -> tuple[str, ...]:
    datasets = _subset(check, "data", "datasets", value, DATASETS)
    if len(set(datasets) & set(CASE_DATASETS)) > 1:
        raise check.fail(
            "data",
            "datasets",
            "a line list and counts of the same cases must not go to one recipient: counting "
            "the line list's records adds equations across the counts' blocks and can undo "
            'their small-cell suppression; allow either "cases" or "counts"',
        )
    return datasets


def _calendar(check: Checker, value: Any) -> str:
    calendar = str(value)
    if calendar not in WEEK_SYSTEMS:
        raise check.fail(
            "data",
            "calendar",
            f"'{calendar}' is not a week convention; use one of {', '.join(sorted(WEEK_SYSTEMS))}",
        )
    return calendar


def parse_agreement(text: str, path: Path) -> Agreement:
    """Check and build an agreement from TOML text; ``path`` is used in error messages."""
    check = Checker(path, text, AgreementError)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AgreementError(str(path), "toml", f"not valid TOML: {exc}") from None
    check.keys("", doc, _TOP)
    sec: dict[str, dict[str, Any]] = {}
    for name, allowed in _SECTIONS.items():
        if name not in doc and name in _REQUIRED:
            raise check.fail("", name, f"missing required section [{name}]")
        table = check.table(name, doc.get(name, {}))
        check.keys(name, table, allowed)
        check.require(name, table, _REQUIRED.get(name, ()))
        sec[name] = table

    head, parties, data = sec["agreement"], sec["parties"], sec["data"]
    valid_from = _date(check, "agreement", "valid_from", head["valid_from"])
    valid_to = _date(check, "agreement", "valid_to", head["valid_to"])
    if valid_to < valid_from:
        raise check.fail("agreement", "valid_to", "ends before valid_from")
    recipient = check.str_("parties", "recipient", parties["recipient"])
    if recipient != "hub":
        _country(check, "parties", "recipient", recipient)

    datasets = _datasets(check, data["datasets"])
    case_fields = _subset(check, "data", "case_fields", data.get("case_fields", []), CASE_FIELDS)
    count_fields = _subset(
        check, "data", "count_fields", data.get("count_fields", []), COUNT_FIELDS
    )
    if "cases" in datasets and "case_fields" not in data:
        raise check.fail(
            "data", None, "a line-list release (datasets includes \"cases\") needs 'case_fields'"
        )
    age_bands = _age_bands(check, data.get("age_bands", [0]))
    calendar = _calendar(check, data.get("calendar", "iso"))

    disc = sec["disclosure"]
    quasi = _subset(
        check,
        "disclosure",
        "quasi_identifiers",
        disc.get("quasi_identifiers", []),
        QUASI_IDENTIFIERS,
    )
    if "cases" in datasets and not quasi:
        raise check.fail(
            "disclosure",
            "quasi_identifiers",
            "a line-list release must name the quasi-identifiers its k-anonymity is computed "
            f"over (from: {', '.join(QUASI_IDENTIFIERS)})",
        )
    if "cases" in datasets and "age_years" in case_fields and "age_band" in quasi:
        raise check.fail(
            "data",
            "case_fields",
            "'age_years' would release exact ages beside age_band, a quasi-identifier, and "
            "undo its k-anonymity; remove age_years",
        )
    max_withheld = disc.get("max_withheld", 0.05)
    if (
        isinstance(max_withheld, bool)
        or not isinstance(max_withheld, int | float)
        or not (0 <= max_withheld < 1)
    ):
        raise check.fail("disclosure", "max_withheld", "must be a share between 0 and 1, e.g. 0.05")

    privacy = None
    if sec["privacy"]:
        p = sec["privacy"]
        check.require("privacy", p, ("epsilon", "budget"))
        privacy = Privacy(
            epsilon=check.number("privacy", "epsilon", p["epsilon"]),
            budget=check.number("privacy", "budget", p["budget"]),
            budget_period=check.choice(
                "privacy", "budget_period", p.get("budget_period", "year"), BUDGET_PERIODS
            ),
        )
        if privacy.epsilon > privacy.budget:
            raise check.fail("privacy", "epsilon", "is larger than the whole budget")
        if "counts" not in datasets:
            raise check.fail(
                "privacy", None, "differential privacy applies to aggregate releases (counts)"
            )

    embargo, terms = sec["embargo"], sec["recipient_terms"]
    return Agreement(
        id=check.str_("agreement", "id", head["id"]),
        version=str(head["version"]),
        title=str(head.get("title", head["id"])),
        sender=_country(check, "parties", "sender", parties["sender"]),
        recipient=recipient,
        sender_authority=str(parties.get("sender_authority", "")),
        recipient_authority=str(parties.get("recipient_authority", "")),
        purposes=check.strs("purpose", "purposes", sec["purpose"]["purposes"]),
        legal_basis=check.str_("purpose", "legal_basis", sec["purpose"]["legal_basis"]),
        datasets=datasets,
        diseases=_diseases(check, data["diseases"]),
        case_fields=case_fields,
        count_fields=count_fields,
        area_level=check.int_("data", "area_level", data["area_level"], 0, 3),
        time_resolution=check.choice(
            "data", "time_resolution", data["time_resolution"], RESOLUTIONS
        ),
        calendar=calendar,
        age_bands=age_bands,
        k=check.int_("disclosure", "k", disc["k"], 2),
        show_zeros=check.bool_("disclosure", "show_zeros", disc.get("show_zeros", True)),
        quasi_identifiers=quasi,
        max_withheld=float(max_withheld),
        privacy=privacy,
        record_linkage=check.bool_(
            "pseudonyms", "record_linkage", sec["pseudonyms"].get("record_linkage", False)
        ),
        embargo=Embargo(
            days=check.int_("embargo", "days_after_period", embargo.get("days_after_period", 0), 0),
            after_publication=check.bool_(
                "embargo",
                "after_national_publication",
                embargo.get("after_national_publication", False),
            ),
        ),
        retention_days=check.int_("recipient_terms", "retention_days", terms["retention_days"], 1),
        onward_sharing=check.bool_("recipient_terms", "onward_sharing", terms["onward_sharing"]),
        valid_from=valid_from,
        valid_to=valid_to,
        sha256=hashlib.sha256(canonical_json(doc)).hexdigest(),
        source_path=str(path),
    )


def load_agreement(path: str | Path) -> Agreement:
    """Load and check an agreement file."""
    path = Path(path)
    if not path.is_file():
        raise AgreementError(str(path), "agreement", "no such agreement file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AgreementError(str(path), "agreement", "agreement files must be UTF-8 text") from None
    return parse_agreement(text, path)


__all__ = ["canonical_json", "load_agreement", "parse_agreement"]
