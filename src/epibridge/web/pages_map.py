"""``/map``: a choropleth of incidence per 100,000 for one week, with its table.

``?disease=&week=2026-W02&measure=reported|corrected&sort=&order=&page=``. Reads the one
week shown (``data.week_cells``); the table sorts on the server so it works without
JavaScript, and shows ``choropleth.PAGE_ROWS`` areas a page with links to the others (a
region has thousands). Areas outside the boundary file are in the table only.
"""

from datetime import timedelta

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from epibridge.registry.geography import registry_version
from epibridge.web.choropleth import MEASURES, SORTS, MapModel, build_map, page_of, sort_rows
from epibridge.web.data import burden_of, week_cells
from epibridge.web.geo import SOURCE
from epibridge.web.scope import Selection, monday, parse_week, selection, week_name
from epibridge.web.viewer import Viewer, Web


def map_of(
    web: Web, viewer: Viewer, disease: str | None, week: str | None, measure: str
) -> tuple[MapModel | None, Selection, dict[str, object]]:
    """The map model and what the page says about it (shared with the overview)."""
    chosen = selection(web, viewer, disease)
    start = parse_week(week) or (monday(chosen.latest) if chosen.latest else None)
    facts: dict[str, object] = {
        "selection": chosen,
        "measure": measure,
        "week": week_name(start) if start else None,
        "previous": week_name(start - timedelta(days=7)) if start else None,
        "next": week_name(start + timedelta(days=7)) if start else None,
        "source": SOURCE,
        "registry_version": registry_version(),
    }
    if chosen.disease is None or start is None:
        return None, chosen, facts
    context = web.current()
    at = web.clock()
    table = burden_of(
        context,
        week_cells(context, at, chosen.countries, chosen.disease, start),
        at,
        corrected=measure == "corrected",
    )
    with_data = set(table.column("country").to_pylist()) if table.num_rows else set()
    frame = with_data or set(chosen.countries)
    model = build_map(table, measure, start, frame, chosen.visible, viewer.gettext, viewer.fmt)
    facts["countries_reporting"] = sorted(with_data)
    return model, chosen, facts


def register(app: FastAPI, web: Web) -> None:
    @app.get("/map", include_in_schema=False)
    def map_page(
        request: Request,
        disease: str | None = None,
        week: str | None = None,
        measure: str = "reported",
        sort: str = "value",
        order: str = "desc",
        page: int = 1,
    ) -> Response:
        viewer = web.viewer(request)
        web.authorize(viewer, "regional.read", "map")
        measure = measure if measure in MEASURES else "reported"
        sort = sort if sort in SORTS else "value"
        model, _, facts = map_of(web, viewer, disease, week, measure)
        table = page_of(sort_rows(model.rows, sort, order != "asc") if model else [], page)
        return web.page(
            request,
            "map.html",
            {
                **facts,
                "map": model,
                "rows": table.rows,
                "table": table,
                "sort": sort,
                "order": order,
            },
            viewer,
        )
