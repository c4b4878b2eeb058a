"""Put the dashboard on the hub's app: static files, pages, and how refusals look.

``register_dashboard`` is the one call ``hub/app.py`` makes. A page that may not be
shown answers with a page that says why (403, the policy's reason), a missing session
with the login page, a broken hub folder (session secret, expansion factors) with a
plain explanation: never a traceback. The handlers are for the dashboard's own
exceptions only, so the API's answers are unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from epibridge.hub.intake import HubContext
from epibridge.web import (
    pages_agreements,
    pages_alerts,
    pages_alerts_ihr,
    pages_auth,
    pages_bulletin,
    pages_curves,
    pages_log,
    pages_map,
    pages_overview,
    pages_quality,
    pages_submissions,
)
from epibridge.web.session import SessionError
from epibridge.web.viewer import FolderError, NotLoggedIn, Refused, Web

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def register_dashboard(
    app: FastAPI, current: Callable[[], HubContext], clock: Callable[[], datetime]
) -> Web:
    """Serve the dashboard at ``/`` (and its files at ``/static``) on ``app``."""
    web = Web(current, clock)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def not_logged_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotLoggedIn)
        return RedirectResponse("/login?" + urlencode({"next": exc.next_path}), status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        try:
            viewer = web.viewer(request)
        except NotLoggedIn:
            viewer = None
        return web.page(request, "refused.html", {"refusal": exc}, viewer, status=exc.status)

    async def broken(request: Request, exc: Exception) -> Response:
        logger.error("dashboard page %s failed: %s", request.url.path, exc)
        return web.page(request, "broken.html", {"problem": str(exc)}, None, status=500)

    app.add_exception_handler(NotLoggedIn, not_logged_in)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(SessionError, broken)
    app.add_exception_handler(FolderError, broken)
    for pages in (
        pages_auth,
        pages_overview,
        pages_map,
        pages_curves,
        pages_quality,
        pages_submissions,
        pages_agreements,
        pages_log,
        pages_alerts,
        pages_alerts_ihr,
        pages_bulletin,
    ):
        pages.register(app, web)
    return web
