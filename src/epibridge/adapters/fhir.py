"""FHIR R4 (JSON): aggregate MeasureReports (IHE mADX) and case-report Bundles.

Resources are checked with the ``fhir.resources.R4B`` models (R4B's MeasureReport,
Patient, Condition, Observation, Encounter and Location are structurally R4's); a
resource that fails becomes an :class:`Unreadable` record naming the resource type, its
position and the first validation errors. Values are then taken from the JSON itself, so
strings reach the pipeline exactly as sent (``2024-03`` stays ``2024-03``, ``0.50`` stays
``0.50``).

The two readers are :mod:`epibridge.adapters.fhir_measurereport` and
:mod:`epibridge.adapters.fhir_bundle`; this module holds what they share.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from epibridge.adapters.sniff import invalid_json, read_utf8
from epibridge.model.errors import SourceError

LOINC = "http://loinc.org"


SNOMED = "http://snomed.info/sct"


MAX_ERRORS = 3


SHOW_CHARS = 200


Json = Any


def load_json(path: Path) -> dict[str, Json]:
    text = read_utf8(path, "FHIR JSON must be UTF-8; export it again")
    if not text.strip():
        raise SourceError(path, "the file is empty", "export the FHIR resource again")
    if text.lstrip().startswith("<"):
        raise SourceError(path, "FHIR XML is not supported", "send FHIR JSON instead")
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise invalid_json(path, exc, "the file may be truncated; export it again") from None
    except RecursionError:
        raise SourceError(path, "not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise SourceError(path, "not a FHIR resource: the JSON is not an object")
    return document


def bundle_resources(path: Path, bundle: Json) -> list[tuple[int, str, Json, str | None]]:
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
            found.append((position + 1, where, entry["resource"], json_text(entry.get("fullUrl"))))
    return found


def invalid_resource(resource: Json, resource_type: str) -> str | None:
    """Validate with the R4B model; return a short message, or None when valid."""
    if not isinstance(resource, dict):
        return f"{resource_type} is not a JSON object"
    try:
        model = get_fhir_model_class(resource_type)
        model.model_validate(resource)
    except RecursionError:
        return f"{resource_type} is nested too deeply"
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        return f"invalid {resource_type}: {short_error(exc)}"
    return None


def short_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        details = list(errors())
    except (TypeError, ValueError):
        return str(exc).splitlines()[0]
    parts = []
    for detail in details[:MAX_ERRORS]:
        location = ".".join(str(p) for p in detail.get("loc", ()) if p != "__root__")
        message = str(detail.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    more = len(details) - MAX_ERRORS
    if more > 0:
        parts.append(f"and {more} more problem(s)")
    return "; ".join(parts) or "failed validation"


def resolve_reference(reference: object, index: dict[str, Json], resource_type: str) -> Json:
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


def json_obj(value: object) -> dict[str, Json]:
    return value if isinstance(value, dict) else {}


def json_as_list(value: object) -> list[Json]:
    return value if isinstance(value, list) else []


def json_objs(value: object) -> list[dict[str, Json]]:
    return [item for item in json_as_list(value) if isinstance(item, dict)]


def json_text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text or None


def json_coding(concept: object) -> tuple[str | None, str | None]:
    """(code, system) of the first coding with a code; (text, None) when there is none."""
    concept = json_obj(concept)
    for coding in json_objs(concept.get("coding")):
        code = json_text(coding.get("code"))
        if code:
            return code, json_text(coding.get("system"))
    return json_text(concept.get("text")), None


def json_codings(concept: object) -> set[tuple[str, str]]:
    return {
        (str(c.get("system")), str(c.get("code")))
        for c in json_objs(json_obj(concept).get("coding"))
    }


def json_display(concept: object) -> str | None:
    concept = json_obj(concept)
    for coding in json_objs(concept.get("coding")):
        if json_text(coding.get("display")):
            return json_text(coding.get("display"))
    return json_text(concept.get("text"))


def json_identifier(value: object) -> str | None:
    identifiers = json_objs(value) if isinstance(value, list) else [json_obj(value)]
    for identifier in identifiers:
        found = json_text(identifier.get("value"))
        if found:
            system = json_text(identifier.get("system"))
            return f"{system}|{found}" if system else found
    return None


def json_reference(value: object) -> str | None:
    reference = json_obj(value)
    return (
        json_text(reference.get("reference"))
        or json_identifier(reference.get("identifier"))
        or json_text(reference.get("display"))
    )


def json_show(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = repr(type(value))
    return text if len(text) <= SHOW_CHARS else text[:SHOW_CHARS] + "..."
