"""FHIR R4 (JSON): aggregate MeasureReports (IHE mADX) and case-report Bundles.

Resources are checked with the ``fhir.resources.R4B`` models (R4B's MeasureReport,
Patient, Condition, Observation, Encounter and Location are structurally R4's); a
resource that fails becomes an :class:`Unreadable` record naming the resource type, its
position and the first validation errors. Values are then taken from the JSON itself, so
strings reach the pipeline exactly as sent (``2024-03`` stays ``2024-03``, ``0.50`` stays
``0.50``).

:func:`read_measure_reports` — a MeasureReport, or a Bundle holding MeasureReports
-----------------------------------------------------------------------------------------
One row per population count, flattened in document order: for each report, for each
``group``: first the *group total* rows (one per ``group.population``), then for each
``stratifier``, for each ``stratum``: one row per ``stratum.population``. A group or
stratum with no population still gives one row (``population_code`` and ``count`` null)
so that its ``measureScore`` is kept.

Columns: ``report_id`` (id, else first identifier as ``system|value``), ``subject`` (reference; an
identifier as ``system|value``; a ``#contained`` Location reference is replaced by that
Location's identifier when it has one), ``period_start``, ``period_end``, ``measure``,
``group_code``, ``group_system`` (first coding of ``group.code``; text if no coding),
``stratifier_code``, ``stratum_value``, ``stratum_components``, ``population_code``,
``count``, ``measure_score`` (``measureScore.value``), ``status``, ``type``, ``reporter``,
and ``_record``: the 1-based row number in this flattened order.

**Group totals vs strata.** A group total row has ``stratifier_code`` null; every stratum
row has it set (a stratifier without a code gets ``#1``, ``#2``..., its position in the
group). Each stratifier re-partitions the same total, so the pipeline must sum either the
total rows or the rows of one stratifier, never across them. ``stratum_value`` is the
code (else text) of ``stratum.value``; ``stratum_components`` is ``CODE=VALUE`` pairs of
``stratum.component`` sorted by code and joined by ``;`` (e.g. ``AGE=0-4;SEX=F``).
A stratifier with several codes has them joined by ``;``.

An invalid MeasureReport uses one record number (where its first row would have been)
for its :class:`Unreadable` entry, so record numbers stay unique. Bundle entries of
other types (Location, Organization...) are skipped.

:func:`read_case_bundle` — a Bundle of Patient / Condition / Observation (case reports)
----------------------------------------------------------------------------------------
One row per Condition; ``_record`` is the 1-based position of its entry in
``Bundle.entry``. Any Bundle type is read (collection, transaction, message, searchset,
document...). References are resolved against ``fullUrl`` and ``Type/id``.

Columns: ``case_id`` (Condition.id, else first identifier as ``system|value``, else ``fullUrl``),
``patient_id`` (Patient.id, else identifier, else the reference text), ``sex``
(Patient.gender), ``birth_date``, ``age``, ``deceased`` (``true`` for deceasedDateTime),
``address_country``, ``address_state``, ``address_district``, ``address_city`` (the
Patient's home address, else its first; else the address of the Location of the
Condition's Encounter), ``condition_code``, ``condition_system``, ``condition_display``
(first coding), ``onset_date`` (onsetDateTime, else onsetPeriod.start),
``recorded_date``, ``verification_status``, ``clinical_status`` (codes),
``abatement_date`` (abatementDateTime, else abatementPeriod.start),
``observation_codes`` and ``observation_values`` (``;``-joined, aligned by position;
a ``;`` inside a value becomes ``,``), ``imported``, ``country_of_infection``.

``age`` is in completed years: from ``Condition.onsetAge`` (units ``a``, ``mo``, ``wk``,
``d`` converted); else from a Condition or Patient extension whose URL ends in ``age``
holding an Age, integer or decimal; else computed from a full ``birthDate``
(YYYY-MM-DD) at the onset date, or at ``recordedDate`` when onset is missing or not a
full date. Otherwise null.

Observations of a Condition: those listed in its ``Condition.evidence.detail``, those
whose ``focus`` is the Condition, and those about the same Patient that neither focus on
nor are cited as evidence by another Condition; in Bundle order.

``country_of_infection``: the value of an Observation coded LOINC ``77984-3`` (Country
of exposure to illness); else the first location component (``ParticipationType#LOC``)
of a travel Observation. ``imported``: ``true`` when there is a travel Observation
(SNOMED CT ``420008001`` "Travel", as profiled by the HL7 eCR travel-history profile)
unless its ``valueBoolean`` is false (then ``false``), or a LOINC ``77984-3``
Observation; null otherwise (the pipeline may compare ``country_of_infection`` with the
reporting country).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from epibridge.adapters.base import RawTable, Unreadable, raw_from_arrow, strings_table
from epibridge.model.errors import SourceError

MEASURE_REPORT_COLUMNS: tuple[str, ...] = (
    "report_id",
    "subject",
    "period_start",
    "period_end",
    "measure",
    "group_code",
    "group_system",
    "stratifier_code",
    "stratum_value",
    "stratum_components",
    "population_code",
    "count",
    "measure_score",
    "status",
    "type",
    "reporter",
)

CASE_COLUMNS: tuple[str, ...] = (
    "case_id",
    "patient_id",
    "sex",
    "birth_date",
    "age",
    "deceased",
    "address_country",
    "address_state",
    "address_district",
    "address_city",
    "condition_code",
    "condition_system",
    "condition_display",
    "onset_date",
    "recorded_date",
    "verification_status",
    "clinical_status",
    "abatement_date",
    "observation_codes",
    "observation_values",
    "imported",
    "country_of_infection",
)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
#: Observation codes read as place of infection / travel history.
COUNTRY_OF_INFECTION_CODES: frozenset[tuple[str, str]] = frozenset({(LOINC, "77984-3")})
TRAVEL_CODES: frozenset[tuple[str, str]] = frozenset({(SNOMED, "420008001")})
_LOCATION_COMPONENT = "LOC"

_CASE_TYPES = frozenset({"Patient", "Condition", "Observation", "Encounter", "Location"})
_MAX_ERRORS = 3
_SHOW_CHARS = 200
_AGE_UNIT_DAYS = {
    "a": "365.25",
    "mo": "30.4375",
    "wk": "7",
    "d": "1",
    "h": "0.0416666666666666666666666667",
}

Json = Any


# --- MeasureReport ---------------------------------------------------------------------


def read_measure_reports(path: Path, options: Mapping[str, Any]) -> RawTable:
    """Read a MeasureReport or a Bundle of MeasureReports; see the module docstring."""
    path = Path(path)
    document = _load_json(path)
    resource_type = document.get("resourceType")
    if resource_type == "MeasureReport":
        reports: list[tuple[str, Json]] = [("MeasureReport", document)]
    elif resource_type == "Bundle":
        reports = [
            (where, resource)
            for _, where, resource, _ in _bundle_resources(path, document)
            if not isinstance(resource, dict) or resource.get("resourceType") == "MeasureReport"
        ]
    else:
        raise SourceError(
            path,
            f"expected a FHIR MeasureReport or Bundle, found resourceType {resource_type!r}",
            "choose the adapter for this file's format",
        )

    columns: dict[str, list[str | None]] = {name: [] for name in MEASURE_REPORT_COLUMNS}
    records: list[int] = []
    unreadable: list[Unreadable] = []
    record = 0
    for where, report in reports:
        problem = _invalid(report, "MeasureReport")
        if problem is not None:
            record += 1
            unreadable.append(Unreadable(record, where, _show(report), f"{where}: {problem}"))
            continue
        for row in _report_rows(report):
            record += 1
            for name in MEASURE_REPORT_COLUMNS:
                columns[name].append(row.get(name))
            records.append(record)
    return raw_from_arrow(path, strings_table(columns, records), tuple(unreadable))


def _report_rows(report: Json) -> Iterable[dict[str, str | None]]:
    period = _obj(report.get("period"))
    base: dict[str, str | None] = {
        "report_id": _text(report.get("id")) or _identifier(report.get("identifier")),
        "subject": _subject(report),
        "period_start": _text(period.get("start")),
        "period_end": _text(period.get("end")),
        "measure": _text(report.get("measure")),
        "status": _text(report.get("status")),
        "type": _text(report.get("type")),
        "reporter": _reference(report.get("reporter")),
    }
    for group in _objs(report.get("group")):
        code, system = _coding(group.get("code"))
        at_group = {**base, "group_code": code, "group_system": system}
        yield from _population_rows(at_group, group)
        for position, stratifier in enumerate(_objs(group.get("stratifier")), start=1):
            codes = [_coding(c)[0] for c in _list(stratifier.get("code"))]
            stratifier_code = ";".join(c for c in codes if c) or f"#{position}"
            for stratum in _objs(stratifier.get("stratum")):
                pairs = []
                for component in _objs(stratum.get("component")):
                    key = _coding(component.get("code"))[0] or ""
                    value = _coding(component.get("value"))[0] or ""
                    pairs.append(f"{key}={value}")
                yield from _population_rows(
                    {
                        **at_group,
                        "stratifier_code": stratifier_code,
                        "stratum_value": _coding(stratum.get("value"))[0],
                        "stratum_components": ";".join(sorted(pairs)) or None,
                    },
                    stratum,
                )


def _population_rows(
    context: dict[str, str | None], element: Json
) -> Iterable[dict[str, str | None]]:
    score = _text(_obj(element.get("measureScore")).get("value"))
    populations = _objs(element.get("population"))
    if not populations:
        yield {**context, "measure_score": score}
    for population in populations:
        yield {
            **context,
            "population_code": _coding(population.get("code"))[0],
            "count": _text(population.get("count")),
            "measure_score": score,
        }


def _subject(report: Json) -> str | None:
    subject = _obj(report.get("subject"))
    reference = _text(subject.get("reference"))
    if reference and reference.startswith("#"):
        for contained in _objs(report.get("contained")):
            if contained.get("id") == reference[1:]:
                return _identifier(contained.get("identifier")) or reference
    return _reference(subject)


# --- case Bundle -----------------------------------------------------------------------


def read_case_bundle(path: Path, options: Mapping[str, Any]) -> RawTable:
    """Read a Bundle of Patient/Condition/Observation; one row per Condition."""
    path = Path(path)
    document = _load_json(path)
    if document.get("resourceType") != "Bundle":
        raise SourceError(
            path,
            f"expected a FHIR Bundle, found resourceType {document.get('resourceType')!r}",
            "case reports must be sent as a Bundle (collection, transaction, message...)",
        )
    unreadable: list[Unreadable] = []
    # (entry number, resource type, resource, fullUrl) of every valid resource we use
    valid: list[tuple[int, str, Json, str | None]] = []
    for number, where, resource, full_url in _bundle_resources(path, document):
        if not isinstance(resource, dict):
            unreadable.append(
                Unreadable(number, where, _show(resource), f"{where}: not a FHIR resource")
            )
            continue
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            message = f"{where}: not a FHIR resource (no resourceType)"
            unreadable.append(Unreadable(number, where, _show(resource), message))
            continue
        if resource_type not in _CASE_TYPES:
            continue
        problem = _invalid(resource, str(resource_type))
        if problem is not None:
            unreadable.append(Unreadable(number, where, _show(resource), f"{where}: {problem}"))
            continue
        valid.append((number, str(resource_type), resource, full_url))

    index: dict[str, Json] = {}
    for _, resource_type, resource, full_url in valid:
        if full_url:
            index[full_url] = resource
        if isinstance(resource.get("id"), str):
            index[f"{resource_type}/{resource['id']}"] = resource
    observations = [(r, u) for _, t, r, u in valid if t == "Observation"]
    # id(observation) -> the Conditions that cite it in Condition.evidence.detail
    cited_by: dict[int, list[Json]] = {}
    for _, resource_type, resource, _ in valid:
        if resource_type == "Condition":
            for item in _objs(resource.get("evidence")):
                for detail in _list(item.get("detail")):
                    cited = _resolve(_obj(detail).get("reference"), index, "Observation")
                    if cited:
                        cited_by.setdefault(id(cited), []).append(resource)

    columns: dict[str, list[str | None]] = {name: [] for name in CASE_COLUMNS}
    records: list[int] = []
    for number, resource_type, condition, full_url in valid:
        if resource_type != "Condition":
            continue
        row = _case_row(condition, full_url, index, observations, cited_by)
        for name in CASE_COLUMNS:
            columns[name].append(row.get(name))
        records.append(number)
    return raw_from_arrow(path, strings_table(columns, records), tuple(unreadable))


def _case_row(
    condition: Json,
    full_url: str | None,
    index: dict[str, Json],
    observations: list[tuple[Json, str | None]],
    cited_by: dict[int, list[Json]],
) -> dict[str, str | None]:
    subject = _obj(condition.get("subject"))
    patient = _resolve(subject.get("reference"), index, "Patient")
    onset = _text(condition.get("onsetDateTime")) or _text(
        _obj(condition.get("onsetPeriod")).get("start")
    )
    code, system = _coding(condition.get("code"))
    row: dict[str, str | None] = {
        "case_id": _text(condition.get("id"))
        or _identifier(condition.get("identifier"))
        or full_url,
        "patient_id": _text(patient.get("id"))
        or _identifier(patient.get("identifier"))
        or _reference(subject),
        "sex": _text(patient.get("gender")),
        "birth_date": _text(patient.get("birthDate")),
        "condition_code": code,
        "condition_system": system,
        "condition_display": _display(condition.get("code")),
        "onset_date": onset,
        "recorded_date": _text(condition.get("recordedDate")),
        "verification_status": _coding(condition.get("verificationStatus"))[0],
        "clinical_status": _coding(condition.get("clinicalStatus"))[0],
        "abatement_date": _text(condition.get("abatementDateTime"))
        or _text(_obj(condition.get("abatementPeriod")).get("start")),
    }
    if isinstance(patient.get("deceasedBoolean"), bool):
        row["deceased"] = "true" if patient["deceasedBoolean"] else "false"
    elif patient.get("deceasedDateTime"):
        row["deceased"] = "true"
    row["age"] = _age(condition, patient, onset)
    row.update(_address(condition, patient, index))

    mine = _condition_observations(condition, patient, index, observations, cited_by)
    codes = [_coding(o.get("code"))[0] or "" for o in mine]
    values = [(_observation_value(o) or "").replace(";", ",") for o in mine]
    row["observation_codes"] = ";".join(codes) or None
    row["observation_values"] = ";".join(values) if mine else None
    row.update(_travel(mine))
    return row


def _condition_observations(
    condition: Json,
    patient: Json,
    index: dict[str, Json],
    observations: list[tuple[Json, str | None]],
    cited_by: dict[int, list[Json]],
) -> list[Json]:
    chosen: list[Json] = []
    for observation, _ in observations:
        citing = cited_by.get(id(observation), [])
        focus = [_obj(f).get("reference") for f in _list(observation.get("focus"))]
        focus_conditions = [_resolve(f, index, "Condition") for f in focus]
        on_me = any(c is condition for c in [*focus_conditions, *citing])
        elsewhere = not on_me and (
            bool(citing)
            or any(
                c or (isinstance(f, str) and "Condition/" in f)
                for c, f in zip(focus_conditions, focus, strict=True)
            )
        )
        subject = _resolve(_obj(observation.get("subject")).get("reference"), index, "Patient")
        about_patient = bool(patient) and subject is patient
        if on_me or (about_patient and not elsewhere):
            chosen.append(observation)
    return chosen


def _travel(observations: list[Json]) -> dict[str, str | None]:
    exposure = False
    exposure_country: str | None = None
    travel: list[bool] = []
    travel_country: str | None = None
    for observation in observations:
        codings = _codings(observation.get("code"))
        if codings & COUNTRY_OF_INFECTION_CODES:
            exposure = True
            exposure_country = exposure_country or _observation_value(observation)
        elif codings & TRAVEL_CODES:
            travelled = observation.get("valueBoolean") is not False
            travel.append(travelled)
            for component in _objs(observation.get("component")):
                is_location = _coding(component.get("code"))[0] == _LOCATION_COMPONENT
                if travelled and is_location and travel_country is None:
                    travel_country = _observation_value(component)
    if exposure or any(travel):
        imported: str | None = "true"
    else:
        imported = "false" if travel else None
    return {"imported": imported, "country_of_infection": exposure_country or travel_country}


def _age(condition: Json, patient: Json, onset: str | None) -> str | None:
    onset_age = _obj(condition.get("onsetAge"))
    if onset_age.get("value") is not None:
        return _years(onset_age)
    for owner in (condition, patient):
        for extension in _objs(owner.get("extension")):
            url = _text(extension.get("url")) or ""
            if not url.lower().rstrip("/").endswith("age"):
                continue
            for key in ("valueAge", "valueQuantity"):
                if isinstance(extension.get(key), dict):
                    return _years(extension[key])
            for key in ("valueInteger", "valueDecimal", "valueUnsignedInt"):
                if extension.get(key) is not None:
                    return _years({"value": extension[key], "code": "a"})
    birth = _full_date(patient.get("birthDate"))
    at = _full_date(onset) or _full_date(condition.get("recordedDate"))
    if birth is None or at is None or at < birth:
        return None
    return str(at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day)))


def _years(quantity: Json) -> str | None:
    try:
        value = Decimal(str(quantity.get("value")))
        unit = _text(quantity.get("code")) or _text(quantity.get("unit")) or "a"
        days = _AGE_UNIT_DAYS.get(unit)
        if days is None or not value.is_finite() or value < 0:
            return None
        return str(int(value * Decimal(days) / Decimal("365.25")))
    except (ArithmeticError, ValueError):
        return None


def _full_date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _address(condition: Json, patient: Json, index: dict[str, Json]) -> dict[str, str | None]:
    addresses = _objs(patient.get("address"))
    if not addresses:
        encounter = _resolve(_obj(condition.get("encounter")).get("reference"), index, "Encounter")
        for item in _objs(encounter.get("location")):
            location = _resolve(_obj(item.get("location")).get("reference"), index, "Location")
            if isinstance(location.get("address"), dict):
                addresses = [location["address"]]
                break
    home = [a for a in addresses if a.get("use") == "home"]
    chosen = (home or addresses or [{}])[0]
    return {
        "address_country": _text(chosen.get("country")),
        "address_state": _text(chosen.get("state")),
        "address_district": _text(chosen.get("district")),
        "address_city": _text(chosen.get("city")),
    }


def _observation_value(element: Json) -> str | None:
    if isinstance(element.get("valueCodeableConcept"), dict):
        return _coding(element["valueCodeableConcept"])[0]
    if isinstance(element.get("valueQuantity"), dict):
        quantity = element["valueQuantity"]
        value = _text(quantity.get("value"))
        unit = _text(quantity.get("unit")) or _text(quantity.get("code"))
        return f"{value} {unit}" if value and unit else value
    for key in (
        "valueString",
        "valueBoolean",
        "valueInteger",
        "valueDateTime",
        "valueTime",
        "valueDecimal",
    ):
        if key in element:
            return _text(element[key])
    if isinstance(element.get("valuePeriod"), dict):
        return _text(element["valuePeriod"].get("start"))
    return None


# --- shared helpers --------------------------------------------------------------------


def _load_json(path: Path) -> dict[str, Json]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(path, f"cannot be opened: {exc.strerror or exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(path, "the file is UTF-16 text, not UTF-8", "save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(
            path,
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line})",
            "FHIR JSON must be UTF-8; export it again",
        ) from None
    if not text.strip():
        raise SourceError(path, "the file is empty", "export the FHIR resource again")
    if text.lstrip().startswith("<"):
        raise SourceError(path, "FHIR XML is not supported", "send FHIR JSON instead")
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise SourceError(
            path,
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            "the file may be truncated; export it again",
        ) from None
    except RecursionError:
        raise SourceError(path, "not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise SourceError(path, "not a FHIR resource: the JSON is not an object")
    return document


def _bundle_resources(path: Path, bundle: Json) -> list[tuple[int, str, Json, str | None]]:
    """(1-based entry number, location text, resource, fullUrl) for each Bundle entry.

    Entries without a ``resource`` (e.g. transaction responses) are skipped; an entry
    that is not a JSON object is returned as its own "resource" so that it is reported.
    """
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise SourceError(path, "Bundle.entry is not a list", "the Bundle is malformed")
    found: list[tuple[int, str, Json, str | None]] = []
    for position, entry in enumerate(entries):
        where = f"Bundle.entry[{position}]"
        if not isinstance(entry, dict):
            found.append((position + 1, where, entry, None))
        elif "resource" in entry:
            found.append((position + 1, where, entry["resource"], _text(entry.get("fullUrl"))))
    return found


def _invalid(resource: Json, resource_type: str) -> str | None:
    """Validate with the R4B model; return a short message, or None when valid."""
    if not isinstance(resource, dict):
        return f"{resource_type} is not a JSON object"
    try:
        model = get_fhir_model_class(resource_type)
        model.model_validate(resource)
    except RecursionError:
        return f"{resource_type} is nested too deeply"
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        return f"invalid {resource_type}: {_short_error(exc)}"
    return None


def _short_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        details = list(errors())
    except (TypeError, ValueError):
        return str(exc).splitlines()[0]
    parts = []
    for detail in details[:_MAX_ERRORS]:
        location = ".".join(str(p) for p in detail.get("loc", ()) if p != "__root__")
        message = str(detail.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    more = len(details) - _MAX_ERRORS
    if more > 0:
        parts.append(f"and {more} more problem(s)")
    return "; ".join(parts) or "failed validation"


def _resolve(reference: object, index: dict[str, Json], resource_type: str) -> Json:
    if not isinstance(reference, str) or not reference:
        return {}
    candidates = [reference]
    parts = [p for p in reference.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2:
        candidates.append(f"{parts[-2]}/{parts[-1]}")
    for candidate in candidates:
        found = index.get(candidate)
        if isinstance(found, dict) and found.get("resourceType") == resource_type:
            return found
    return {}


def _obj(value: object) -> dict[str, Json]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Json]:
    return value if isinstance(value, list) else []


def _objs(value: object) -> list[dict[str, Json]]:
    return [item for item in _list(value) if isinstance(item, dict)]


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text or None


def _coding(concept: object) -> tuple[str | None, str | None]:
    """(code, system) of the first coding with a code; (text, None) when there is none."""
    concept = _obj(concept)
    for coding in _objs(concept.get("coding")):
        code = _text(coding.get("code"))
        if code:
            return code, _text(coding.get("system"))
    return _text(concept.get("text")), None


def _codings(concept: object) -> set[tuple[str, str]]:
    return {(str(c.get("system")), str(c.get("code"))) for c in _objs(_obj(concept).get("coding"))}


def _display(concept: object) -> str | None:
    concept = _obj(concept)
    for coding in _objs(concept.get("coding")):
        if _text(coding.get("display")):
            return _text(coding.get("display"))
    return _text(concept.get("text"))


def _identifier(value: object) -> str | None:
    identifiers = _objs(value) if isinstance(value, list) else [_obj(value)]
    for identifier in identifiers:
        found = _text(identifier.get("value"))
        if found:
            system = _text(identifier.get("system"))
            return f"{system}|{found}" if system else found
    return None


def _reference(value: object) -> str | None:
    reference = _obj(value)
    return (
        _text(reference.get("reference"))
        or _identifier(reference.get("identifier"))
        or _text(reference.get("display"))
    )


def _show(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(type(value))
    return text if len(text) <= _SHOW_CHARS else text[:_SHOW_CHARS] + "..."
