"""The validation rules as checks over the typed layers (``docs/validation.md``).

Each function returns :class:`~epibridge.pipeline.checks.Check` values built from the
layers' column names, so the same checks can be evaluated on all records (for the
verdict) or on the quarantined few (for their messages).
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from epibridge.adapters.base import RECORD
from epibridge.model.profile import Profile
from epibridge.pipeline.checks import Check, text
from epibridge.pipeline.duplicates import cell_key
from epibridge.pipeline.fields import (
    KINDS,
    MEASURE,
    VALUE,
    WHAT,
    label_of,
)


def _unknown(
    label: str,
    src: ir.StringValue,
    value: ir.Value,
    what: str,
    name: str,
    suggestion: ir.StringValue | None = None,
) -> Check:
    message = text(
        "'",
        src,
        f"' in {label} is not {what}; correct it at the source or add it to "
        f"[fields.{name}] codes in the profile",
    )
    return Check("unknown_code", label, src.notnull() & value.isnull(), src, message, suggestion)


def _not_a_number(label: str, src: ir.StringValue, value: ir.Value, what: str) -> Check:
    return Check(
        "bad_number",
        label,
        src.notnull() & value.isnull(),
        src,
        text("'", src, f"' in {label} is not {what}"),
    )


def field_checks(t: ir.Table, profile: Profile, today: date) -> list[Check]:
    """Checks on each mapped field, over the typed layer."""
    checks: list[Check] = []
    lo = float(profile.rules.get("min_age", 0))  # type: ignore[arg-type]
    hi = float(profile.rules.get("max_age", 120))  # type: ignore[arg-type]
    for name, fm in profile.fields.items():
        src, value, label, kind = t[f"_s_{name}"], t[name], label_of(fm, name), KINDS[name]
        if fm.required:
            checks.append(
                Check(
                    "missing_required",
                    label,
                    src.isnull(),
                    ibis.literal(""),
                    text(
                        f"{label} is empty but required for {name}; fill it "
                        "in at the source or fix the export"
                    ),
                )
            )
        if kind == "code" or (kind == "band" and fm.codes):
            checks.append(_unknown(label, src, value, f"a known {WHAT[name]}", name))
        elif kind == "country":
            checks.append(
                _unknown(label, src, value, "a country name or ISO code", name, t["_csuggest"])
            )
        elif kind == "date":
            shown = " or ".join(fm.formats) if fm.formats else "YYYY-MM-DD"
            checks.append(
                Check(
                    "bad_date",
                    label,
                    src.notnull() & value.isnull(),
                    src,
                    text(
                        "'",
                        src,
                        f"' in {label} is not a real date written as {shown}; "
                        "correct it at the source, or add its format to the profile",
                    ),
                )
            )
            checks.append(
                Check(
                    "future_date",
                    label,
                    value > ibis.literal(today),
                    src,
                    text(
                        f"{label} ", src, f" is after the day of this run ({today}); check the year"
                    ),
                )
            )
        elif kind == "count":
            checks.append(_not_a_number(label, src, value, "a whole number"))
            checks.append(
                Check(
                    "negative_count",
                    label,
                    value < 0,
                    src,
                    text(f"{label} is negative (", src, "); counts cannot be below zero"),
                )
            )
        elif kind == "age":
            checks.append(_not_a_number(label, src, value, "a number (an age in years)"))
            checks.append(
                Check(
                    "implausible_age",
                    label,
                    (value < lo) | (value > hi),
                    src,
                    text(
                        "age ",
                        src,
                        f" in {label} is outside {lo:g}-{hi:g} years; check "
                        "the value (ages in months or days must be converted)",
                    ),
                )
            )
    return checks


def measure_checks(t: ir.Table, profile: Profile) -> list[Check]:
    spec = profile.measures
    if spec is None:
        return []
    code, raw_value = t["_s__mcode"], t["_s__mvalue"]
    checks = [
        Check(
            "missing_required",
            spec.column,
            code.isnull(),
            ibis.literal(""),
            text(f"{spec.column} is empty"),
        ),
        Check(
            "unknown_code",
            spec.column,
            code.notnull() & t[MEASURE].isnull(),
            code,
            text(
                "'",
                code,
                f"' in {spec.column} is not a measure this profile maps; add "
                "it to [measures.map] or leave it out of the export",
            ),
        ),
        Check(
            "missing_required",
            spec.value,
            raw_value.isnull(),
            ibis.literal(""),
            text(f"{spec.value} is empty"),
        ),
        Check(
            "bad_number",
            spec.value,
            raw_value.notnull() & t[VALUE].isnull(),
            raw_value,
            text("'", raw_value, f"' in {spec.value} is not a whole number"),
        ),
        Check(
            "negative_count",
            spec.value,
            t[VALUE] < 0,
            raw_value,
            text(f"{spec.value} is negative (", raw_value, ")"),
        ),
    ]
    if spec.strata_column and spec.strata:
        checks.append(
            Check(
                "unknown_code",
                spec.strata_column,
                t["_age"].isnull(),
                t["_s__stratum"],
                text(
                    "'",
                    t["_s__stratum"],
                    f"' in {spec.strata_column} is not a "
                    "disaggregation this profile maps; add it to [measures.strata]",
                ),
            )
        )
    if spec.deleted_column:
        deleted = t["_s__deleted"]
        checks.append(
            Check(
                "deleted_in_source",
                spec.deleted_column,
                deleted.lower().isin(["true", "1", "yes"]),
                deleted,
                text("the value is marked deleted in the source system; it is not counted"),
            )
        )
    return checks


def record_checks(t: ir.Table, profile: Profile) -> list[Check]:
    """Checks that involve several fields: date order, deaths vs cases, period, place."""
    checks = [
        Check(
            "bad_period",
            "period",
            t["_p_problem"].notnull() & t["_p_source"].notnull(),
            t["_p_source"],
            text(
                "period ",
                t["_p_problem"],
                "; correct it at the source or fix [period] in the profile",
            ),
        ),
        Check(
            "missing_required",
            "period",
            t["period_start"].isnull() & t["_p_source"].isnull(),
            ibis.literal(""),
            text("no period: ", t["_p_problem"].fill_null("the period columns are empty")),
        ),
    ]
    names = set(profile.fields)
    if profile.dataset == "cases" and "date_onset" in names:
        later = [t[n] for n in ("date_report", "date_diagnosis") if n in names]
        if later:
            after = ibis.or_(*[(t["date_onset"] > d).fill_null(False) for d in later])
            checks.append(
                Check(
                    "date_order",
                    "date_onset",
                    after,
                    t["date_onset"],
                    text(
                        "onset ",
                        t["date_onset"],
                        " is after the report or diagnosis date (",
                        ibis.coalesce(*later),
                        "); one of the dates is wrong",
                    ),
                )
            )
    if {"cases", "deaths"} <= names:
        checks.append(
            Check(
                "deaths_exceed_cases",
                "deaths",
                t["deaths"] > t["cases"],
                t["deaths"],
                text("deaths (", t["deaths"], ") exceed cases (", t["cases"], ") in the same cell"),
            )
        )
    checks += _report_checks(t, profile)
    if profile.area.columns:
        checks.append(
            Check(
                "unknown_area",
                "place",
                t["_area_problem"] == "unknown_area",
                t["_area_value"],
                text(
                    "'",
                    t["_area_value"],
                    "' in ",
                    t["_area_field"],
                    f" matches no unit of {profile.country} in the geography registry "
                    "(at that level, under the places named before it); correct the name, "
                    "or add it to [area] codes in the profile",
                ),
                ibis.ifelse(t["_area_suggest"] == "", ibis.null(), t["_area_suggest"]).cast(
                    "string"
                ),
            )
        )
        if profile.area.required_level > 0:
            level = profile.area.required_level
            checks.append(
                Check(
                    "missing_required",
                    "place",
                    t["_area_problem"].isnull() & (t["_la_area_level"] < level),
                    ibis.literal(""),
                    text(
                        f"the place is not given down to admin level {level} "
                        f"({', '.join(profile.area.columns[:level])}); fill it in at the "
                        "source"
                    ),
                )
            )
        checks.append(
            Check(
                "unit_not_valid",
                "place",
                t["_area_invalid"],
                t["_la_area"],
                text(
                    "unit ",
                    t["_la_area"],
                    " was valid from ",
                    t["_area_from"],
                    " to ",
                    t["_area_to"],
                    " but the record is for ",
                    t["period_start"],
                    "; use the "
                    "unit valid at the time, or set [area] crosswalk = true to follow "
                    "mergers",
                ),
                t["_area_next"],
            )
        )
    if "_cell_first" in t.columns:
        first = t["_cell_first"]
        checks.append(
            Check(
                "duplicate_cell",
                "place and period",
                first.notnull() & (first < t[RECORD]),
                t["_cell"],
                text(
                    "the cell ",
                    t["_cell"],
                    f" ({cell_key(profile)[1]}) already appeared in record ",
                    first,
                    "; send each cell once",
                ),
            )
        )
    if "_dup_seen" in t.columns:
        checks.append(
            Check(
                "duplicate_id",
                label_of(profile.fields["case_id"], "case_id"),
                t["_dup_seen"],
                t["case_id"],
                text(
                    "case id ",
                    t["case_id"],
                    " already appeared in ",
                    t["_dup_file"],
                    " record ",
                    t["_dup_first"],
                    "; remove the duplicate or give the case a distinct id",
                ),
            )
        )
    return checks


def _report_checks(t: ir.Table, profile: Profile) -> list[Check]:
    """Reports received cannot outnumber those expected, nor on-time ones those received."""
    pairs = (
        ("received_exceeds_expected", "reports_received", "reports_expected", "expected"),
        ("on_time_exceeds_received", "reports_on_time", "reports_received", "received"),
    )
    checks = []
    for rule, more, less, verb in pairs:
        if more not in profile.fields or less not in profile.fields:
            continue
        label = label_of(profile.fields[more], more)
        other = label_of(profile.fields[less], less)
        checks.append(
            Check(
                rule,
                label,
                t[more] > t[less],
                t[f"_s_{more}"],
                text(
                    f"{more} (",
                    t[more],
                    f", column {label}) exceeds {less} (",
                    t[less],
                    f", column {other}): more reports than were {verb}; correct one of "
                    "the two figures at the source",
                ),
            )
        )
    return checks
