"""The IHR (2005) Annex 2 worksheet of an alert: pre-filled by the hub, signed by a country.

Annex 2 of the International Health Regulations (2005) is the decision instrument a
State Party uses to decide whether an event must be notified to WHO. It asks four
questions; an event meeting at least two of them is notified:

1. ``serious``: is the public health impact of the event serious?
2. ``unusual``: is the event unusual or unexpected?
3. ``spread``: is there a significant risk of international spread?
4. ``restrictions``: is there a significant risk of international travel or trade
   restrictions?

``prefill`` gathers the evidence the hub holds for each question: cases and deaths in the
alert's areas and weeks with the case fatality ratio and the same weeks of earlier years
(``regional.counts_as_of``); the detectors' p-values, relative risk and recurrence interval
(the alert's detail); the cross-border flag, the borders between countries next to the
alert's areas and the imported cases of line lists (``regional.cases_as_of``). The fourth
question is the focal point's judgement: the hub gives context only. Counts of a country
whose data the reader may not see (``access.visible_countries``) are left out and named.

``complete`` takes the focal point's answers (yes, no or unknown, with a justification),
stores the completed worksheet as canonical JSON (RFC 8785) in an ``ihr_signed`` alert
event, which ``alert_store.record`` writes with its transparency-log leaf in the same
transaction, so ``epibridge audit verify`` covers it. ``sign_worksheet`` signs a stored
worksheet with the hub's key (``typ`` ``epibridge-ihr+jws``), as alert documents are.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, get_args

import pyarrow as pa
from sqlalchemy import Connection, Engine

from epibridge.hub.access import Decision, Principal, alert_decision
from epibridge.hub.alert_store import (
    Alert,
    AlertError,
    events,
    read,
    record,
    time_text,
    writing,
)
from epibridge.hub.log import canonical
from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import cases_as_of, counts_as_of
from epibridge.registry.geography import adjacency, admin_chain, valid_on
from epibridge.transport.keys import sign_compact
from epibridge.transport.keystore import SigningKey

WORKSHEET_TYPE = "epibridge-ihr+jws"
EVENT: Final = "ihr_signed"
FORM = "IHR (2005) Annex 2 decision instrument"
Answer = Literal["yes", "no", "unknown"]
ANSWERS: tuple[Answer, ...] = get_args(Answer)
QuestionId = Literal["serious", "unusual", "spread", "restrictions"]
QUESTIONS: dict[QuestionId, str] = {
    "serious": "Is the public health impact of the event serious?",
    "unusual": "Is the event unusual or unexpected?",
    "spread": "Is there a significant risk of international spread?",
    "restrictions": "Is there a significant risk of international travel or trade restrictions?",
}
#: Annex 2: an event meeting at least this many of the four criteria is notified to WHO.
NOTIFY_AT = 2
#: Earlier years whose same weeks the first question compares with.
HISTORY_YEARS = 5
#: The roles that sign for a country (people; a node cannot).
SIGNERS = frozenset({"country_epidemiologist", "country_data_manager"})
MAX_TEXT = 4000


# -- evidence -----------------------------------------------------------------------------


def week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _weeks(first: date, last: date) -> list[date]:
    found, day = [], first
    while day <= last:
        found.append(day)
        day += timedelta(weeks=1)
    return found


def _same_week(day: date, years_back: int) -> date:
    """The Monday of the same ISO week ``years_back`` years earlier (week 53 -> 52)."""
    year, week, _ = day.isocalendar()
    try:
        return date.fromisocalendar(year - years_back, week, 1)
    except ValueError:
        return date.fromisocalendar(year - years_back, 52, 1)


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or not bottom:
        return None
    return top / bottom


@dataclass(frozen=True)
class Tally:
    """Cases and deaths of the total cells (all ages, both sexes) of some areas and weeks."""

    cells: int
    cases: int | None  # None: no cell at all
    withheld: int  # cells whose cases were suppressed
    deaths: int | None  # None: no cell reported deaths
    cases_with_deaths: int  # cases of the cells that reported deaths (the CFR's denominator)
    by_area: dict[str, tuple[int, int | None]]

    def json(self) -> dict[str, Any]:
        return {
            "cells": self.cells,
            "cases": self.cases,
            "withheld_cells": self.withheld,
            "deaths": self.deaths,
            "case_fatality_ratio": _ratio(self.deaths, self.cases_with_deaths),
        }


def _tally(cells: pa.Table, areas: Iterable[str]) -> Tally:
    wanted = set(areas)
    count = withheld = cases = deaths = with_deaths = 0
    any_deaths = False
    by_area: dict[str, tuple[int, int | None]] = {}
    for r in cells.to_pylist():
        if r["area"] not in wanted or r["sex"] is not None or r["age_band"] is not None:
            continue
        if r["period_type"] != "week":
            continue
        count += 1
        area_cases, area_deaths = by_area.get(r["area"], (0, None))
        if r["cases_suppressed"] or r["cases"] is None:
            withheld += 1
            continue
        cases += int(r["cases"])
        area_cases += int(r["cases"])
        if r["deaths"] is not None and not r["deaths_suppressed"]:
            any_deaths = True
            deaths += int(r["deaths"])
            with_deaths += int(r["cases"])
            area_deaths = (area_deaths or 0) + int(r["deaths"])
        by_area[r["area"]] = (area_cases, area_deaths)
    return Tally(
        count,
        cases if count else None,
        withheld,
        deaths if any_deaths else None,
        with_deaths,
        by_area,
    )


def _counts(
    engine: Engine, at: datetime, alert: Alert, countries: list[str], first: date, last: date
) -> Tally:
    if not countries:
        return _tally(pa.table({}), ())
    cells = counts_as_of(
        engine,
        at,
        Filters(countries=countries, diseases=(alert.disease,), period_from=first, period_to=last),
    )
    return _tally(cells, alert.areas)


def _serious(
    engine: Engine, at: datetime, alert: Alert, countries: list[str], years: int
) -> dict[str, Any]:
    now = _counts(engine, at, alert, countries, alert.first_week, alert.last_week)
    earlier: list[dict[str, Any]] = []
    for back in range(1, years + 1):
        first, last = _same_week(alert.first_week, back), _same_week(alert.last_week, back)
        past = _counts(engine, at, alert, countries, first, last)
        earlier.append(
            {
                "years_back": back,
                "first_week": week_label(first),
                "last_week": week_label(last),
                "cases": past.cases,
                "deaths": past.deaths,
            }
        )
    held = [e["cases"] for e in earlier if e["cases"] is not None]
    mean = sum(held) / len(held) if held else None
    return {
        **now.json(),
        "by_area": [
            {"area": area, "cases": c, "deaths": d} for area, (c, d) in sorted(now.by_area.items())
        ],
        "earlier_years": earlier,
        "earlier_years_with_data": len(held),
        "earlier_mean_cases": mean,
        "ratio_to_earlier_mean": _ratio(now.cases, mean),
    }


def _unusual(alert: Alert) -> dict[str, Any]:
    signals = alert.detail.get("signals", [])
    clusters = [s for s in signals if s.get("kind") == "cluster"]
    temporal = [s for s in signals if s.get("kind") == "temporal"]

    def smallest(rows: list[dict[str, Any]], key: str) -> float | None:
        found = [r[key] for r in rows if r.get(key) is not None]
        return min(found) if found else None

    def largest(rows: list[dict[str, Any]], key: str) -> float | None:
        found = [r[key] for r in rows if r.get(key) is not None]
        return max(found) if found else None

    observed, expected = alert.detail.get("observed"), alert.detail.get("expected")
    return {
        "methods": alert.detail.get("methods", []),
        "min_p_value": alert.detail.get("min_p_value"),
        "cluster_p_value": smallest(clusters, "p_value"),
        "relative_risk": largest(clusters, "relative_risk"),
        "recurrence_interval_weeks": largest(clusters, "recurrence_interval_weeks"),
        "temporal_alarms": len(temporal),
        "temporal_min_p_value": smallest(temporal, "p_value"),
        "observed": observed,
        "expected": expected,
        "observed_to_expected": _ratio(observed, expected),
        "signals": [
            {
                "kind": s.get("kind"),
                "method": s.get("method"),
                "areas": s.get("areas", []),
                "first_week": s.get("first_week"),
                "last_week": s.get("last_week"),
                "observed": s.get("observed"),
                "expected": s.get("expected"),
                "p_value": s.get("p_value"),
                "relative_risk": s.get("relative_risk"),
                "recurrence_interval_weeks": s.get("recurrence_interval_weeks"),
            }
            for s in signals
        ],
    }


def _in_areas(code: str, areas: frozenset[str]) -> bool:
    """Whether a line-list area (possibly below admin-1) lies in one of ``areas``."""
    if code in areas:
        return True
    try:
        return any(c in areas for c in admin_chain(code).values())
    except KeyError:
        return False


def _imported(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    return None


def _line_list(engine: Engine, at: datetime, alert: Alert, countries: list[str]) -> dict[str, Any]:
    if not countries:
        rows: list[dict[str, Any]] = []
    else:
        rows = cases_as_of(
            engine, at, Filters(countries=countries, diseases=(alert.disease,))
        ).to_pylist()
    weeks = {week_label(d) for d in _weeks(alert.first_week, alert.last_week)}
    areas = frozenset(alert.areas)
    total = imported = unknown = 0
    origins: Counter[str] = Counter()
    for r in rows:
        if r["period"] not in weeks or not _in_areas(r["area"], areas):
            continue
        fields = json.loads(r["fields"])
        n = int(r["case_count"])
        total += n
        flag = _imported(fields.get("imported"))
        if flag is None:
            unknown += n
        elif flag:
            imported += n
            origins[str(fields.get("country_of_infection") or "unknown")] += n
    return {
        "held": bool(rows),
        "cases": total,
        "imported": imported,
        "import_status_unknown": unknown,
        "countries_of_infection": dict(sorted(origins.items())),
    }


def _current(code: str, on: date) -> bool:
    try:
        return valid_on(code, on)
    except KeyError:
        return False


def _borders(alert: Alert) -> list[dict[str, Any]]:
    """Each border between an area of the alert and an area of another country, both in
    the units valid in the alert's last week (Viet Nam's before or after its 2025 merger)."""
    areas = set(alert.areas)
    found = []
    for pair in adjacency(cross_border_only=True):
        if not (_current(pair.code_a, alert.last_week) and _current(pair.code_b, alert.last_week)):
            continue
        for mine, other, country, their_country in (
            (pair.code_a, pair.code_b, pair.country_a, pair.country_b),
            (pair.code_b, pair.code_a, pair.country_b, pair.country_a),
        ):
            if mine in areas:
                found.append(
                    {
                        "area": mine,
                        "country": country,
                        "neighbour": other,
                        "neighbour_country": their_country,
                        "neighbour_in_alert": other in areas,
                        "shared_border_km": pair.shared_border_km,
                    }
                )
    return sorted(found, key=lambda b: (b["area"], b["neighbour"]))


def prefill(
    engine: Engine,
    alert: Alert,
    at: datetime,
    visible: frozenset[str] | None = None,
    *,
    years: int = HISTORY_YEARS,
) -> dict[str, Any]:
    """The worksheet's evidence for ``alert`` from what the hub held at ``at``; counts and
    line lists only of ``visible`` countries (None: every country)."""
    shown = [c for c in alert.countries if visible is None or c in visible]
    withheld = [c for c in alert.countries if c not in shown]
    weeks = _weeks(alert.first_week, alert.last_week)
    questions: dict[str, dict[str, Any]] = {
        "serious": _serious(engine, at, alert, shown, years),
        "unusual": _unusual(alert),
        "spread": {
            "cross_border": alert.cross_border,
            "countries": list(alert.countries),
            "early_warning": alert.early_warning,
            "borders": _borders(alert),
            "line_list": _line_list(engine, at, alert, shown),
        },
        "restrictions": {
            "countries": list(alert.countries),
            "cross_border": alert.cross_border,
            "early_warning": alert.early_warning,
            "status": alert.status,
            "note": "for the national focal point to assess: the hub holds no data on "
            "travel, trade or measures taken by other States",
        },
    }
    return {
        "form": FORM,
        "alert_id": alert.alert_id,
        "alert_title": alert.title,
        "alert_status": alert.status,
        "disease": alert.disease,
        "countries": list(alert.countries),
        "areas": list(alert.areas),
        "first_week": week_label(alert.first_week),
        "last_week": week_label(alert.last_week),
        "weeks": len(weeks),
        "as_of": time_text(at),
        "counts_of": shown,
        "counts_withheld_for": withheld,
        "questions": [
            {"id": q, "question": text, "evidence": questions[q]} for q, text in QUESTIONS.items()
        ],
    }


# -- completion and signature -------------------------------------------------------------


def sign_decision(principal: Principal, alert: Alert) -> Decision:
    """May ``principal`` complete and sign the worksheet? The policy of ``alerts.ack`` (a
    country role of a country concerned, ``access.alert_decision``), for people only."""
    decision = alert_decision(principal, "alerts.ack", alert.countries, alert.status)
    if decision.allowed and principal.role not in SIGNERS:
        return Decision(
            False,
            "role_not_allowed",
            f"the role {principal.role} may not sign an IHR worksheet: a country's "
            "epidemiologist or data manager signs as national focal point",
        )
    return decision


def _allowed(signer: Principal, alert: Alert) -> None:
    decision = sign_decision(signer, alert)
    if not decision.allowed:
        raise AlertError(decision.reason, decision.message)


@dataclass(frozen=True)
class Reply:
    """One question's answer and the focal point's justification."""

    answer: str
    justification: str


def _checked(replies: Mapping[str, Reply]) -> dict[str, dict[str, str]]:
    missing = [q for q in QUESTIONS if q not in replies]
    unknown = sorted(set(replies) - set(QUESTIONS))
    if missing or unknown:
        raise AlertError(
            "invalid_request",
            "the worksheet answers the questions "
            f"{', '.join(QUESTIONS)}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not questions: {', '.join(unknown)}" if unknown else ""),
        )
    done: dict[str, dict[str, str]] = {}
    for q in QUESTIONS:
        reply = replies[q]
        if reply.answer not in ANSWERS:
            raise AlertError(
                "invalid_request",
                f"question {q}: {reply.answer!r} is not an answer (one of {', '.join(ANSWERS)})",
            )
        justification = reply.justification.strip()
        if not justification:
            raise AlertError("invalid_request", f"question {q}: a justification is needed")
        if len(justification) > MAX_TEXT:
            raise AlertError(
                "invalid_request", f"question {q}: the justification exceeds {MAX_TEXT} characters"
            )
        done[q] = {"answer": reply.answer, "justification": justification}
    return done


def complete(
    engine: Engine,
    alert_id: str,
    replies: Mapping[str, Reply],
    signer: Principal,
    now: datetime,
    *,
    context: str = "",
    visible: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Record ``signer``'s completed worksheet: an ``ihr_signed`` event and its log leaf."""
    answers = _checked(replies)
    if len(context) > MAX_TEXT:
        raise AlertError("invalid_request", f"the context exceeds {MAX_TEXT} characters")
    with engine.connect() as c:
        seen = read(c, alert_id)
    _allowed(signer, seen)
    worksheet = prefill(engine, seen, now, visible)
    with writing(engine) as c:
        alert = read(c, alert_id, lock=True)
        _allowed(signer, alert)
        met = sum(1 for a in answers.values() if a["answer"] == "yes")
        document = {
            "worksheet": worksheet,
            "answers": answers,
            "context": context.strip(),
            "criteria_met": met,
            "notify_who": met >= NOTIFY_AT,
            "country": signer.country,
            "signed_by": signer.name,
            "role": signer.role,
            "signed_at": time_text(now),
            "alert_state_sha256": alert.state_sha256(),
        }
        event = record(c, alert_id, EVENT, signer.name, canonical(document).decode(), now)
    return {"event_no": event.event_no, **document}


def completions(connection: Connection, alert_id: str) -> list[dict[str, Any]]:
    """Every signed worksheet of an alert, oldest first, with its event number."""
    return [
        {"event_no": e.event_no, **json.loads(e.text)}
        for e in events(connection, alert_id)
        if e.kind == EVENT
    ]


def visible_completions(
    principal: Principal, found: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The signed worksheets ``principal`` may read: the hub's roles every one, a country
    its own (a national assessment), anyone else none."""
    if principal.role in ("hub_admin", "hub_analyst"):
        return list(found)
    if principal.country is None:
        return []
    return [d for d in found if d.get("country") == principal.country]


def sign_worksheet(document: Mapping[str, Any], key: SigningKey, now: datetime) -> str:
    """A stored worksheet signed by the hub: the document, when, by which hub key."""
    payload = {"worksheet": dict(document), "issued_at": time_text(now), "hub_kid": key.kid}
    return sign_compact(payload, key.private_key, key.kid, WORKSHEET_TYPE)
