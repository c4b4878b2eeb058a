"""``/alerts`` (the inbox) and ``/alerts/{id}`` (one alert, its history and its forms).

Visibility is the API's (``access.alert_decision``): the hub's roles see every alert, a
country's roles those concerning their country, observers verified ones only. The inbox
lists open alerts first, filtered by ``?status=&disease=``.

The detail page's forms are POSTs carrying the session's CSRF token, each authorized on
the server by the same policy as the API and done by the same functions: status, owner
and comment (``hub/alerts.py``, hub roles; only the moves the lifecycle allows are
offered), acknowledgement (``alert_delivery.acknowledge``, a country's people for a
country concerned). A form without the token, or refused by the policy, is answered with
the page that explains it; a request the alert refuses (a move no longer allowed) shows
the detail again with the reason; a done change redirects (303) back to the detail.
"""

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from epibridge.hub.access import alert_decision, decide
from epibridge.hub.alert_config import AlertConfig, load_config
from epibridge.hub.alert_delivery import acknowledge, deliver_pending, deliveries
from epibridge.hub.alert_status import STATUSES
from epibridge.hub.alert_store import Alert, AlertError, events
from epibridge.hub.alert_store import alerts as stored_alerts
from epibridge.hub.alerts import TRANSITIONS, comment, set_owner, set_status
from epibridge.hub.ihr import week_label
from epibridge.model.errors import KeyedFileError
from epibridge.web.i18n import DASH
from epibridge.web.pages_alerts_view import (
    areas_of,
    authorized,
    country_states,
    csrf_page,
    figure,
    inbox_order,
    refusal_page,
    weeks_text,
)
from epibridge.web.session import csrf_ok
from epibridge.web.viewer import FolderError, Refused, Viewer, Web

MAX_FIELD = 4000
#: HTTP status of a request the alert refuses (the page shows the reason).
_STATUS = {"invalid_transition": 409, "not_delivered": 409}


def _config(web: Web) -> AlertConfig:
    try:
        return load_config(web.current().folder)
    except KeyedFileError as exc:
        raise FolderError(str(exc)) from None


def inbox(web: Web, request: Request, status: str | None, disease: str | None) -> Response:
    viewer = web.viewer(request)
    web.authorize(viewer, "alerts.read", "alerts")
    engine, now = web.current().store.engine, web.clock()
    with engine.connect() as c:
        visible = [
            a
            for a in stored_alerts(c)
            if alert_decision(viewer.principal, "alerts.read", a.countries, a.status).allowed
        ]
        diseases = sorted({a.disease for a in visible})
        shown = sorted(
            (
                a
                for a in visible
                if status in (None, "", a.status) and disease in (None, "", a.disease)
            ),
            key=inbox_order,
        )
        rows = [
            {
                "alert": a,
                "areas": areas_of(a.areas),
                "states": country_states(a, deliveries(c, a.alert_id), now),
                "p": figure(a.detail.get("min_p_value"), viewer.lang),
                "weeks": weeks_text(a),
            }
            for a in shown
        ]
    return web.page(
        request,
        "alerts.html",
        {
            "rows": rows,
            "statuses": STATUSES,
            "diseases": diseases,
            "status": status or "",
            "disease": disease or "",
            "total": len(visible),
        },
        viewer,
    )


def detail(
    web: Web,
    request: Request,
    viewer: Viewer,
    alert: Alert,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    """The detail page of an alert the viewer may read."""
    engine, now = web.current().store.engine, web.clock()
    with engine.connect() as c:
        history = events(c, alert.alert_id)
        sent = deliveries(c, alert.alert_id)
    who = viewer.principal
    own = [d for d in sent if d.country == who.country]
    can_ack = (
        alert_decision(who, "alerts.ack", alert.countries, alert.status).allowed
        and bool(own)
        and any(d.acknowledged_at is None for d in own)
    )
    visible = web.visible(viewer)
    signals = [
        {
            **s,
            "weeks": _weeks(s.get("first_week"), s.get("last_week")),
            "area_names": areas_of(s.get("areas", [])),
            "p": figure(s.get("p_value"), viewer.lang),
            "rr": figure(s.get("relative_risk"), viewer.lang),
            "ri": figure(s.get("recurrence_interval_weeks"), viewer.lang),
        }
        for s in alert.detail.get("signals", [])
    ]
    observed, expected = alert.detail.get("observed"), alert.detail.get("expected")
    return web.page(
        request,
        "alert.html",
        {
            "alert": alert,
            "areas": areas_of(alert.areas),
            "signals": signals,
            "min_p": figure(alert.detail.get("min_p_value"), viewer.lang),
            "ratio": figure(observed / expected if observed and expected else None, viewer.lang),
            "history": history,
            "sent": sent,
            "states": country_states(alert, sent, now),
            "can_manage": decide(who, "alerts.manage").allowed,
            "moves": TRANSITIONS.get(alert.status, ()),
            "can_ack": can_ack,
            "problem": problem,
            "weeks": weeks_text(alert),
            "week": week_label(alert.last_week),
            "curves": [c for c in alert.countries if visible is None or c in visible],
        },
        viewer,
        status=status,
    )


def _weeks(first: str | None, last: str | None) -> str:
    """A signal's weeks (Mondays, ISO dates) as ISO week labels."""
    if not first or not last:
        return DASH
    start, end = week_label(date.fromisoformat(first)), week_label(date.fromisoformat(last))
    return start if start == end else f"{start} {DASH} {end}"


def _form(fields: Mapping[str, Any], name: str) -> str:
    return str(fields.get(name, ""))[:MAX_FIELD]


Change = Callable[[Web, Viewer, Alert, Mapping[str, Any]], None]


def _post(
    web: Web, request: Request, alert_id: str, fields: Mapping[str, Any], ack: bool, act: Change
) -> Response:
    """A detail-page form: CSRF, the policy (logged), the change, then back to the detail."""
    viewer = web.viewer(request)
    if not csrf_ok(web.secret(), viewer.session.nonce, _form(fields, "csrf")):
        return csrf_page(web, request, viewer)
    try:
        alert = authorized(web, viewer, "alerts.ack" if ack else "alerts.manage", alert_id)
    except Refused as refusal:
        return refusal_page(web, request, viewer, refusal)
    try:
        act(web, viewer, alert, fields)
    except AlertError as exc:
        shown = authorized(web, viewer, "alerts.read", alert_id)
        return detail(web, request, viewer, shown, exc.message, _STATUS.get(exc.reason, 400))
    return RedirectResponse(f"/alerts/{alert_id}", status_code=303)


def _status(web: Web, viewer: Viewer, alert: Alert, fields: Mapping[str, Any]) -> None:
    context, config = web.current(), _config(web)
    set_status(
        context.store.engine,
        alert.alert_id,
        _form(fields, "status"),
        viewer.principal.name,
        web.clock(),
        _form(fields, "note").strip(),
        config=config,
    )
    deliver_pending(context.store.engine, config, context.signing_key, web.clock())


def _owner(web: Web, viewer: Viewer, alert: Alert, fields: Mapping[str, Any]) -> None:
    set_owner(
        web.current().store.engine,
        alert.alert_id,
        _form(fields, "owner"),
        viewer.principal.name,
        web.clock(),
    )


def _comment(web: Web, viewer: Viewer, alert: Alert, fields: Mapping[str, Any]) -> None:
    comment(
        web.current().store.engine,
        alert.alert_id,
        _form(fields, "text"),
        viewer.principal.name,
        web.clock(),
    )


def _ack(web: Web, viewer: Viewer, alert: Alert, fields: Mapping[str, Any]) -> None:
    who = viewer.principal
    acknowledge(
        web.current().store.engine,
        alert.alert_id,
        str(who.country),
        _form(fields, "by") or who.name,
        who.name,
        web.clock(),
    )


def register(app: FastAPI, web: Web) -> None:
    @app.get("/alerts", include_in_schema=False)
    def alerts_page(
        request: Request, status: str | None = None, disease: str | None = None
    ) -> Response:
        return inbox(web, request, status, disease)

    @app.get("/alerts/{alert_id}", include_in_schema=False)
    def alert_page(request: Request, alert_id: str) -> Response:
        viewer = web.viewer(request)
        try:
            alert = authorized(web, viewer, "alerts.read", alert_id)
        except Refused as refusal:
            return refusal_page(web, request, viewer, refusal)
        return detail(web, request, viewer, alert)

    def route(path: str, ack: bool, act: Change) -> None:
        async def handle(request: Request, alert_id: str) -> Response:
            fields = dict(await request.form())
            return await run_in_threadpool(_post, web, request, alert_id, fields, ack, act)

        app.add_api_route(path, handle, methods=["POST"], include_in_schema=False)

    route("/alerts/{alert_id}/status", False, _status)
    route("/alerts/{alert_id}/owner", False, _owner)
    route("/alerts/{alert_id}/comments", False, _comment)
    route("/alerts/{alert_id}/ack", True, _ack)
