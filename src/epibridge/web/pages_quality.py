"""``/quality``: the quality scorecards, the viewer's country beside the regional median.

The same rule as ``GET /v1/scorecards``: the hub's roles see every country, a country's
people their own, observers the median only (``hub/quality.py``).
"""

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from epibridge.hub.quality import scorecards
from epibridge.web.i18n import N_
from epibridge.web.viewer import Web

#: (attribute, label, kind) of the measures shown; kind picks the number format.
MEASURES = (
    ("completeness", N_("Completeness (median share of areas reporting)"), "percent"),
    ("on_time_rate", N_("Periods received on time"), "percent"),
    ("median_delay_days", N_("Median delay (days after the period)"), "number"),
    ("suppressed_share", N_("Cells withheld for disclosure control"), "percent"),
    ("quarantined_share", N_("Records quarantined at the node"), "percent"),
    ("confirmed_share", N_("Cases laboratory-confirmed"), "percent"),
)
COUNTS = (
    ("periods", N_("Periods received")),
    ("duplicate_cells", N_("Cells sent twice in one submission")),
    ("repeated_cells", N_("Cells sent again without a revision")),
    ("deaths_over_cases", N_("Cells with more deaths than cases")),
    ("jumps", N_("Sudden jumps")),
)


def register(app: FastAPI, web: Web) -> None:
    @app.get("/quality", include_in_schema=False)
    def quality(request: Request) -> Response:
        viewer = web.viewer(request)
        web.authorize(viewer, "scorecards.read", "quality")
        context = web.current()
        cards = scorecards(context.store.engine, web.clock(), context.folder)
        who = viewer.principal
        if who.role in ("hub_admin", "hub_analyst"):
            shown = sorted(cards.countries)
        else:
            shown = [who.country] if who.country in cards.countries else []
        return web.page(
            request,
            "quality.html",
            {
                "scores": [cards.countries[c] for c in shown],
                "median": cards.regional_median,
                "measures": MEASURES,
                "counts": COUNTS,
            },
            viewer,
        )
