"""``/curves``: the epidemic curve of a country (or one of its areas) for a disease.

``?disease=&country=&area=&measure=reported|corrected&weeks=``. Weekly bars, or monthly
where the country releases monthly; the last ``PROVISIONAL_DAYS`` are marked
provisional. Reads ``weeks`` (default ``DEFAULT_WEEKS``, at most ``MAX_WEEKS``) up to the
latest period the country sent, nothing older. A country's curve needs all its areas
(completeness correction imputes the silent ones); an area's curve reads only that
area's cells, since its own reported and corrected values do not depend on the others.
A country's reported curve is summed in the database (``regional.period_totals``).
"""

from datetime import date, datetime, timedelta

import pyarrow.compute as pc
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from epibridge.hub.intake import HubContext
from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import period_totals
from epibridge.web.areas import name_of
from epibridge.web.choropleth import MEASURES
from epibridge.web.curve import PROVISIONAL_DAYS, Point, build_curve
from epibridge.web.data import burden_of, cells, latest_start
from epibridge.web.scope import selection
from epibridge.web.viewer import Refused, Web

DEFAULT_WEEKS = 26
MAX_WEEKS = 156


def country_points(
    context: HubContext, at: datetime, country: str, disease: str, first: date, last: date
) -> tuple[list[Point], str | None]:
    """A country's reported curve, summed in the database (``regional.period_totals``):
    the known cases of the burden table's ``total`` rows, without reading every area."""
    filters = Filters(countries=[country], diseases=[disease], period_from=first, period_to=last)
    rows = period_totals(context.store.engine, at, filters).to_pylist()
    points = [
        Point(r["period"], r["period_start"], r["period_end"], float(r["cases"]))
        for r in sorted(rows, key=lambda r: r["period_start"])
    ]
    return points, (rows[-1]["period_type"] if rows else None)


def _burden_points(
    context: HubContext,
    at: datetime,
    country: str,
    disease: str,
    first: date,
    last: date,
    area: str | None,
    measure: str,
) -> tuple[list[Point], str | None]:
    """An area's curve, or a corrected curve: from the burden table of the cells."""
    held = cells(context, at, [country], disease, first, last)
    if area:
        held = held.filter(pc.equal(held["area"], area))
    table = burden_of(context, held, at, corrected=measure == "corrected")
    points: list[Point] = []
    period_type = None
    for r in sorted(table.to_pylist(), key=lambda r: r["period_start"]):
        if (area and r["area"] != area) or (not area and r["status"] != "total"):
            continue
        period_type = r["period_type"]
        if measure == "reported":
            value = None if r["cases"] is None else float(r["cases"])
            points.append(Point(r["period"], r["period_start"], r["period_end"], value))
        else:
            points.append(
                Point(
                    r["period"],
                    r["period_start"],
                    r["period_end"],
                    r["cases_corrected"],
                    r["cases_corrected_low"],
                    r["cases_corrected_high"],
                )
            )
    return points, period_type


def register(app: FastAPI, web: Web) -> None:
    @app.get("/curves", include_in_schema=False)
    def curves(
        request: Request,
        disease: str | None = None,
        country: str | None = None,
        area: str | None = None,
        measure: str = "reported",
        weeks: int = DEFAULT_WEEKS,
    ) -> Response:
        viewer = web.viewer(request)
        web.authorize(viewer, "regional.read", "curves")
        _ = viewer.gettext
        measure = measure if measure in MEASURES else "reported"
        chosen = selection(web, viewer, disease)
        if country is not None and country not in chosen.countries:
            refusal = Refused(
                403,
                "not_shared",
                _("No data of %(country)s is shared with you.") % {"country": country},
            )
            refusal.role, refusal.country = viewer.principal.role, viewer.principal.country
            raise refusal
        own = viewer.principal.country
        shown = country or (own if own in chosen.countries else None)
        shown = shown or (chosen.countries[0] if chosen.countries else None)
        points: list[Point] = []
        period_type = None
        if shown and chosen.disease:
            context = web.current()
            last = latest_start(context, [shown], chosen.disease)
            if last is not None:
                first = last - timedelta(weeks=max(1, min(weeks, MAX_WEEKS)) - 1)
                if measure == "reported" and not area:
                    points, period_type = country_points(
                        context, web.clock(), shown, chosen.disease, first, last
                    )
                else:
                    points, period_type = _burden_points(
                        context, web.clock(), shown, chosen.disease, first, last, area, measure
                    )
        model = build_curve(points, web.clock().date(), viewer.fmt)
        return web.page(
            request,
            "curves.html",
            {
                "selection": chosen,
                "country": shown,
                "area": area,
                "area_name": name_of(area) if area else None,
                "measure": measure,
                "curve": model,
                "points": points,
                "period_type": period_type,
                "provisional_days": PROVISIONAL_DAYS,
                "weeks": weeks,
            },
            viewer,
        )
