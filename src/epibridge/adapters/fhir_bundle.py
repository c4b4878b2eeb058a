"""FHIR R4 case-report Bundles (see :mod:`epibridge.adapters.fhir`).

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

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from epibridge.adapters.base import RawTable, Unreadable, raw_from_arrow, strings_table
from epibridge.adapters.fhir import (
    LOINC,
    SNOMED,
    Json,
    bundle_resources,
    invalid_resource,
    json_as_list,
    json_coding,
    json_codings,
    json_display,
    json_identifier,
    json_obj,
    json_objs,
    json_reference,
    json_show,
    json_text,
    load_json,
    resolve_reference,
)
from epibridge.model.errors import SourceError

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


#: Observation codes read as place of infection / travel history.
COUNTRY_OF_INFECTION_CODES: frozenset[tuple[str, str]] = frozenset({(LOINC, "77984-3")})


TRAVEL_CODES: frozenset[tuple[str, str]] = frozenset({(SNOMED, "420008001")})


_LOCATION_COMPONENT = "LOC"


_CASE_TYPES = frozenset({"Patient", "Condition", "Observation", "Encounter", "Location"})


_AGE_UNIT_DAYS = {
    "a": "365.25",
    "mo": "30.4375",
    "wk": "7",
    "d": "1",
    "h": "0.0416666666666666666666666667",
}


def read_case_bundle(path: Path, options: Mapping[str, Any]) -> RawTable:
    """Read a Bundle of Patient/Condition/Observation; one row per Condition."""
    path = Path(path)
    document = load_json(path)
    if document.get("resourceType") != "Bundle":
        raise SourceError(
            path,
            f"expected a FHIR Bundle, found resourceType {document.get('resourceType')!r}",
            "case reports must be sent as a Bundle (collection, transaction, message...)",
        )
    unreadable: list[Unreadable] = []
    # (entry number, resource type, resource, fullUrl) of every valid resource we use
    valid: list[tuple[int, str, Json, str | None]] = []
    for number, where, resource, full_url in bundle_resources(path, document):
        if not isinstance(resource, dict):
            unreadable.append(
                Unreadable(number, where, json_show(resource), f"{where}: not a FHIR resource")
            )
            continue
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            message = f"{where}: not a FHIR resource (no resourceType)"
            unreadable.append(Unreadable(number, where, json_show(resource), message))
            continue
        if resource_type not in _CASE_TYPES:
            continue
        problem = invalid_resource(resource, str(resource_type))
        if problem is not None:
            unreadable.append(Unreadable(number, where, json_show(resource), f"{where}: {problem}"))
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
            for item in json_objs(resource.get("evidence")):
                for detail in json_as_list(item.get("detail")):
                    cited = resolve_reference(
                        json_obj(detail).get("reference"), index, "Observation"
                    )
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
    subject = json_obj(condition.get("subject"))
    patient = resolve_reference(subject.get("reference"), index, "Patient")
    onset = json_text(condition.get("onsetDateTime")) or json_text(
        json_obj(condition.get("onsetPeriod")).get("start")
    )
    code, system = json_coding(condition.get("code"))
    row: dict[str, str | None] = {
        "case_id": json_text(condition.get("id"))
        or json_identifier(condition.get("identifier"))
        or full_url,
        "patient_id": json_text(patient.get("id"))
        or json_identifier(patient.get("identifier"))
        or json_reference(subject),
        "sex": json_text(patient.get("gender")),
        "birth_date": json_text(patient.get("birthDate")),
        "condition_code": code,
        "condition_system": system,
        "condition_display": json_display(condition.get("code")),
        "onset_date": onset,
        "recorded_date": json_text(condition.get("recordedDate")),
        "verification_status": json_coding(condition.get("verificationStatus"))[0],
        "clinical_status": json_coding(condition.get("clinicalStatus"))[0],
        "abatement_date": json_text(condition.get("abatementDateTime"))
        or json_text(json_obj(condition.get("abatementPeriod")).get("start")),
    }
    if isinstance(patient.get("deceasedBoolean"), bool):
        row["deceased"] = "true" if patient["deceasedBoolean"] else "false"
    elif patient.get("deceasedDateTime"):
        row["deceased"] = "true"
    row["age"] = _age(condition, patient, onset)
    row.update(_address(condition, patient, index))

    mine = _condition_observations(condition, patient, index, observations, cited_by)
    codes = [json_coding(o.get("code"))[0] or "" for o in mine]
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
        focus = [json_obj(f).get("reference") for f in json_as_list(observation.get("focus"))]
        focus_conditions = [resolve_reference(f, index, "Condition") for f in focus]
        on_me = any(c is condition for c in [*focus_conditions, *citing])
        elsewhere = not on_me and (
            bool(citing)
            or any(
                c or (isinstance(f, str) and "Condition/" in f)
                for c, f in zip(focus_conditions, focus, strict=True)
            )
        )
        subject = resolve_reference(
            json_obj(observation.get("subject")).get("reference"), index, "Patient"
        )
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
        codings = json_codings(observation.get("code"))
        if codings & COUNTRY_OF_INFECTION_CODES:
            exposure = True
            exposure_country = exposure_country or _observation_value(observation)
        elif codings & TRAVEL_CODES:
            travelled = observation.get("valueBoolean") is not False
            travel.append(travelled)
            for component in json_objs(observation.get("component")):
                is_location = json_coding(component.get("code"))[0] == _LOCATION_COMPONENT
                if travelled and is_location and travel_country is None:
                    travel_country = _observation_value(component)
    if exposure or any(travel):
        imported: str | None = "true"
    else:
        imported = "false" if travel else None
    return {"imported": imported, "country_of_infection": exposure_country or travel_country}


def _age(condition: Json, patient: Json, onset: str | None) -> str | None:
    onset_age = json_obj(condition.get("onsetAge"))
    if onset_age.get("value") is not None:
        return _years(onset_age)
    for owner in (condition, patient):
        for extension in json_objs(owner.get("extension")):
            url = json_text(extension.get("url")) or ""
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
        unit = json_text(quantity.get("code")) or json_text(quantity.get("unit")) or "a"
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
    addresses = json_objs(patient.get("address"))
    if not addresses:
        encounter = resolve_reference(
            json_obj(condition.get("encounter")).get("reference"), index, "Encounter"
        )
        for item in json_objs(encounter.get("location")):
            location = resolve_reference(
                json_obj(item.get("location")).get("reference"), index, "Location"
            )
            if isinstance(location.get("address"), dict):
                addresses = [location["address"]]
                break
    home = [a for a in addresses if a.get("use") == "home"]
    chosen = (home or addresses or [{}])[0]
    return {
        "address_country": json_text(chosen.get("country")),
        "address_state": json_text(chosen.get("state")),
        "address_district": json_text(chosen.get("district")),
        "address_city": json_text(chosen.get("city")),
    }


def _observation_value(element: Json) -> str | None:
    if isinstance(element.get("valueCodeableConcept"), dict):
        return json_coding(element["valueCodeableConcept"])[0]
    if isinstance(element.get("valueQuantity"), dict):
        quantity = element["valueQuantity"]
        value = json_text(quantity.get("value"))
        unit = json_text(quantity.get("unit")) or json_text(quantity.get("code"))
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
            return json_text(element[key])
    if isinstance(element.get("valuePeriod"), dict):
        return json_text(element["valuePeriod"].get("start"))
    return None
