"""``/submissions`` and ``/submissions/{id}``: what arrived, and what became of it.

The same rules as the API: the hub's roles see every submission, a country's data
manager and epidemiologist their own country's, observers none (``submissions.read``);
refusals are listed for those who may read them (``rejections.read``). One submission's
page answers "why was my data not used?": superseded by a revision, cells overridden
by a later submission, or refused with the reason the node was given.
"""

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from epibridge.hub.access import decide, own_country_only
from epibridge.hub.regional import lineage
from epibridge.web.viewer import Refused, Web

SHOWN = 200


def register(app: FastAPI, web: Web) -> None:
    @app.get("/submissions", include_in_schema=False)
    def submissions(request: Request) -> Response:
        viewer = web.viewer(request)
        own = own_country_only(viewer.principal)
        web.authorize(viewer, "submissions.read", "submissions", own)
        store = web.current().store
        held = sorted(store.submissions(own), key=lambda s: s.received_at, reverse=True)
        refusals = []
        if decide(viewer.principal, "rejections.read", own).allowed:
            web.authorize(viewer, "rejections.read", "rejections", own)
            refusals = [r for r in store.rejections() if own is None or r.origin_country == own][
                -SHOWN:
            ][::-1]
        return web.page(
            request,
            "submissions.html",
            {"held": held[:SHOWN], "total": len(held), "refusals": refusals},
            viewer,
        )

    @app.get("/submissions/{submission_id}", include_in_schema=False)
    def submission(request: Request, submission_id: str) -> Response:
        viewer = web.viewer(request)
        _ = viewer.gettext
        context = web.current()
        stored = context.store.get(submission_id)
        country = stored.origin_country if stored is not None else viewer.principal.country
        web.authorize(viewer, "submissions.read", f"submissions/{submission_id}", country)
        if stored is None:
            own = own_country_only(viewer.principal)
            refused = [
                r
                for r in context.store.rejections()
                if r.submission_id == submission_id and own in (None, r.origin_country)
            ]
            if not refused:
                raise Refused(
                    404,
                    "not_found",
                    _("The hub holds no submission %(id)s.") % {"id": submission_id},
                )
            return web.page(
                request,
                "submission.html",
                {"submission_id": submission_id, "refused": refused, "traced": None},
                viewer,
            )
        traced = lineage(context.store.engine, submission_id, web.clock())
        return web.page(
            request,
            "submission.html",
            {"submission_id": submission_id, "refused": [], "traced": traced, "stored": stored},
            viewer,
        )
