"""Type, map, place and check every record, in one Ibis expression.

``harmonize`` takes an adapter's raw table (strings plus ``_record``), the profile and the
small lookup tables resolved from distinct values (``pipeline.lookups``), and returns the
records with every model field typed, plus the quarantine columns of ``pipeline.checks``.
``split`` then separates accepted rows (in the model schema) from quarantined ones. No row
is dropped anywhere: each row is either accepted or carries the rule it failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir
import ibis.selectors as s
import pyarrow as pa

from epibridge.adapters.base import RECORD
from epibridge.model.profile import FieldMap, Profile
from epibridge.model.schema import CASES, COUNTS, QUARANTINE
from epibridge.pipeline import vocabulary
from epibridge.pipeline.checks import Check, fold, text
from epibridge.pipeline.parse import blank_to_null, map_codes, parse_count, parse_date, \
    parse_number
from epibridge.pipeline.periods import period_columns
from epibridge.registry import diseases

DATE_FIELDS = ("date_onset", "date_diagnosis", "date_report")
MEASURE, VALUE = "_measure", "_value"


@dataclass(frozen=True)
class Lookups:
    """Small tables resolved once per distinct value (see ``pipeline.lookups``)."""

    areas: pa.Table | None = None
    countries: pa.Table | None = None
    periods: pa.Table | None = None


def prepare(raw: ir.Table, profile: Profile) -> ir.Table:
    """Reshape wide sources (one column per month) into one row per value."""
    if profile.unpivot is None:
        return raw
    up = profile.unpivot
    return raw.pivot_longer(s.cols(*up.columns), names_to=up.name, values_to=up.value)


def area_keys(raw: ir.Table, profile: Profile) -> ir.Table:
    """The place columns, as the keys the area lookup is built on and joined by."""
    keys = {f"_akey{i}": blank_to_null(raw[c]).fill_null("")
            for i, c in enumerate(profile.area.columns)}
    return raw.mutate(**keys) if keys else raw


def disease_codes(profile: Profile, fm: FieldMap | None) -> dict[str, str]:
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


class _Builder:
    """Collects the typed columns and the checks for one profile."""

    def __init__(self, raw: ir.Table, profile: Profile, lookups: Lookups, today: date) -> None:
        self.raw = raw
        self.profile = profile
        self.lookups = lookups
        self.today = ibis.literal(today)
        self.checks: list[Check] = []
        #: Known codes per source field, for "did you mean" suggestions (see ``suggest``).
        self.known: dict[str, list[str]] = {}

    # -- sources --------------------------------------------------------------------
    def source(self, name: str) -> tuple[ir.StringValue | None, str]:
        fm = self.profile.fields.get(name)
        if fm is None:
            return None, name
        if fm.value is not None:
            return ibis.literal(fm.value), f"{name} (constant)"
        column = str(fm.column)
        return blank_to_null(self.raw[column], fm.missing), column

    def require(self, name: str, value: ir.Value | None, label: str) -> None:
        fm = self.profile.fields.get(name)
        if value is not None and fm is not None and fm.required:
            self.checks.append(Check("missing_required", label, value.isnull(), ibis.literal(""),
                                     text(f"{label} is empty but required for {name}; fill it "
                                          "in at the source or fix the export")))

    # -- kinds of field -------------------------------------------------------------
    def code(self, name: str, codes: Mapping[str, str], what: str) -> ir.StringValue | None:
        src, label = self.source(name)
        if src is None:
            return None
        fm = self.profile.fields[name]
        mapped = map_codes(src, codes, fm.case_sensitive) if codes else src
        unknown = src.notnull() & mapped.isnull()
        self.known[label] = sorted(set(codes))
        self.checks.append(Check(
            "unknown_code", label, unknown, src,
            text("'", src, f"' in {label} is not a known {what}; correct it at the source "
                 f"or add it to [fields.{name}] codes in the profile")))
        self.require(name, src, label)
        return mapped

    def date(self, name: str) -> ir.DateValue | None:
        src, label = self.source(name)
        if src is None:
            return None
        fm = self.profile.fields[name]
        value = parse_date(src, fm.formats)
        shown = " or ".join(fm.formats) if fm.formats else "YYYY-MM-DD"
        self.checks.append(Check(
            "bad_date", label, src.notnull() & value.isnull(), src,
            text("'", src, f"' in {label} is not a real date written as {shown}; correct "
                 "it at the source, or add its format to the profile")))
        self.checks.append(Check(
            "future_date", label, value > self.today, src,
            text(f"{label} ", src, " is after the day of this run (", self.today,
                 "); check the year")))
        self.require(name, src, label)
        return value

    def count(self, name: str, default: int | None) -> ir.IntegerValue | None:
        src, label = self.source(name)
        if src is None:
            return None if default is None else ibis.literal(default, "int64")
        value = parse_count(src)
        self.checks.append(Check(
            "bad_number", label, src.notnull() & value.isnull(), src,
            text("'", src, f"' in {label} is not a whole number")))
        self.checks.append(Check(
            "negative_count", label, value < 0, src,
            text(f"{label} is negative (", src, "); counts cannot be below zero")))
        self.require(name, src, label)
        return value

    def age(self) -> ir.FloatingValue | None:
        src, label = self.source("age_years")
        if src is None:
            return None
        value = parse_number(src)
        lo = float(self.profile.rules.get("min_age", 0))  # type: ignore[arg-type]
        hi = float(self.profile.rules.get("max_age", 120))  # type: ignore[arg-type]
        self.checks.append(Check("bad_number", label, src.notnull() & value.isnull(), src,
                                 text("age '", src, f"' in {label} is not a number")))
        self.checks.append(Check(
            "implausible_age", label, (value < lo) | (value > hi), src,
            text("age ", src, f" in {label} is outside {lo:g}-{hi:g} years; check the "
                 "value (ages in months or days must be converted)")))
        self.require("age_years", src, label)
        return value

    def free(self, name: str) -> ir.StringValue | None:
        src, label = self.source(name)
        self.require(name, src, label)
        return src


def _area(b: _Builder, raw: ir.Table, period_start: ir.DateValue,
          period_end: ir.DateValue) -> dict[str, ir.Value]:
    profile = b.profile
    if not profile.area.columns:
        return {"admin1": ibis.null().cast("string"), "admin2": ibis.null().cast("string"),
                "admin3": ibis.null().cast("string"), "area": ibis.literal(profile.country),
                "area_level": ibis.literal(0, "int8")}
    problem = raw["_area_problem"]
    b.checks.append(Check(
        "unknown_area", "place", problem == "unknown_area", raw["_area_value"],
        text("'", raw["_area_value"], "' in ", raw["_area_field"], " is not a unit of ",
             ibis.literal(profile.country), " in the geography registry; correct the name, "
             "or add it to [area] codes in the profile"),
        ibis.ifelse(raw["_area_suggest"] == "", ibis.null(),
                    raw["_area_suggest"]).cast("string")))
    gone = raw["_area_to"].notnull() & (period_start > raw["_area_to"])
    early = raw["_area_from"].notnull() & (period_end < raw["_area_from"])
    follow = gone & raw["_area_next"].notnull() & (raw["area_level"] == 1) \
        if profile.area.crosswalk else ibis.literal(False)
    b.checks.append(Check(
        "unit_not_valid", "place", (gone & ~follow) | early, raw["area"],
        text("unit ", raw["area"], " was valid from ", raw["_area_from"], " to ",
             raw["_area_to"], " but the record is for ", period_start, "; use the unit "
             "valid at the time, or set [area] crosswalk = true to follow mergers"),
        raw["_area_next"]))
    admin1 = ibis.ifelse(follow, raw["_area_next"], raw["admin1"])
    return {
        "admin1": admin1,
        "admin2": raw["admin2"],
        "admin3": raw["admin3"],
        "area": ibis.ifelse(follow, raw["_area_next"], raw["area"]),
        "area_level": raw["area_level"],
    }


def _join_lookups(raw: ir.Table, profile: Profile, lookups: Lookups) -> ir.Table:
    if profile.area.columns:
        if lookups.areas is None:
            raise ValueError("area lookup missing")
        keyed = area_keys(raw, profile)
        table = ibis.memtable(lookups.areas)
        keys = [f"_akey{i}" for i in range(len(profile.area.columns))]
        raw = keyed.left_join(table, keys).drop(s.endswith("_right")).drop(*keys)
    if lookups.periods is not None:
        spec = profile.period
        periods = ibis.memtable(lookups.periods)
        if spec.dhis2:
            raw = raw.mutate(_pk=blank_to_null(raw[spec.dhis2]).fill_null(""))
            raw = raw.left_join(periods.drop("_pkey2"), raw["_pk"] == periods["_pkey"]) \
                .drop("_pk", "_pkey")
        else:
            raw = raw.mutate(_pk=blank_to_null(raw[str(spec.start)]).fill_null(""),
                             _pk2=blank_to_null(raw[str(spec.end)]).fill_null(""))
            raw = raw.left_join(periods, [raw["_pk"] == periods["_pkey"],
                                          raw["_pk2"] == periods["_pkey2"]]) \
                .drop("_pk", "_pk2", "_pkey", "_pkey2")
    if lookups.countries is not None:
        fm = profile.fields["country_of_infection"]
        countries = ibis.memtable(lookups.countries)
        raw = raw.mutate(_ck=blank_to_null(raw[str(fm.column)], fm.missing))
        raw = raw.left_join(countries, raw["_ck"] == countries["_ckey"]).drop("_ckey")
    return raw


@dataclass(frozen=True)
class Harmonized:
    """The typed records with their quarantine columns, and the code lists used."""

    table: ir.Table
    #: Known codes per source field: the shell suggests the nearest for unknown codes.
    known: Mapping[str, list[str]]


def harmonize(raw: ir.Table, profile: Profile, lookups: Lookups, today: date,
              source_file: str) -> Harmonized:
    """All model fields typed, plus ``_record`` and the quarantine columns."""
    raw = _join_lookups(prepare(raw, profile), profile, lookups)
    b = _Builder(raw, profile, lookups, today)
    cols: dict[str, ir.Value | None] = {"country": ibis.literal(profile.country)}
    fields = profile.fields
    disease = b.code("disease", disease_codes(profile, fields.get("disease")), "disease")
    if disease is None:
        if profile.measures is None:
            raise ValueError(f"{profile.source_path}: [fields.disease] is required")
    cols["disease"] = disease
    cols["sex"] = b.code("sex", fields["sex"].codes or vocabulary.SEX, "sex") \
        if "sex" in fields else None
    cols["age_band"] = b.free("age_band")
    if "age_band" in fields and fields["age_band"].codes:
        cols["age_band"] = b.code("age_band", fields["age_band"].codes, "age band")
    dates = {name: b.date(name) for name in DATE_FIELDS if name in fields}
    typed_dates = {n: (v if v is not None else ibis.null().cast("date"))
                   for n, v in ((n, dates.get(n)) for n in DATE_FIELDS)}
    period = period_columns(raw, profile.period, profile.country, typed_dates)
    b.checks.append(Check(
        "bad_period", "period", period.problem.notnull() & period.source.notnull(),
        period.source, text("period ", period.problem,
                            "; correct it at the source or fix [period] in the profile")))
    b.checks.append(Check(
        "missing_required", "period", period.start.isnull() & period.source.isnull(),
        ibis.literal(""), text("no period: ", period.problem.fill_null("the period columns "
                                                                      "are empty"))))
    if profile.dataset == "cases":
        onset, report, diag = (typed_dates[n] for n in DATE_FIELDS)
        b.checks.append(Check(
            "date_order", "date_onset", (onset > report).fill_null(False)
            | (onset > diag).fill_null(False), onset,
            text("onset ", onset, " is after the report date ", report, " or diagnosis "
                 "date ", diag, "; one of the dates is wrong")))
        cols.update(dates)
        cols["case_id"] = b.free("case_id")
        cols["disease_detail"] = b.free("disease_detail") if "disease_detail" in fields \
            else b.source("disease")[0]
        cols["age_years"] = b.age()
        cols["classification"] = b.code(
            "classification", fields["classification"].codes or vocabulary.CLASSIFICATION,
            "classification") if "classification" in fields else None
        cols["outcome"] = b.code("outcome", fields["outcome"].codes or vocabulary.OUTCOME,
                                 "outcome") if "outcome" in fields else None
        imported = b.code("imported", fields["imported"].codes or vocabulary.YES_NO,
                          "yes/no value") if "imported" in fields else None
        cols["imported"] = imported.cast("boolean") if imported is not None else None
        cols["pathogen_detail"] = b.free("pathogen_detail")
        cols["case_count"] = b.count("case_count", 1)
        if lookups.countries is not None:
            fm = fields["country_of_infection"]
            b.checks.append(Check(
                "unknown_code", str(fm.column), raw["_ck"].notnull() & raw["_country"].isnull(),
                raw["_ck"], text("'", raw["_ck"], f"' in {fm.column} is not a country name "
                                 "or ISO code"), raw["_csuggest"]))
            cols["country_of_infection"] = raw["_country"]
    else:
        cols["cases"] = b.count("cases", None)
        cols["deaths"] = b.count("deaths", None)
        if cols["cases"] is not None and cols["deaths"] is not None:
            b.checks.append(Check(
                "deaths_exceed_cases", "deaths", cols["deaths"] > cols["cases"],
                cols["deaths"], text("deaths (", cols["deaths"], ") exceed cases (",
                                     cols["cases"], ") in the same cell")))
    cols.update(_area(b, raw, period.start, period.end))
    if profile.measures is not None:
        cols.update(_measure_columns(b, raw, profile))
    cols.update(period=period.label, period_type=period.type, calendar=period.calendar,
                period_start=period.start, period_end=period.end,
                source_file=ibis.literal(source_file), source_record=raw[RECORD])
    schema = CASES if profile.dataset == "cases" else COUNTS
    out: dict[str, ir.Value] = {}
    for f in schema:
        value = cols.get(f.name)
        out[f.name] = (value if value is not None else ibis.null()).cast(
            ibis.dtype(f.type).copy(nullable=True))
    if profile.dataset == "cases" and "case_id" in fields:
        first = raw[RECORD].min().over(ibis.window(group_by=out["case_id"]))
        b.checks.append(Check(
            "duplicate_id", str(fields["case_id"].column or "case_id"),
            out["case_id"].notnull() & (first < raw[RECORD]), out["case_id"],
            text("case id ", out["case_id"], " already appeared in record ", first,
                 "; remove the duplicate or give the case a distinct id")))
    if profile.dataset == "cases" and "case_id" not in fields:
        out["case_id"] = ibis.literal(source_file + "#").concat(raw[RECORD].cast("string"))
    for name in (MEASURE, VALUE):
        if name in cols and cols[name] is not None:
            out[name] = cols[name]  # type: ignore[assignment]
    out[RECORD] = raw[RECORD]
    out.update(fold(b.checks))
    return Harmonized(raw.select(**out), b.known)


def _measure_columns(b: _Builder, raw: ir.Table, profile: Profile) -> dict[str, ir.Value]:
    spec = profile.measures
    assert spec is not None
    code = blank_to_null(raw[spec.column])
    disease = code.substitute({k: v[0] for k, v in spec.map.items()}, else_=ibis.null())
    measure = code.substitute({k: v[1] for k, v in spec.map.items()}, else_=ibis.null())
    b.known[spec.column] = sorted(spec.map)
    b.checks.append(Check(
        "unknown_code", spec.column, code.notnull() & disease.isnull(), code,
        text("'", code, f"' in {spec.column} is not a measure this profile maps; add it to "
             "[measures.map] or leave it out of the export")))
    b.checks.append(Check("missing_required", spec.column, code.isnull(), ibis.literal(""),
                          text(f"{spec.column} is empty")))
    value_text = blank_to_null(raw[spec.value])
    value = parse_count(value_text)
    b.checks.append(Check("missing_required", spec.value, value_text.isnull(),
                          ibis.literal(""), text(f"{spec.value} is empty")))
    b.checks.append(Check("bad_number", spec.value, value_text.notnull() & value.isnull(),
                          value_text, text("'", value_text, f"' in {spec.value} is not a "
                                           "whole number")))
    b.checks.append(Check("negative_count", spec.value, value < 0, value_text,
                          text(f"{spec.value} is negative (", value_text, ")")))
    cols: dict[str, ir.Value] = {"disease": disease.cast("string"),
                                 MEASURE: measure.cast("string"), VALUE: value,
                                 "cases": ibis.literal(0, "int64")}
    if spec.strata_column:
        stratum = blank_to_null(raw[spec.strata_column]).fill_null("")
        ages = {k: v[0] or "" for k, v in spec.strata.items()}
        sexes = {k: v[1] or "" for k, v in spec.strata.items()}
        age = stratum.substitute(ages, else_=ibis.null())
        sex = stratum.substitute(sexes, else_=ibis.null())
        if spec.strata:
            b.known[spec.strata_column] = sorted(spec.strata)
            b.checks.append(Check(
                "unknown_code", spec.strata_column, age.isnull(), stratum,
                text("'", stratum, f"' in {spec.strata_column} is not a disaggregation "
                     "this profile maps; add it to [measures.strata]")))
        cols["age_band"] = ibis.ifelse(age == "", ibis.null(), age).cast("string")
        cols["sex"] = ibis.ifelse(sex == "", ibis.null(), sex).cast("string")
    return cols


def split(typed: ir.Table, dataset: str) -> tuple[ir.Table, ir.Table]:
    """Accepted rows in the model schema, and quarantine rows in the quarantine schema."""
    schema = CASES if dataset == "cases" else COUNTS
    ok = typed.filter(typed["_q_rule"].isnull())
    extra = [c for c in (MEASURE, VALUE) if c in typed.columns]
    accepted = ok.select(*[f.name for f in schema], *extra)
    bad = typed.filter(typed["_q_rule"].notnull())
    quarantine = bad.select(
        file=bad["source_file"], record=bad[RECORD], field=bad["_q_field"],
        value=bad["_q_value"], rule=bad["_q_rule"], message=bad["_q_message"],
        suggestion=bad["_q_suggestion"], other_rules=bad["_q_other"])
    assert list(quarantine.columns) == [f.name for f in QUARANTINE]
    return accepted, quarantine

