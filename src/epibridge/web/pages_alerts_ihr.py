"""``/alerts/{id}/ihr``: the alert's IHR Annex 2 worksheet, pre-filled, to complete and sign.

Anyone who may read the alert sees the worksheet pre-filled from the hub's data
(``hub/ihr.py``; counts only of the countries whose data they may see) and the signed
worksheets they may read (the hub's roles all, a country its own). A country's
epidemiologist or data manager of a country concerned (``ihr.sign_decision``, the
``alerts.ack`` policy for people) answers the four questions and signs: a POST with the
session's CSRF token, recorded by ``ihr.complete`` as an alert event and a log leaf, then
a redirect (303) back to the worksheet. Answers the hub refuses (a blank justification)
show the form again with what was typed and the reason.
"""

import hashlib
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from epibridge.hub.access import decide
from epibridge.hub.alert_store import Alert, AlertError
from epibridge.hub.ihr import (
    ANSWERS,
    QUESTIONS,
    Reply,
    complete,
    completions,
    prefill,
    sign_decision,
    sign_worksheet,
    visible_completions,
)
from epibridge.hub.log import canonical
from epibridge.web.pages_alerts_view import (
    areas_of,
    authorized,
    csrf_page,
    decided,
    fetch,
    figure,
    refusal_page,
)
from epibridge.web.session import csrf_ok
from epibridge.web.viewer import Refused, Viewer, Web

MAX_FIELD = 4000
SUFFIX = "/ihr"


def _percent(value: float | None, lang: str) -> str | None:
    return None if value is None else figure(100 * value, lang, 2) + " %"


def _evidence(worksheet: dict[str, Any], lang: str) -> dict[str, Any]:
    """The evidence of each question, with names and formatted figures for the page."""
    found = {q["id"]: q["evidence"] for q in worksheet["questions"]}
    serious, unusual, spread = found["serious"], found["unusual"], found["spread"]
    return {
        "serious": {
            **serious,
            "cfr": _percent(serious["case_fatality_ratio"], lang),
            "ratio": figure(serious["ratio_to_earlier_mean"], lang),
            "mean": figure(serious["earlier_mean_cases"], lang),
            "areas": [{**a, "names": areas_of([a["area"]])[0]} for a in serious["by_area"]],
        },
        "unusual": {
            **unusual,
            "min_p": figure(unusual["min_p_value"], lang),
            "cluster_p": figure(unusual["cluster_p_value"], lang),
            "temporal_p": figure(unusual["temporal_min_p_value"], lang),
            "rr": figure(unusual["relative_risk"], lang),
            "ri": figure(unusual["recurrence_interval_weeks"], lang),
            "oe": figure(unusual["observed_to_expected"], lang),
        },
        "spread": {
            **spread,
            "borders": [
                {
                    **b,
                    "mine": areas_of([b["area"]])[0],
                    "theirs": areas_of([b["neighbour"]])[0],
                }
                for b in spread["borders"]
            ],
        },
        "restrictions": found["restrictions"],
    }


def page(
    web: Web,
    request: Request,
    viewer: Viewer,
    alert: Alert,
    typed: Mapping[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    context, now = web.current(), web.clock()
    engine = context.store.engine
    worksheet = prefill(engine, alert, now, web.visible(viewer))
    with engine.connect() as c:
        signed = visible_completions(viewer.principal, completions(c, alert.alert_id))
    done = [
        {
            **d,
            "sha256": hashlib.sha256(canonical(d)).hexdigest(),
            "token": sign_worksheet(d, context.signing_key, now),
        }
        for d in signed
    ]
    return web.page(
        request,
        "ihr.html",
        {
            "alert": alert,
            "areas": areas_of(alert.areas),
            "worksheet": worksheet,
            "evidence": _evidence(worksheet, viewer.lang),
            "questions": list(QUESTIONS),
            "answers": ANSWERS,
            "can_sign": sign_decision(viewer.principal, alert).allowed,
            "typed": typed or {},
            "problem": problem,
            "done": done,
            "as_of": now,
        },
        viewer,
        status=status,
    )


def _field(fields: Mapping[str, Any], name: str) -> str:
    return str(fields.get(name, ""))[:MAX_FIELD]


def _sign(web: Web, request: Request, alert_id: str, fields: Mapping[str, Any]) -> Response:
    viewer = web.viewer(request)
    if not csrf_ok(web.secret(), viewer.session.nonce, _field(fields, "csrf")):
        return csrf_page(web, request, viewer)
    resource = f"alerts/{alert_id}{SUFFIX}"
    try:
        if not decide(viewer.principal, "alerts.ack").allowed:
            web.authorize(viewer, "alerts.ack", resource)  # logs and refuses
        alert = fetch(web, viewer, alert_id)
        decided(web, viewer, "alerts.ack", resource, sign_decision(viewer.principal, alert))
    except Refused as refusal:
        return refusal_page(web, request, viewer, refusal)
    typed = {k: _field(fields, k) for k in fields if k != "csrf"}
    replies: dict[str, Reply] = {
        q: Reply(typed.get(f"answer_{q}", ""), typed.get(f"justification_{q}", ""))
        for q in QUESTIONS
    }
    try:
        complete(
            web.current().store.engine,
            alert_id,
            replies,
            viewer.principal,
            web.clock(),
            context=typed.get("context", ""),
            visible=web.visible(viewer),
        )
    except AlertError as exc:
        return page(web, request, viewer, alert, typed, exc.message, 400)
    return RedirectResponse(f"/alerts/{alert_id}{SUFFIX}", status_code=303)


def register(app: FastAPI, web: Web) -> None:
    @app.get("/alerts/{alert_id}/ihr", include_in_schema=False)
    def ihr_page(request: Request, alert_id: str) -> Response:
        viewer = web.viewer(request)
        try:
            alert = authorized(web, viewer, "alerts.read", alert_id, SUFFIX)
        except Refused as refusal:
            return refusal_page(web, request, viewer, refusal)
        return page(web, request, viewer, alert)

    @app.post("/alerts/{alert_id}/ihr", include_in_schema=False)
    async def ihr_sign(request: Request, alert_id: str) -> Response:
        fields = dict(await request.form())
        return await run_in_threadpool(_sign, web, request, alert_id, fields)
