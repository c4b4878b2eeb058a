"""Mapping profiles: shipped ones (this folder's ``*.toml``) and loading any profile file.

A profile is checked completely when loaded, so that a typo in a key is reported with its
line before any data is read (``docs/profiles.md`` documents every key).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pycountry

from epibridge.model.errors import ProfileError
from epibridge.model.profile import (
    DATASETS,
    FORMATS,
    MEASURES,
    AreaSpec,
    FieldMap,
    MeasureSpec,
    PeriodSpec,
    Profile,
    Unpivot,
)
from epibridge.model.schema import SCHEMAS
from epibridge.pipeline.parse import check_date_format
from epibridge.registry import diseases
from epibridge.registry.calendars import WEEK_SYSTEMS, country_calendars
from epibridge.tomlcheck import Checker

_TOP = {"profile", "read", "fields", "period", "area", "measures", "unpivot", "rules"}
_PROFILE_KEYS = {"name", "title", "version", "format", "dataset", "country", "description"}
_FIELD_KEYS = {
    "column",
    "value",
    "codes",
    "codes_from",
    "case_sensitive",
    "format",
    "formats",
    "required",
    "missing",
}
_PERIOD_KEYS = {
    "type",
    "calendar",
    "from_date",
    "date_column",
    "date_formats",
    "fallback_dates",
    "year",
    "week",
    "month",
    "dhis2",
    "start",
    "end",
    "buddhist_era",
    "month_names",
}
_AREA_KEYS = {"columns", "match", "codes", "crosswalk", "required_level", "missing"}
_MEASURE_KEYS = {"column", "value", "map", "strata_column", "strata", "deleted_column"}
_UNPIVOT_KEYS = {"columns", "name", "value"}
_READ_KEYS = {
    "encoding",
    "delimiter",
    "quote",
    "header",
    "skip_rows",
    "sheet",
    "header_row",
    "columns",
    "data_set",
}
_RULE_KEYS = {"min_age", "max_age"}
_DATES = ("date_onset", "date_diagnosis", "date_report")
_PERIOD_TYPES = ("day", "week", "month", "year")
#: Fields an adapter or the pipeline fills itself; a profile cannot map them.
_DERIVED = {
    "country",
    "period",
    "period_type",
    "calendar",
    "period_start",
    "period_end",
    "source_file",
    "source_record",
    "admin1",
    "admin2",
    "admin3",
    "area",
    "area_level",
    "year",
}
#: Fields a dataset cannot do without: the profile must map them (unless a long format's
#: [measures] fills them) and an empty value is quarantined as ``missing_required``.
_NEEDED = {
    "reporting": ("reports_expected", "reports_received"),
    "denominators": ("population",),
}


def _field(check: Checker, target: str, spec: Any, allowed: set[str]) -> FieldMap:
    section = f"fields.{target}"
    if target not in allowed:
        raise check.fail(
            "fields",
            target,
            f"'{target}' is not a field of this dataset; fields: {', '.join(sorted(allowed))}",
        )
    if isinstance(spec, str):
        return FieldMap(target=target, column=spec)
    spec = check.table(section, spec)
    check.keys(section, spec, _FIELD_KEYS)
    if ("column" in spec) == ("value" in spec):
        raise check.fail(section, None, "give exactly one of 'column' or 'value'")
    codes_from = spec.get("codes_from")
    if codes_from is not None:
        country, _, system = str(codes_from).partition(":")
        if not system or not diseases.national_map(country, system):
            raise check.fail(
                section,
                "codes_from",
                f"'{codes_from}' is not a national code map of the disease registry; write "
                "COUNTRY:system, e.g. PER:enfermedad (see docs/registries/diseases.md)",
            )
    formats = spec.get("formats", spec.get("format", ()))
    for fmt in check.strs(section, "formats", formats) if formats else ():
        try:
            check_date_format(fmt)
        except ValueError as exc:
            raise check.fail(section, "formats", str(exc)) from None
    return FieldMap(
        target=target,
        column=check.str_(section, "column", spec["column"]) if "column" in spec else None,
        value=str(spec["value"]) if "value" in spec else None,
        codes=check.codes(section, "codes", spec.get("codes", {})),
        codes_from=spec.get("codes_from"),
        case_sensitive=bool(spec.get("case_sensitive", False)),
        formats=check.strs(section, "formats", formats) if formats else (),
        required=bool(spec.get("required", False)),
        missing=check.strs(section, "missing", spec.get("missing", [])),
    )


def _date_formats(check: Checker, value: Any) -> tuple[str, ...]:
    formats = check.strs("period", "date_formats", value)
    for fmt in formats:
        try:
            check_date_format(fmt)
        except ValueError as exc:
            raise check.fail("period", "date_formats", str(exc)) from None
    return formats


def _period(check: Checker, spec: dict[str, Any], country: str) -> PeriodSpec:
    check.keys("period", spec, _PERIOD_KEYS)
    sources = [
        k for k in ("from_date", "date_column", "week", "month", "dhis2", "start") if k in spec
    ]
    if not sources and "year" not in spec:
        raise check.fail(
            "period",
            None,
            "say where the period comes from: from_date, "
            "year + week, year + month, year, dhis2, or start + end",
        )
    if len(sources) > 1 and set(sources) != {"week", "month"}:
        raise check.fail("period", sources[1], f"give one period source, not {sources}")
    if "from_date" in spec and spec["from_date"] not in _DATES:
        raise check.fail("period", "from_date", f"must be one of {', '.join(_DATES)}")
    calendar = spec.get("calendar", "iso")
    if calendar == "country" and country.upper() not in country_calendars():
        raise check.fail(
            "period",
            "calendar",
            f"the calendar registry records no week convention for {country}; name one "
            f"({', '.join(WEEK_SYSTEMS)})",
        )
    if calendar != "country" and calendar not in WEEK_SYSTEMS:
        raise check.fail(
            "period",
            "calendar",
            f"'{calendar}' is not a week convention; use one of {', '.join(WEEK_SYSTEMS)} "
            'or "country" (the reporting country\'s own)',
        )
    if spec.get("type", "week") not in _PERIOD_TYPES:
        raise check.fail("period", "type", f"must be one of {', '.join(_PERIOD_TYPES)}")
    names = spec.get("month_names", {})
    if not isinstance(names, dict) or not all(isinstance(v, int) for v in names.values()):
        raise check.fail("period", "month_names", "must map month names to numbers 1-12")
    return PeriodSpec(
        type=spec.get("type", "week"),
        calendar=spec.get("calendar", "iso"),
        from_date=spec.get("from_date"),
        date_column=spec.get("date_column"),
        date_formats=_date_formats(check, spec.get("date_formats", [])),
        fallback_dates=check.strs("period", "fallback_dates", spec.get("fallback_dates", [])),
        year=spec.get("year"),
        week=spec.get("week"),
        month=spec.get("month"),
        dhis2=spec.get("dhis2"),
        start=spec.get("start"),
        end=spec.get("end"),
        buddhist_era=bool(spec.get("buddhist_era", False)),
        month_names={k.strip().lower(): v for k, v in names.items()},
    )


def _toml_key(code: str) -> str:
    """A key as TOML spells it: quoted unless bare (DHIS2 analytics items such as
    ``DS.ACTUAL_REPORTS`` have a dot), so the error names the key and finds its line."""
    return code if re.fullmatch(r"[A-Za-z0-9_-]+", code) else json.dumps(code)


def _measure_target(check: Checker, code: str, target: Any, dataset: str) -> tuple[str, str]:
    """One ``[measures.map]`` entry: (disease, measure), the measure one of the dataset's."""
    names = MEASURES[dataset]
    shown = " | ".join(f'"{n}"' for n in names)
    # Reporting forms may cover all notifiable diseases at once: disease "" (or left out).
    keys = {"disease", "measure"}
    if not isinstance(target, dict) or not (
        set(target) == keys or (dataset == "reporting" and set(target) == {"measure"})
    ):
        raise check.fail(
            "measures.map", code, f'each entry is {{ disease = "CODE", measure = {shown} }}'
        )
    if target["measure"] not in names:
        raise check.fail(
            "measures.map",
            code,
            f"'{target['measure']}' is not a measure of a {dataset} profile; use {shown}",
        )
    return str(target.get("disease", "")), str(target["measure"])


def _measures(check: Checker, spec: dict[str, Any], dataset: str) -> MeasureSpec:
    check.keys("measures", spec, _MEASURE_KEYS)
    if dataset not in MEASURES:
        raise check.fail(
            "measures",
            None,
            f"a {dataset} profile reads one row per record; [measures] is for long formats "
            f"of {', '.join(MEASURES)}",
        )
    if dataset == "reporting" and "strata_column" in spec:
        raise check.fail(
            "measures",
            "strata_column",
            "reporting rates are not broken down by age or sex; leave strata_column out",
        )
    mapping: dict[str, tuple[str, str]] = {}
    for code, target in check.table("measures.map", spec.get("map", {})).items():
        mapping[str(code)] = _measure_target(check, _toml_key(str(code)), target, dataset)
    strata: dict[str, tuple[str | None, str | None]] = {}
    for code, target in check.table("measures.strata", spec.get("strata", {})).items():
        if not isinstance(target, dict) or not set(target) <= {"age_band", "sex"}:
            raise check.fail(
                "measures.strata",
                code,
                'each entry is { age_band = "0-4", '
                "sex = \"F\" } (either may be left out for 'all')",
            )
        strata[str(code)] = (target.get("age_band") or None, target.get("sex") or None)
    return MeasureSpec(
        column=check.str_("measures", "column", spec.get("column")),
        value=check.str_("measures", "value", spec.get("value")),
        map=mapping,
        strata_column=spec.get("strata_column"),
        strata=strata,
        deleted_column=spec.get("deleted_column"),
    )


def _needed_fields(
    check: Checker, dataset: str, fields: dict[str, FieldMap], long: bool
) -> dict[str, FieldMap]:
    """The dataset's indispensable fields: mapped (unless [measures] fills them), and
    marked required so that an empty value is quarantined instead of written as null."""
    if long:
        return fields
    for name in _NEEDED.get(dataset, ()):
        if name not in fields:
            raise check.fail(
                "fields",
                None,
                f"a {dataset} profile must map {name} (needed: {', '.join(_NEEDED[dataset])})",
            )
    return {
        t: replace(fm, required=True) if t in _NEEDED.get(dataset, ()) else fm
        for t, fm in fields.items()
    }


def _yearly(check: Checker, spec: dict[str, Any]) -> None:
    """Population figures are per calendar year: the period is a year column and no more."""
    sources = ("from_date", "date_column", "week", "month", "dhis2", "start")
    others = [k for k in sources if k in spec]
    if "year" not in spec or others or spec.get("type", "year") != "year":
        key = others[0] if others else ("type" if "type" in spec else "year")
        raise check.fail(
            "period",
            key,
            'denominators are yearly: write [period] year = "COLUMN" (the column holding '
            "the year) and no other period source",
        )


def parse_profile(text: str, path: Path) -> Profile:
    """Check and build a profile from TOML text; ``path`` is used in error messages."""
    check = Checker(path, text, ProfileError)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(path, "toml", f"not valid TOML: {exc}") from None
    check.keys("", doc, _TOP)
    head = check.table("profile", doc.get("profile"))
    check.keys("profile", head, _PROFILE_KEYS)
    for key in ("name", "format", "dataset", "country"):
        if key not in head:
            raise check.fail("profile", None, f"missing required key '{key}'")
    fmt, dataset = head["format"], head["dataset"]
    if (
        not isinstance(head["country"], str)
        or pycountry.countries.get(alpha_3=head["country"]) is None
    ):
        raise check.fail(
            "profile",
            "country",
            f"'{head['country']}' is not an ISO 3166-1 alpha-3 code (KHM, VNM, PER ...)",
        )
    if fmt not in FORMATS:
        raise check.fail(
            "profile", "format", f"'{fmt}' is not a format; use one of {', '.join(FORMATS)}"
        )
    if dataset not in DATASETS:
        raise check.fail(
            "profile", "dataset", f"'{dataset}' is not a dataset; use one of {', '.join(DATASETS)}"
        )
    read = check.table("read", doc.get("read", {}))
    check.keys("read", {k: v for k, v in read.items() if k != "unpivot"}, _READ_KEYS)
    allowed = {f.name for f in SCHEMAS[dataset]} - _DERIVED
    fields = {
        t: _field(check, t, s, allowed)
        for t, s in check.table("fields", doc.get("fields", {})).items()
    }
    fields = _needed_fields(check, dataset, fields, long="measures" in doc)
    period_table = check.table("period", doc.get("period", {}))
    if dataset == "denominators":
        _yearly(check, period_table)
    area = check.table("area", doc.get("area", {}))
    check.keys("area", area, _AREA_KEYS)
    if area.get("match", "name") not in ("name", "code"):
        raise check.fail("area", "match", 'must be "name" or "code"')
    unpivot = None
    if "unpivot" in doc:
        up = check.table("unpivot", doc["unpivot"])
        check.keys("unpivot", up, _UNPIVOT_KEYS)
        unpivot = Unpivot(
            check.strs("unpivot", "columns", up.get("columns")),
            check.str_("unpivot", "name", up.get("name")),
            check.str_("unpivot", "value", up.get("value")),
        )
    rules = check.table("rules", doc.get("rules", {}))
    check.keys("rules", rules, _RULE_KEYS)
    return Profile(
        name=head["name"],
        title=head.get("title", head["name"]),
        version=str(head.get("version", "1")),
        format=fmt,
        dataset=dataset,
        country=head["country"],
        source_path=str(path),
        description=head.get("description", ""),
        read=read,
        fields=fields,
        period=_period(check, period_table, head["country"]),
        area=AreaSpec(
            columns=check.strs("area", "columns", area.get("columns", [])),
            match=area.get("match", "name"),
            codes=check.codes("area", "codes", area.get("codes", {})),
            crosswalk=bool(area.get("crosswalk", False)),
            required_level=int(area.get("required_level", 0)),
            missing=check.strs("area", "missing", area.get("missing", [])),
        ),
        measures=_measures(check, check.table("measures", doc["measures"]), dataset)
        if "measures" in doc
        else None,
        unpivot=unpivot,
        rules=rules,
    )


def shipped() -> dict[str, Path]:
    """Shipped profiles by name (file stem)."""
    folder = resources.files(__name__)
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped profile by name, or a profile file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise ProfileError(candidate, "profile", "no such profile file")
        path = candidate
    else:
        known = shipped()
        if str(name_or_path) not in known:
            raise ProfileError(
                str(name_or_path),
                "profile",
                "no shipped profile of that name "
                f"and no such file; shipped profiles: {', '.join(sorted(known))}",
            )
        path = known[str(name_or_path)]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ProfileError(path, "profile", "profile files must be UTF-8 text") from None
    return parse_profile(text, path)
