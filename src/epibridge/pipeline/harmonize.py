"""Type, map, place and check every record, as layered Ibis expressions.

``harmonize`` takes an adapter's raw table (strings plus ``_record``), the profile and the
small lookup tables resolved from distinct values (``pipeline.lookups``), and returns the
records with every model field typed plus the quarantine columns of ``pipeline.checks``.
``split`` then separates accepted rows (in the model schema) from quarantined ones. No row
is dropped anywhere: each is either accepted or carries the rule it failed.

The expression is built in layers (source text -> typed fields -> period and place ->
check results -> verdict), each referring to the previous layer's columns by name. Ibis
compiles each layer as a sub-select, so a parsed date is computed once and referenced,
instead of being inlined into every check and message that mentions it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir
import ibis.selectors as s
import pyarrow as pa

from epibridge.adapters.base import RECORD
from epibridge.model.profile import FieldMap, Profile
from epibridge.model.schema import CASES, COUNTS
from epibridge.pipeline import vocabulary
from epibridge.pipeline.checks import Check, first_failed, fold, text
from epibridge.pipeline.parse import (
    SOURCE_PREFIX,
    blank_to_null,
    map_codes,
    parse_count,
    parse_date,
    parse_number,
    source,
    trim,
)
from epibridge.pipeline.periods import period_columns
from epibridge.registry import diseases

DATE_FIELDS = ("date_onset", "date_diagnosis", "date_report")
MEASURE, VALUE = "_measure", "_value"
#: How each model field is read from text.
KINDS = {
    "case_id": "text",
    "disease": "code",
    "disease_detail": "text",
    "date_onset": "date",
    "date_diagnosis": "date",
    "date_report": "date",
    "sex": "code",
    "age_years": "age",
    "age_band": "band",
    "classification": "code",
    "outcome": "code",
    "imported": "code",
    "country_of_infection": "country",
    "pathogen_detail": "text",
    "case_count": "count",
    "cases": "count",
    "deaths": "count",
}
_WHAT = {
    "disease": "disease",
    "sex": "sex",
    "classification": "classification",
    "outcome": "outcome",
    "imported": "yes/no value",
    "age_band": "age band",
}
_AREA_FIELDS = ("admin1", "admin2", "admin3", "area", "area_level")


@dataclass(frozen=True)
class Lookups:
    """Small tables resolved once per distinct value (see ``pipeline.lookups``)."""

    areas: pa.Table | None = None
    countries: pa.Table | None = None
    periods: pa.Table | None = None
    #: case ids seen more than once, with their first record (see ``repeated_ids``)
    repeated_ids: pa.Table | None = None


@dataclass(frozen=True)
class Harmonized:
    """Every record with its typed fields and the rule it failed first (``_q_rule``).

    ``quarantine`` builds the readable quarantine rows (field, value, message) for the
    failed records only: building messages for every record would cost more than all
    the checks together.
    """

    table: ir.Table
    checks: Callable[[ir.Table], list[Check]]
    profile: Profile
    source_file: str
    #: Known codes per source field: the shell suggests the nearest for unknown codes.
    known: Mapping[str, list[str]]
    #: True when a record's verdict depends only on the record and the look-ups, so that
    #: harmonizing a subset of the records gives those records the same verdicts (False
    #: when records are compared with each other inside the expression: duplicate cells).
    row_local: bool = True

    def accepted(self) -> ir.Table:
        ok = self.table.filter(self.table["_q_rule"].isnull())
        return _final(ok, self.profile, self.source_file)

    def quarantine(self) -> ir.Table:
        bad = self.table.filter(self.table["_q_rule"].notnull())
        checks = self.checks(bad)
        # Check results become columns first, so the verdict refers to them by name
        # instead of repeating each check's expression in every verdict column.
        results: dict[str, ir.Value] = {}
        for i, c in enumerate(checks):
            results[f"_f{i}"] = c.failed.fill_null(False)
            results[f"_v{i}"] = c.value.cast("string")
            results[f"_m{i}"] = c.message
            results[f"_g{i}"] = (c.suggestion if c.suggestion is not None else ibis.null()).cast(
                "string"
            )
        bad = bad.mutate(**results)
        verdict = fold(
            [
                Check(c.rule, c.field, bad[f"_f{i}"], bad[f"_v{i}"], bad[f"_m{i}"], bad[f"_g{i}"])
                for i, c in enumerate(checks)
            ]
        )
        return bad.select(
            file=ibis.literal(self.source_file),
            record=bad[RECORD],
            field=verdict["_q_field"],
            value=verdict["_q_value"],
            rule=verdict["_q_rule"],
            message=verdict["_q_message"],
            suggestion=verdict["_q_suggestion"],
            other_rules=verdict["_q_other"],
        )


def prepare(raw: ir.Table, profile: Profile, trimmed: bool = False) -> ir.Table:
    """Reshape wide sources into one row per value; give source columns a namespace; trim.

    Source columns are renamed ``in:<name>``: engines such as DuckDB compare identifiers
    case-insensitively, so a source column ``Date_Onset`` would otherwise shadow the
    model field ``date_onset`` computed from it. Surrounding spaces are never part of a
    value: text columns are trimmed here once, unless the adapter already stored them
    trimmed (``RawTable.trimmed``).
    """
    if profile.unpivot is not None:
        up = profile.unpivot
        raw = raw.pivot_longer(s.cols(*up.columns), names_to=up.name, values_to=up.value)
    named = raw.rename({SOURCE_PREFIX + c: c for c in raw.columns if c != RECORD})
    if trimmed:
        return named
    texts = [c for c in named.columns if c != RECORD and named[c].type().is_string()]
    return named.mutate(**{c: trim(named[c]) for c in texts}) if texts else named


def area_keys(raw: ir.Table, profile: Profile) -> ir.Table:
    """The place columns, as the keys the area lookup is built on and joined by."""
    keys = {
        f"_akey{i}": blank_to_null(source(raw, c), profile.area.missing).fill_null("")
        for i, c in enumerate(profile.area.columns)
    }
    return raw.mutate(**keys) if keys else raw


def disease_codes(fm: FieldMap | None) -> dict[str, str]:
    """Source value -> regional disease code: the profile's map, else registry codes."""
    if fm is not None and fm.codes:
        codes = dict(fm.codes)
    else:
        codes = {code: code for code in diseases.diseases()}
        for d in diseases.diseases().values():
            for icd in d.icd10:
                if "-" not in icd:
                    codes.setdefault(icd, d.code)
    if fm is not None and fm.codes_from:
        country, _, system = fm.codes_from.partition(":")
        codes.update(diseases.national_map(country, system))
    return codes


def _codes_for(name: str, fm: FieldMap) -> dict[str, str]:
    if name == "disease":
        return disease_codes(fm)
    defaults = vocabulary.DEFAULTS.get(name, {})
    return dict(fm.codes) or dict(defaults)


def _join_lookups(raw: ir.Table, profile: Profile, lookups: Lookups) -> ir.Table:
    if profile.area.columns:
        if lookups.areas is None:
            raise ValueError("the area lookup is missing")
        keyed = area_keys(raw, profile)
        areas = ibis.memtable(lookups.areas)
        areas = areas.rename({f"_la_{c}": c for c in _AREA_FIELDS})
        keys = [f"_akey{i}" for i in range(len(profile.area.columns))]
        raw = keyed.left_join(areas, keys).drop(s.endswith("_right")).drop(*keys)
    spec = profile.period
    if lookups.periods is not None:
        periods = ibis.memtable(lookups.periods)
        if spec.dhis2:
            raw = raw.mutate(_pk=blank_to_null(source(raw, spec.dhis2)).fill_null(""))
            raw = raw.left_join(periods.drop("_pkey2"), raw["_pk"] == periods["_pkey"]).drop(
                "_pk", "_pkey"
            )
        else:
            raw = raw.mutate(
                _pk=blank_to_null(source(raw, str(spec.start))).fill_null(""),
                _pk2=blank_to_null(source(raw, str(spec.end))).fill_null(""),
            )
            raw = raw.left_join(
                periods, [raw["_pk"] == periods["_pkey"], raw["_pk2"] == periods["_pkey2"]]
            ).drop("_pk", "_pk2", "_pkey", "_pkey2")
    if lookups.countries is not None:
        fm = profile.fields["country_of_infection"]
        countries = ibis.memtable(lookups.countries)
        raw = raw.mutate(_ck=blank_to_null(source(raw, str(fm.column)), fm.missing))
        raw = raw.left_join(countries, raw["_ck"] == countries["_ckey"]).drop("_ckey", "_ck")
    return raw


#: Code maps longer than this are applied by a join, not a chain of comparisons: a CASE
#: with the disease registry's 120 codes cost 7 s on ten million rows, the join 0.3 s.
_JOIN_CODES_ABOVE = 12


def _code_maps(profile: Profile) -> dict[str, dict[str, str]]:
    """The code map of every field mapped through codes, keys folded unless case-sensitive."""
    maps: dict[str, dict[str, str]] = {}
    for name, fm in profile.fields.items():
        kind = KINDS[name]
        if kind == "code" or (kind == "band" and fm.codes):
            codes = _codes_for(name, fm)
            maps[name] = (
                codes if fm.case_sensitive else {k.strip().upper(): v for k, v in codes.items()}
            )
    return maps


def _join_codes(t: ir.Table, profile: Profile, maps: dict[str, dict[str, str]]) -> ir.Table:
    """Layer 1b: large code maps applied as joins on the folded source text."""
    for name, codes in maps.items():
        if len(codes) <= _JOIN_CODES_ABOVE:
            continue
        table = ibis.memtable({f"_k_{name}": list(codes), f"_c_{name}": list(codes.values())})
        src = t[f"_s_{name}"]
        key = src if profile.fields[name].case_sensitive else src.upper()
        t = t.left_join(table, key == table[f"_k_{name}"]).drop(f"_k_{name}")
    return t


def _label(fm: FieldMap, name: str) -> str:
    return str(fm.column) if fm.column else f"{name} (constant)"


def _sources(t: ir.Table, profile: Profile) -> dict[str, ir.Value]:
    """Layer 1: trimmed source text of every mapped field (NULL for "no value")."""
    out: dict[str, ir.Value] = {}
    for name, fm in profile.fields.items():
        out[f"_s_{name}"] = (
            blank_to_null(source(t, fm.column), fm.missing)
            if fm.column
            else ibis.literal(fm.value).cast("string")
        )
    spec = profile.measures
    if spec is not None:
        out["_s__mcode"] = blank_to_null(source(t, spec.column))
        out["_s__mvalue"] = blank_to_null(source(t, spec.value))
        if spec.strata_column:
            out["_s__stratum"] = blank_to_null(source(t, spec.strata_column)).fill_null("")
        if spec.deleted_column:
            out["_s__deleted"] = blank_to_null(source(t, spec.deleted_column))
    return out


def _typed(
    t: ir.Table, profile: Profile, maps: dict[str, dict[str, str]], known: dict[str, list[str]]
) -> dict[str, ir.Value]:
    """Layer 2: every mapped field parsed or mapped from its source text."""
    out: dict[str, ir.Value] = {}
    for name, fm in profile.fields.items():
        src = t[f"_s_{name}"]
        kind = KINDS[name]
        if name in maps:
            known[_label(fm, name)] = sorted(set(_codes_for(name, fm)))
            value = (
                t[f"_c_{name}"]
                if f"_c_{name}" in t.columns
                else map_codes(src, maps[name], case_sensitive=True if fm.case_sensitive else None)
            )
            out[name] = value.cast("boolean") if name == "imported" else value
        elif kind == "date":
            out[name] = parse_date(src, fm.formats)
        elif kind == "count":
            out[name] = parse_count(src)
        elif kind == "age":
            out[name] = parse_number(src)
        elif kind == "country":
            out[name] = t["_country"]
        else:
            out[name] = src
    spec = profile.measures
    if spec is not None:
        code = t["_s__mcode"]
        known[spec.column] = sorted(spec.map)
        out["disease"] = code.substitute(
            {k: v[0] for k, v in spec.map.items()}, else_=ibis.null()
        ).cast("string")
        out[MEASURE] = code.substitute(
            {k: v[1] for k, v in spec.map.items()}, else_=ibis.null()
        ).cast("string")
        out[VALUE] = parse_count(t["_s__mvalue"])
        if spec.strata_column:
            stratum = t["_s__stratum"]
            known[spec.strata_column] = sorted(spec.strata)
            ages = {k: v[0] or "" for k, v in spec.strata.items()}
            sexes = {k: v[1] or "" for k, v in spec.strata.items()}
            out["_age"] = stratum.substitute(ages, else_=ibis.null()).cast("string")
            out["age_band"] = ibis.ifelse(out["_age"] == "", ibis.null(), out["_age"])
            sex = stratum.substitute(sexes, else_=ibis.null())
            out["sex"] = ibis.ifelse(sex == "", ibis.null(), sex).cast("string")
    return out


def _not_a_number(label: str, src: ir.StringValue, value: ir.Value, what: str) -> Check:
    return Check(
        "bad_number",
        label,
        src.notnull() & value.isnull(),
        src,
        text("'", src, f"' in {label} is not {what}"),
    )


def _field_checks(t: ir.Table, profile: Profile, today: date) -> list[Check]:
    """Checks on each mapped field, over the typed layer."""
    checks: list[Check] = []
    lo = float(profile.rules.get("min_age", 0))  # type: ignore[arg-type]
    hi = float(profile.rules.get("max_age", 120))  # type: ignore[arg-type]
    for name, fm in profile.fields.items():
        src, value, label, kind = t[f"_s_{name}"], t[name], _label(fm, name), KINDS[name]
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
            checks.append(
                Check(
                    "unknown_code",
                    label,
                    src.notnull() & value.isnull(),
                    src,
                    text(
                        "'",
                        src,
                        f"' in {label} is not a known {_WHAT[name]}; correct it at "
                        f"the source or add it to [fields.{name}] codes in the profile",
                    ),
                )
            )
        elif kind == "country":
            checks.append(
                Check(
                    "unknown_code",
                    label,
                    src.notnull() & value.isnull(),
                    src,
                    text(
                        "'",
                        src,
                        f"' in {label} is not a country name or ISO code; correct "
                        f"it or add it to [fields.{name}] codes",
                    ),
                    t["_csuggest"],
                )
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


def _measure_checks(t: ir.Table, profile: Profile) -> list[Check]:
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
            code.notnull() & t["disease"].isnull(),
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


def _record_checks(t: ir.Table, profile: Profile) -> list[Check]:
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
                    " (area|disease|start|end|age|sex) already appeared in record ",
                    first,
                    "; send each cell once",
                ),
            )
        )
    if "_dup_first" in t.columns:
        first = t["_dup_first"]
        checks.append(
            Check(
                "duplicate_id",
                _label(profile.fields["case_id"], "case_id"),
                first.notnull() & (first < t[RECORD]),
                t["case_id"],
                text(
                    "case id ",
                    t["case_id"],
                    " already appeared in record ",
                    first,
                    "; remove the duplicate or give the case a distinct id",
                ),
            )
        )
    return checks


def repeated_ids(raw: ir.Table, profile: Profile) -> ir.Table:
    """Case ids that occur more than once in a prepared table, with their first record.

    The shell runs this on its own (it reads one column) and hands the few repeated ids
    back through :class:`Lookups`: a window over all columns, or a group-by inside the
    main expression, would make the engine keep every column of every record around.
    """
    fm = profile.fields["case_id"]
    ids = raw.select(
        case_id=blank_to_null(source(raw, str(fm.column)), fm.missing), rec=raw[RECORD]
    )
    ids = ids.filter(ids["case_id"].notnull())
    repeated = ids.group_by("case_id").aggregate(_dup_first=ids["rec"].min(), _dup_n=ids.count())
    return repeated.filter(repeated["_dup_n"] > 1).select("case_id", "_dup_first")


def _with_duplicates(t: ir.Table, repeated: pa.Table) -> ir.Table:
    """Attach the first record of every case id that occurs more than once."""
    table = ibis.memtable(repeated).rename(_dup_id="case_id")
    return t.left_join(table, t["case_id"] == table["_dup_id"]).drop("_dup_id")


_CELL = ("area", "disease", "period_start", "period_end", "age_band", "sex")


def _with_duplicate_cells(t: ir.Table) -> ir.Table:
    """Attach the first record of every counts cell that occurs more than once."""
    parts = [
        t[c].cast("string").fill_null("") if c in t.columns else ibis.literal("") for c in _CELL
    ]
    keyed = t.mutate(_cell=ibis.literal("|").join(parts))
    cells = keyed.select("_cell", RECORD)
    repeated = cells.group_by("_cell").aggregate(
        _cell_first=cells[RECORD].min(), _cell_n=cells.count()
    )
    repeated = repeated.filter(repeated["_cell_n"] > 1).drop("_cell_n")
    return keyed.left_join(repeated, "_cell").drop(s.endswith("_right"))


def _place(t: ir.Table, profile: Profile) -> dict[str, ir.Value]:
    """Layer 3b: the record's units, following mergers when the profile allows it."""
    if not profile.area.columns:
        return {
            "admin1": ibis.null().cast("string"),
            "admin2": ibis.null().cast("string"),
            "admin3": ibis.null().cast("string"),
            "area": ibis.literal(profile.country),
            "area_level": ibis.literal(0, "int8"),
            "_area_invalid": ibis.literal(False),
        }
    gone = t["_area_to"].notnull() & (t["period_start"] > t["_area_to"])
    early = t["_area_from"].notnull() & (t["period_end"] < t["_area_from"])
    follow = (
        (gone & t["_area_next"].notnull() & (t["_la_area_level"] == 1))
        if profile.area.crosswalk
        else ibis.literal(False)
    )
    # Before a unit that kept its predecessor's name existed, the name meant the old unit.
    before = (
        early
        & t["_area_alt"].notnull()
        & (t["_alt_to"].isnull() | (t["period_start"] <= t["_alt_to"]))
    )
    area = ibis.cases((follow, t["_area_next"]), (before, t["_area_alt"]), else_=t["_la_area"])
    admin1 = ibis.cases((follow, t["_area_next"]), (before, t["_area_alt"]), else_=t["_la_admin1"])
    return {
        "admin1": admin1,
        "admin2": t["_la_admin2"],
        "admin3": t["_la_admin3"],
        "area": area,
        "area_level": t["_la_area_level"],
        "_area_invalid": ((gone & ~follow) | (early & ~before)).fill_null(False),
    }


def _layer(t: ir.Table, build: Callable[[ir.Table], Mapping[str, ir.Value]]) -> ir.Table:
    return t.mutate(**build(t))


def harmonize(
    raw: ir.Table, profile: Profile, lookups: Lookups, today: date, source_file: str
) -> Harmonized:
    """Type every field and find the first rule each record fails (NULL: accepted).

    ``raw`` is an adapter's table after :func:`prepare`.
    """
    if "disease" not in profile.fields and profile.measures is None:
        raise ValueError(f"{profile.source_path}: [fields] disease is required")
    known: dict[str, list[str]] = {}
    t = _join_lookups(raw, profile, lookups)
    maps = _code_maps(profile)
    t = _layer(t, lambda t: _sources(t, profile))
    t = _join_codes(t, profile, maps)
    t = _layer(t, lambda t: _typed(t, profile, maps, known))

    def period(t: ir.Table) -> dict[str, ir.Value]:
        dates = {n: t[n] if n in profile.fields else ibis.null().cast("date") for n in DATE_FIELDS}
        texts = {n: t[f"_s_{n}"] for n in DATE_FIELDS if n in profile.fields}
        p = period_columns(t, profile.period, profile.country, dates, texts)
        return {
            "period": p.label,
            "period_type": p.type,
            "calendar": p.calendar,
            "period_start": p.start,
            "period_end": p.end,
            "_p_source": p.source,
            "_p_problem": p.problem,
        }

    t = _layer(t, period)
    t = _layer(t, lambda t: _place(t, profile))
    if lookups.repeated_ids is not None:
        t = _with_duplicates(t, lookups.repeated_ids)
    row_local = not (profile.dataset == "counts" and profile.measures is None)
    if not row_local:
        t = _with_duplicate_cells(t)

    def checks(t: ir.Table) -> list[Check]:
        return [
            *_field_checks(t, profile, today),
            *_measure_checks(t, profile),
            *_record_checks(t, profile),
        ]

    t = t.mutate(_q_rule=first_failed(checks(t)))
    return Harmonized(t, checks, profile, source_file, known, row_local)


def _final(t: ir.Table, profile: Profile, source_file: str) -> ir.Table:
    schema = CASES if profile.dataset == "cases" else COUNTS
    given = set(profile.fields) | {
        "country",
        "period",
        "period_type",
        "calendar",
        "period_start",
        "period_end",
        *_AREA_FIELDS,
    }
    if profile.measures is not None:
        given |= {"disease", "age_band", "sex"} if profile.measures.strata_column else {"disease"}
    out: dict[str, ir.Value] = {}
    for f in schema:
        if f.name == "country":
            value: ir.Value = ibis.literal(profile.country)
        elif f.name == "source_file":
            value = ibis.literal(source_file)
        elif f.name == "source_record":
            value = t[RECORD]
        elif f.name == "case_id" and "case_id" not in profile.fields:
            value = ibis.literal(source_file + "#").concat(t[RECORD].cast("string"))
        elif f.name == "case_count" and "case_count" not in profile.fields:
            value = ibis.literal(1)
        elif f.name == "cases" and profile.measures is not None:
            value = ibis.literal(0)
        elif f.name == "disease_detail" and "disease_detail" not in profile.fields:
            value = t["_s_disease"] if "disease" in profile.fields else ibis.null()
        elif f.name in given:
            value = t[f.name]
        else:
            value = ibis.null()
        if pa.types.is_date(f.type):
            # Date arithmetic yields a timestamp on some engines (DuckDB: date - interval)
            # while Ibis still calls it a date; the round trip forces a real date.
            value = value.cast("timestamp")
        out[f.name] = value.cast(ibis.dtype(f.type).copy(nullable=True))
    if profile.measures is not None:
        out[MEASURE], out[VALUE] = t[MEASURE], t[VALUE]
    return t.select(**out)
