"""``/quality``: the quality scorecards, the viewer's country beside the regional median.

The same rule as ``GET /v1/scorecards``: the hub's roles see every country, a country's
people their own, observers the median only (``hub/quality.py``).

Scoring takes the database tens of seconds at regional scale after each new submission,
so the page waits at most ``WAIT_SECONDS`` for the current scorecards; past that it
shows the newest ones the hub holds, saying from when they are, while the current ones
are computed in the background (``hub/quality_cache.py``), or, when it holds none yet,
says that they are being computed.
"""

import time

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from epibridge.hub.quality import latest_scorecards
from epibridge.web.i18n import N_
from epibridge.web.viewer import Web

#: (attribute, label, kind) of the measures shown; kind picks the number format.
MEASURES = (
    (
        "completeness",
        N_("Completeness (median share of reports received, or of areas reporting)"),
        "percent",
    ),
    ("on_time_rate", N_("Periods received on time"), "percent"),
    ("reports_on_time_rate", N_("Reports received on time (as the country counted)"), "percent"),
    ("median_delay_days", N_("Median delay (days after the period)"), "number"),
    ("suppressed_share", N_("Cells withheld for disclosure control"), "percent"),
    ("quarantined_share", N_("Records quarantined at the node"), "percent"),
    ("confirmed_share", N_("Cases laboratory-confirmed"), "percent"),
)
#: How long the page waits for the current scorecards before it shows the newest held.
WAIT_SECONDS = 0.5
COUNTS = (
    ("periods", N_("Periods received")),
    ("periods_with_reports", N_("Periods with reporting (completeness from reports)")),
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
        found = latest_scorecards(context.store.engine, web.clock(), context.folder, WAIT_SECONDS)
        cards = found.value
        countries = cards.countries if cards is not None else {}
        who = viewer.principal
        if who.role in ("hub_admin", "hub_analyst"):
            shown = sorted(countries)
        else:
            shown = [who.country] if who.country in countries else []
        since = found.computing_since
        computing = None if since is None else max(0, round(time.monotonic() - since))
        return web.page(
            request,
            "quality.html",
            {
                "scores": [countries[c] for c in shown],
                "median": cards.regional_median if cards is not None else {},
                "ready": cards is not None,
                "as_of": None if found.current or cards is None else cards.as_of,
                "computing_seconds": computing,
                "measures": MEASURES,
                "counts": COUNTS,
            },
            viewer,
        )
