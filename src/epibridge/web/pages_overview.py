"""``/``: what to look at first: the latest week, who reported, a small map and curve.

The curve is the region's weekly reported cases (the visible countries' totals) over
the last ``WEEKS`` weeks, summed in the database over those weeks only
(``regional.total_cell_sums``). Alerts have their own pages
(``/alerts``); the overview links there.
"""

from collections import defaultdict
from datetime import date, timedelta

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from epibridge.hub.picture_expr import Filters
from epibridge.hub.regional import total_cell_sums
from epibridge.web.curve import PROVISIONAL_DAYS, Point, build_curve
from epibridge.web.pages_map import map_of
from epibridge.web.viewer import Web

WEEKS = 12


def register(app: FastAPI, web: Web) -> None:
    @app.get("/", include_in_schema=False)
    def overview(request: Request, disease: str | None = None) -> Response:
        viewer = web.viewer(request)
        web.authorize(viewer, "regional.read", "overview")
        model, chosen, facts = map_of(web, viewer, disease, None, "reported")
        points: list[Point] = []
        latest = chosen.latest
        if latest is not None and chosen.disease is not None and chosen.countries:
            filters = Filters(
                countries=chosen.countries,
                diseases=[chosen.disease],
                period_from=latest - timedelta(weeks=WEEKS - 1),
                period_to=latest,
            )
            sums: dict[tuple[str, date, date], float] = defaultdict(float)
            engine = web.current().store.engine
            for r in total_cell_sums(engine, web.clock(), filters).to_pylist():
                if r["period_type"] == "week":
                    sums[(r["period"], r["period_start"], r["period_end"])] += r[
                        "total_cells_cases"
                    ]
            points = [
                Point(period, start, end, value)
                for (period, start, end), value in sorted(sums.items(), key=lambda i: i[0][1])
            ]
        return web.page(
            request,
            "overview.html",
            {
                **facts,
                "map": model,
                "curve": build_curve(points, web.clock().date(), viewer.fmt),
                "points": points,
                "provisional_days": PROVISIONAL_DAYS,
            },
            viewer,
        )
