"""``/bulletin``: the weekly regional bulletin, downloaded from the dashboard.

The same bulletin as ``epibridge bulletin`` (``bulletin/``), made on request for an ISO
week, as HTML or PDF, and logged as a hub release like the command's (one leaf per
distinct file). The bulletin covers every country that sent data, so only people who see
every country's regional data may download it (the hub's roles); others are told why.
"""

from datetime import UTC, timedelta
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from epibridge.bulletin.content import BulletinError, Source, gather, parse_week, week_name
from epibridge.bulletin.html import render_html
from epibridge.bulletin.pdf import build_pdf
from epibridge.bulletin.release import log_release
from epibridge.web.viewer import Refused, Viewer, Web

FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}
HUB_NAME = "epibridge regional hub"


def _make(web: Web, week: str, fmt: str, disease: str | None) -> tuple[bytes, str]:
    """The bulletin file's bytes and name, logged as a release."""
    context = web.current()
    now = web.clock()
    source = Source(context.store.engine, context.agreements, context.folder, HUB_NAME)
    made = gather(source, parse_week(week), now, disease or None)
    data = render_html(made) if fmt == "html" else bytes(build_pdf(made).output())
    name = f"bulletin-{made.disease}-{made.week}.{fmt}"
    log_release(context.store.engine, made, fmt, data, now.astimezone(UTC), Path(name))
    return data, name


def _may_download(web: Web, viewer: Viewer) -> None:
    _ = viewer.gettext
    if web.visible(viewer) is not None:
        refusal = Refused(
            403,
            "not_shared",
            _(
                "The weekly bulletin covers every country's data; only the hub's roles "
                "download it here. Ask the hub for the edition shared with partners."
            ),
        )
        refusal.role, refusal.country = viewer.principal.role, viewer.principal.country
        raise refusal


def register(app: FastAPI, web: Web) -> None:
    @app.get("/bulletin", include_in_schema=False)
    def bulletin_page(request: Request, week: str | None = None) -> Response:
        viewer = web.viewer(request)
        web.authorize(viewer, "regional.read", "bulletin")
        _may_download(web, viewer)
        last_week = web.clock().date() - timedelta(days=7)
        return web.page(
            request,
            "bulletin.html",
            {"week": week or week_name(last_week - timedelta(days=last_week.weekday()))},
            viewer,
        )

    @app.get("/bulletin/download", include_in_schema=False)
    async def bulletin_download(
        request: Request, week: str, format: str = "html", disease: str | None = None
    ) -> Response:
        viewer = web.viewer(request)
        web.authorize(viewer, "regional.read", "bulletin")
        _may_download(web, viewer)
        fmt = format if format in FORMATS else "html"
        try:
            data, name = await run_in_threadpool(_make, web, week, fmt, disease)
        except BulletinError as error:
            return web.page(
                request, "bulletin.html", {"week": week, "problem": str(error)}, viewer, 422
            )
        return Response(
            data,
            media_type=FORMATS[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
