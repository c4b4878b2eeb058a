"""``/agreements``: the agreements in force and who sees what under them.

Every person with a dashboard login may read the terms (sender, recipient, datasets,
area level, time resolution, suppression threshold k, onward sharing): they say what
the hub may show, so they are not secret among the partners. The page marks whose
data the viewer sees (``access.visible_countries``). Authorized as ``regional.read``:
the terms govern the regional picture.
"""

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from epibridge.web.viewer import Web


def register(app: FastAPI, web: Web) -> None:
    @app.get("/agreements", include_in_schema=False)
    def agreements(request: Request) -> Response:
        viewer = web.viewer(request)
        web.authorize(viewer, "regional.read", "agreements")
        context = web.current()
        today = web.clock().date()
        visible = web.visible(viewer)
        rows = []
        for agreement, signatures in sorted(
            context.agreements.values(), key=lambda pair: (pair[0].sender, pair[0].id)
        ):
            rows.append(
                {
                    "agreement": agreement,
                    "signed_by": sorted(s.country for s in signatures.signatures),
                    "in_force": agreement.valid_from <= today <= agreement.valid_to,
                    "stopped": context.is_stopped(agreement.id, agreement.version),
                    "visible": visible is None or agreement.sender in visible,
                }
            )
        return web.page(request, "agreements.html", {"rows": rows}, viewer)
