"""The partner API: the regional picture, submission status and lineage, refusals.

Every route resolves the caller (a user token or a node's access token), asks
``access.decide`` and writes the decision to the access log before reading anything; a
refusal is 403 with the reason. Regional data is filtered to the countries the caller
may see (``access.visible_countries``); a country asked for and not visible is named in
``withheld`` rather than silently dropped.

No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from epibridge.algorithms.burden import LEVEL
from epibridge.hub.access import Principal, own_country_only, visible_countries
from epibridge.hub.burden import burden
from epibridge.hub.fhir_export import measure_reports
from epibridge.hub.gate import Gate
from epibridge.hub.intake import HubContext
from epibridge.hub.picture_expr import Filters
from epibridge.hub.quality import score_json
from epibridge.hub.quality import scorecards as quality_scorecards
from epibridge.hub.regional import COUNTS_AS_OF, counts_as_of, incidence, lineage
from epibridge.hub.regional_context import (
    DENOMINATORS_AS_OF,
    REPORTING_AS_OF,
    burden_inputs,
    denominators_as_of,
    reporting_as_of,
)
from epibridge.hub.tables import access_log_table
from epibridge.model.errors import SourceError
from epibridge.registry.expansion import expansion_factors


def _when(text: str | None, now: datetime) -> datetime:
    if text is None:
        return now
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def register_partner_routes(
    app: FastAPI,
    current: Callable[[], HubContext],
    clock: Callable[[], datetime],
    principal: Callable[..., Principal],
    api_error: Callable[[int, str, str], Exception],
) -> None:
    """Add the partner API's routes (regional data, submissions, refusals, access log)."""
    gate = Gate(current, clock, api_error)
    _regional_routes(app, gate, principal)
    _hub_routes(app, gate, principal)
    _submission_routes(app, gate, principal)


def _burden_route(
    app: FastAPI,
    gate: Gate,
    principal: Callable[..., Principal],
    visible_cells: Callable[..., Awaitable[tuple[datetime, pa.Table, list[str]]]],
) -> None:
    current, api_error = gate.current, gate.api_error

    @app.get("/v1/regional/burden")
    async def regional_burden(
        who: Annotated[Principal, Depends(principal)],
        as_of: Annotated[str | None, Query(description="ISO 8601 time; default now")] = None,
        country: Annotated[list[str] | None, Query()] = None,
        disease: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        """Incidence per 100,000 by area and period, reported and corrected for reporting
        completeness and under-ascertainment, with 95% intervals (the map's table)."""
        at, table, withheld = await visible_cells(who, "regional/burden", as_of, country, disease)
        try:
            factors = expansion_factors(current().folder)
        except SourceError as error:
            raise api_error(500, "bad_expansion_factors", str(error)) from None
        engine = current().store.engine
        extra = await run_in_threadpool(burden_inputs, engine, at, table)
        rows = await run_in_threadpool(lambda: burden(table, factors, **extra))
        return {
            "as_of": at.isoformat(),
            "interval_level": LEVEL,
            "areas": [{k: _json(v) for k, v in r.items()} for r in rows.to_pylist()],
            "withheld": withheld,
        }


def _context_routes(
    app: FastAPI,
    principal: Callable[..., Principal],
    visible: Callable[..., Awaitable[tuple[datetime, pa.Table, list[str]]]],
) -> None:
    """Reporting (completeness) and population figures, with their lineage."""

    @app.get("/v1/regional/reporting")
    async def regional_reporting(
        who: Annotated[Principal, Depends(principal)],
        as_of: Annotated[str | None, Query(description="ISO 8601 time; default now")] = None,
        country: Annotated[list[str] | None, Query()] = None,
        disease: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        """Reports expected, received and on time (completeness) as the hub knew them at
        ``as_of``, each row with its lineage; a null disease covers every disease."""
        at, table, withheld = await visible(
            who, "regional/reporting", as_of, country, disease, reporting_as_of, REPORTING_AS_OF
        )
        rows = [{k: _json(v) for k, v in r.items()} for r in table.to_pylist()]
        return {"as_of": at.isoformat(), "rows": rows, "withheld": withheld}

    @app.get("/v1/regional/denominators")
    async def regional_denominators(
        who: Annotated[Principal, Depends(principal)],
        as_of: Annotated[str | None, Query(description="ISO 8601 time; default now")] = None,
        country: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        """Population figures the countries sent, as the hub knew them at ``as_of``, each
        with its lineage."""
        at, table, withheld = await visible(
            who,
            "regional/denominators",
            as_of,
            country,
            None,
            denominators_as_of,
            DENOMINATORS_AS_OF,
        )
        rows = [{k: _json(v) for k, v in r.items()} for r in table.to_pylist()]
        return {"as_of": at.isoformat(), "rows": rows, "withheld": withheld}


def _regional_routes(app: FastAPI, gate: Gate, principal: Callable[..., Principal]) -> None:
    current, clock, api_error, authorize = gate.current, gate.clock, gate.api_error, gate

    async def visible(
        who: Principal,
        resource: str,
        as_of: str | None,
        country: list[str] | None,
        disease: list[str] | None,
        read: Callable[[Engine, datetime, Filters], pa.Table],
        empty: pa.Schema,
    ) -> tuple[datetime, pa.Table, list[str]]:
        """What ``read`` gives of the countries ``who`` may see, as of a time; and the
        countries asked for and not visible (named, never silently dropped)."""
        authorize(who, "regional.read", resource)
        try:
            at = _when(as_of, clock())
        except ValueError:
            raise api_error(400, "invalid_request", f"as_of {as_of!r} is not ISO 8601") from None
        context = current()
        visible = visible_countries(who, {k: a for k, (a, _) in context.agreements.items()})
        asked = list(country or [])
        allowed = [c for c in asked if visible is None or c in visible]
        withheld = sorted(set(asked) - set(allowed))
        scope = allowed or (sorted(visible) if visible is not None else [])
        if (asked and not allowed) or (visible is not None and not scope):
            return at, empty.empty_table(), withheld
        filters = Filters(countries=scope, diseases=disease or [])
        table = await run_in_threadpool(read, context.store.engine, at, filters)
        return at, table, withheld

    async def visible_cells(
        who: Principal,
        resource: str,
        as_of: str | None,
        country: list[str] | None,
        disease: list[str] | None,
    ) -> tuple[datetime, pa.Table, list[str]]:
        """The count cells ``who`` may see (``visible``)."""
        return await visible(who, resource, as_of, country, disease, counts_as_of, COUNTS_AS_OF)

    _context_routes(app, principal, visible)

    @app.get("/v1/regional/counts")
    async def regional_counts(
        who: Annotated[Principal, Depends(principal)],
        as_of: Annotated[str | None, Query(description="ISO 8601 time; default now")] = None,
        country: Annotated[list[str] | None, Query()] = None,
        disease: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        """Regional counts as the hub knew them at ``as_of``, each cell with its lineage."""
        at, table, withheld = await visible_cells(who, "regional/counts", as_of, country, disease)
        rows = [{k: _json(v) for k, v in r.items()} for r in table.to_pylist()]
        return {"as_of": at.isoformat(), "cells": rows, "withheld": withheld}

    @app.get("/v1/regional/incidence")
    async def regional_incidence(
        who: Annotated[Principal, Depends(principal)],
        as_of: Annotated[str | None, Query(description="ISO 8601 time; default now")] = None,
        country: Annotated[list[str] | None, Query()] = None,
        disease: Annotated[list[str] | None, Query()] = None,
    ) -> dict[str, Any]:
        """Reported incidence per 100,000 of each area total, with the population used."""
        at, table, withheld = await visible_cells(
            who, "regional/incidence", as_of, country, disease
        )
        engine = current().store.engine
        extra = await run_in_threadpool(burden_inputs, engine, at, table)
        rates = incidence(table, extra.get("populations"))
        rows = [{k: _json(v) for k, v in r.items()} for r in rates.to_pylist()]
        return {"as_of": at.isoformat(), "areas": rows, "withheld": withheld}

    _burden_route(app, gate, principal, visible_cells)

    @app.get("/v1/regional/counts.fhir")
    async def regional_counts_fhir(
        who: Annotated[Principal, Depends(principal)],
        as_of: Annotated[str | None, Query(description="ISO 8601 time; default now")] = None,
        country: Annotated[list[str] | None, Query()] = None,
        disease: Annotated[list[str] | None, Query()] = None,
    ) -> JSONResponse:
        """The same cells as a FHIR R4 Bundle of MeasureReports (IHE mADX style)."""
        at, table, _ = await visible_cells(who, "regional/counts.fhir", as_of, country, disease)
        bundle = await run_in_threadpool(measure_reports, table, at)
        return JSONResponse(bundle, media_type="application/fhir+json")


def _hub_routes(app: FastAPI, gate: Gate, principal: Callable[..., Principal]) -> None:
    """Scorecards and the access log."""
    current, clock, api_error, authorize = gate.current, gate.clock, gate.api_error, gate

    @app.get("/v1/scorecards")
    async def scorecards(
        who: Annotated[Principal, Depends(principal)],
        as_of: Annotated[str | None, Query(description="ISO 8601 time; default now")] = None,
    ) -> dict[str, Any]:
        """Quality scorecards: the caller's own country's beside the regional median (the
        hub's roles: every country's; observers: the median only)."""
        authorize(who, "scorecards.read", "scorecards")
        try:
            at = _when(as_of, clock())
        except ValueError:
            raise api_error(400, "invalid_request", f"as_of {as_of!r} is not ISO 8601") from None
        cards = await run_in_threadpool(quality_scorecards, current().store.engine, at)
        if who.role in ("hub_admin", "hub_analyst"):
            shown = sorted(cards.countries)
        else:
            shown = [who.country] if who.country in cards.countries else []
        periods = cards.periods.filter(
            pc.is_in(cards.periods["country"], pa.array(shown, pa.string()))
        )
        return {
            "as_of": at.isoformat(),
            "countries": [score_json(cards.countries[c]) for c in shown],
            "regional_median": cards.regional_median,
            "periods": [{k: _json(v) for k, v in r.items()} for r in periods.to_pylist()],
        }

    @app.get("/v1/access-log")
    async def access_log(who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
        """Every authorization decision (hub administrators only)."""
        authorize(who, "access_log.read", "access-log")
        t = access_log_table
        with current().store.engine.connect() as c:
            rows = list(c.execute(select(t).order_by(t.c.id.desc()).limit(1000)))
        return {
            "entries": [
                {
                    "at": r.at.isoformat(),
                    "principal": r.principal,
                    "role": r.role,
                    "action": r.action,
                    "resource": r.resource,
                    "allowed": r.allowed,
                    "reason": r.reason,
                }
                for r in rows
            ]
        }


def _submission_routes(app: FastAPI, gate: Gate, principal: Callable[..., Principal]) -> None:
    current, clock, api_error, authorize = gate.current, gate.clock, gate.api_error, gate

    @app.get("/v1/submissions")
    async def submissions(
        who: Annotated[Principal, Depends(principal)],
        country: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        """Submissions held: the caller's own country's, or every one for the hub's roles."""
        own = own_country_only(who)
        authorize(who, "submissions.read", "submissions", country or own)
        wanted = own or country
        held = current().store.submissions(wanted)
        return {
            "submissions": [
                {
                    "submission_id": s.submission_id,
                    "origin_country": s.origin_country,
                    "agreement_id": s.agreement_id,
                    "received_at": s.received_at.isoformat(),
                    "revision_of": s.revision_of,
                    "period_from": _json(s.period_from),
                    "period_to": _json(s.period_to),
                    "size_bytes": s.size_bytes,
                }
                for s in held
            ]
        }

    @app.get("/v1/submissions/{submission_id}")
    async def submission_status(
        submission_id: str, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        """Status and lineage of one submission: why was my data (not) used?"""
        context = current()
        stored = context.store.get(submission_id)
        country = stored.origin_country if stored is not None else who.country
        authorize(who, "submissions.read", f"submissions/{submission_id}", country)
        if stored is None:
            refused = [
                {"reason": r.reason, "message": r.message, "at": r.received_at.isoformat()}
                for r in context.store.rejections()
                if r.submission_id == submission_id
                and (own_country_only(who) in (None, r.origin_country))
            ]
            if not refused:
                raise api_error(404, "not_found", f"the hub holds no submission {submission_id}")
            return {"submission_id": submission_id, "status": "rejected", "refusals": refused}
        traced = await run_in_threadpool(lineage, context.store.engine, submission_id, clock())
        assert traced is not None
        return {
            "submission_id": submission_id,
            "status": "superseded" if traced.replaced_by else "accepted",
            "origin_country": traced.origin_country,
            "agreement_id": traced.agreement_id,
            "received_at": traced.received_at.isoformat(),
            "revision_of": traced.revision_of,
            "replaced_by": [
                {"submission_id": sid, "received_at": at.isoformat()}
                for sid, at in traced.replaced_by
            ],
            "rows": {
                "counts": traced.counts_rows,
                "cases": traced.cases_rows,
                "reporting": traced.reporting_rows,
                "denominators": traced.denominators_rows,
            },
            "counts_cells_in_current_picture": traced.counts_rows_current,
        }

    @app.get("/v1/rejections")
    async def rejections(
        who: Annotated[Principal, Depends(principal)],
        country: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        """Refused attempts with their reasons (a country sees those it can be tied to)."""
        own = own_country_only(who)
        authorize(who, "rejections.read", "rejections", country or own)
        wanted = own or country
        return {
            "rejections": [
                {
                    "at": r.received_at.isoformat(),
                    "submission_id": r.submission_id,
                    "origin_country": r.origin_country,
                    "reason": r.reason,
                    "message": r.message,
                }
                for r in current().store.rejections()
                if wanted is None or r.origin_country == wanted
            ]
        }
