"""The alerts API: read alerts, review them, the nodes' inbox and acknowledgement, and the
IHR Annex 2 worksheet (``hub/ihr.py``): pre-filled for anyone who may read the alert,
completed and signed by a country's epidemiologist or data manager of a country concerned.

Every route resolves the caller, decides with ``access`` (``alerts.read``,
``alerts.manage``, ``alerts.inbox``, ``alerts.ack``; for one alert ``alert_decision``: a
country sees the alerts concerning it, an observer verified ones only) and writes the
decision to the access log before anything else; a refusal is 403 with its reason. A
list shows only what the caller may see.

No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from epibridge.hub.access import Action, Principal, alert_decision, decide, visible_countries
from epibridge.hub.alert_config import AlertConfig, load_config
from epibridge.hub.alert_delivery import (
    Delivery,
    acknowledge,
    deliver_pending,
    deliveries,
    pull_inbox,
)
from epibridge.hub.alert_status import STATUSES
from epibridge.hub.alert_store import Alert, AlertError, events, read, sign_alert
from epibridge.hub.alert_store import alerts as stored_alerts
from epibridge.hub.alerts import comment, set_owner, set_status
from epibridge.hub.gate import Gate
from epibridge.hub.ihr import (
    ANSWERS,
    MAX_TEXT,
    QUESTIONS,
    Reply,
    complete,
    completions,
    prefill,
    sign_decision,
    sign_worksheet,
    visible_completions,
)
from epibridge.hub.intake import HubContext
from epibridge.hub.users import log_access
from epibridge.model.errors import KeyedFileError

_STATUS = {
    "unknown_alert": 404,
    "invalid_transition": 409,
    "not_delivered": 409,
    "role_not_allowed": 403,
    "not_your_country": 403,
}


class StatusChange(BaseModel):
    status: str = Field(description=f"One of {', '.join(STATUSES)}.")
    note: str = Field(default="", max_length=4000)


class OwnerChange(BaseModel):
    owner: str = Field(min_length=1, max_length=200)


class Comment(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class IhrReply(BaseModel):
    answer: str = Field(description=f"One of {', '.join(ANSWERS)}.")
    justification: str = Field(min_length=1, max_length=MAX_TEXT)


class IhrCompletion(BaseModel):
    answers: dict[str, IhrReply] = Field(
        description=f"One answer per question: {', '.join(QUESTIONS)}."
    )
    context: str = Field(default="", max_length=MAX_TEXT)


class Acknowledgement(BaseModel):
    by: str = Field(min_length=1, max_length=200, description="The person who read it.")


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _delivery(d: Delivery) -> dict[str, Any]:
    return {
        "country": d.country,
        "channel": d.channel,
        "sent_at": _time(d.sent_at),
        "delivered_at": _time(d.delivered_at),
        "acknowledged_at": _time(d.acknowledged_at),
        "acknowledged_by": d.acknowledged_by,
        "escalated_at": _time(d.escalated_at),
        "attempts": d.attempts,
        "last_error": d.last_error,
    }


class _Helpers:
    """What the routes share: the context, the clock, authorization and answers."""

    def __init__(
        self,
        current: Callable[[], HubContext],
        clock: Callable[[], datetime],
        api_error: Callable[[int, str, str], Exception],
    ) -> None:
        self.current, self.clock, self.api_error = current, clock, api_error
        self.gate = Gate(current, clock, api_error)

    def refused(self, exc: AlertError) -> Exception:
        return self.api_error(_STATUS.get(exc.reason, 400), exc.reason, exc.message)

    def authorized(self, who: Principal, action: Action, alert_id: str) -> Alert:
        """The alert, if ``who`` may do ``action`` on it (decision logged); else 403/404."""
        engine = self.current().store.engine
        resource = f"alerts/{alert_id}"
        if not decide(who, action).allowed:
            self.gate(who, action, resource)  # logs and refuses
        try:
            with engine.connect() as c:
                alert = read(c, alert_id)
        except AlertError as exc:
            raise self.refused(exc) from None
        decision = alert_decision(who, action, alert.countries, alert.status)
        log_access(engine, who, action, resource, decision.allowed, decision.reason, self.clock())
        if not decision.allowed:
            raise self.api_error(403, decision.reason, decision.message)
        return alert

    def signable(self, who: Principal, alert_id: str) -> Alert:
        """The alert, if ``who`` may sign its IHR worksheet (decision logged); else 403/404."""
        engine = self.current().store.engine
        resource = f"alerts/{alert_id}/ihr"
        if not decide(who, "alerts.ack").allowed:
            self.gate(who, "alerts.ack", resource)  # logs and refuses
        try:
            with engine.connect() as c:
                alert = read(c, alert_id)
        except AlertError as exc:
            raise self.refused(exc) from None
        decision = sign_decision(who, alert)
        log_access(
            engine, who, "alerts.ack", resource, decision.allowed, decision.reason, self.clock()
        )
        if not decision.allowed:
            raise self.api_error(403, decision.reason, decision.message)
        return alert

    def visible(self, who: Principal) -> frozenset[str] | None:
        agreements = {k: a for k, (a, _) in self.current().agreements.items()}
        return visible_countries(who, agreements)

    def worksheet(self, who: Principal, alert: Alert) -> dict[str, Any]:
        """The pre-filled worksheet as ``who`` may see it, and the signed completions."""
        context, now = self.current(), self.clock()
        engine = context.store.engine
        with engine.connect() as c:
            signed = visible_completions(who, completions(c, alert.alert_id))
        return {
            "alert_id": alert.alert_id,
            "worksheet": prefill(engine, alert, now, self.visible(who)),
            "completions": [
                {**d, "document": sign_worksheet(d, context.signing_key, now)} for d in signed
            ],
        }

    def detail(self, alert: Alert) -> dict[str, Any]:
        context = self.current()
        with context.store.engine.connect() as c:
            history = events(c, alert.alert_id)
            sent = deliveries(c, alert.alert_id)
        return {
            "alert": alert.state(),
            "events": [
                {
                    "event_no": e.event_no,
                    "kind": e.kind,
                    "actor": e.actor,
                    "at": e.at.isoformat(),
                    "text": e.text,
                }
                for e in history
            ],
            "deliveries": [_delivery(d) for d in sent],
            "document": sign_alert(alert, context.signing_key, self.clock()),
        }

    def config(self) -> AlertConfig:
        try:
            return load_config(self.current().folder)
        except KeyedFileError as exc:
            raise self.api_error(500, "bad_alerts_config", str(exc)) from None


def register_alert_routes(
    app: FastAPI,
    current: Callable[[], HubContext],
    clock: Callable[[], datetime],
    principal: Callable[..., Principal],
    api_error: Callable[[int, str, str], Exception],
) -> None:
    """Add the alerts API's routes."""
    helpers = _Helpers(current, clock, api_error)
    _read_routes(app, helpers, principal)
    _manage_routes(app, helpers, principal)
    _ihr_routes(app, helpers, principal)


def _read_routes(app: FastAPI, h: _Helpers, principal: Callable[..., Principal]) -> None:
    current, clock, gate = h.current, h.clock, h.gate

    @app.get("/v1/alerts")
    async def list_alerts(
        who: Annotated[Principal, Depends(principal)],
        status: Annotated[str | None, Query(description="Only alerts in this status.")] = None,
        disease: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        """Alerts the caller may see (hub roles: all; countries: theirs; observers:
        verified ones), oldest first."""
        gate(who, "alerts.read", "alerts")
        with current().store.engine.connect() as c:
            held = stored_alerts(c, disease=disease)
        shown = [
            a.state()
            for a in held
            if (status is None or a.status == status)
            and alert_decision(who, "alerts.read", a.countries, a.status).allowed
        ]
        return {"alerts": shown}

    @app.get("/v1/alerts/inbox")
    async def inbox(who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
        """The alerts sent to the caller's country and not yet acknowledged, each signed by
        the hub; pulling marks them delivered to the node."""
        gate(who, "alerts.inbox", "alerts/inbox")
        context = current()
        country = str(who.country)
        found = await run_in_threadpool(
            pull_inbox, context.store.engine, country, who.name, context.signing_key, clock()
        )
        return {
            "country": country,
            "alerts": [
                {"alert_id": a.alert_id, "status": a.status, "title": a.title, "document": token}
                for a, token in found
            ],
        }

    @app.get("/v1/alerts/{alert_id}")
    async def show(alert_id: str, who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
        """One alert: its state, history, deliveries and signed document."""
        return h.detail(h.authorized(who, "alerts.read", alert_id))


def _manage_routes(app: FastAPI, h: _Helpers, principal: Callable[..., Principal]) -> None:
    current, clock = h.current, h.clock

    @app.post("/v1/alerts/{alert_id}/status")
    async def change_status(
        alert_id: str, change: StatusChange, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        """Move the alert along its lifecycle (hub roles); verified alerts are sent."""
        h.authorized(who, "alerts.manage", alert_id)
        context, config = current(), h.config()
        try:
            changed = set_status(
                context.store.engine,
                alert_id,
                change.status,
                who.name,
                clock(),
                change.note,
                config=config,
            )
        except AlertError as exc:
            raise h.refused(exc) from None
        await run_in_threadpool(
            deliver_pending, context.store.engine, config, context.signing_key, clock()
        )
        return h.detail(changed)

    @app.post("/v1/alerts/{alert_id}/owner")
    async def change_owner(
        alert_id: str, change: OwnerChange, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        """Give the alert to a person (hub roles)."""
        h.authorized(who, "alerts.manage", alert_id)
        try:
            changed = set_owner(current().store.engine, alert_id, change.owner, who.name, clock())
        except AlertError as exc:
            raise h.refused(exc) from None
        return h.detail(changed)

    @app.post("/v1/alerts/{alert_id}/comments")
    async def add_comment(
        alert_id: str, note: Comment, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        """Add a comment to the alert's history (hub roles)."""
        h.authorized(who, "alerts.manage", alert_id)
        try:
            changed = comment(current().store.engine, alert_id, note.text, who.name, clock())
        except AlertError as exc:
            raise h.refused(exc) from None
        return h.detail(changed)

    @app.post("/v1/alerts/{alert_id}/ack")
    async def ack(
        alert_id: str, body: Acknowledgement, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        """Acknowledge the alert for the caller's country, naming the person who read it."""
        h.authorized(who, "alerts.ack", alert_id)
        try:
            done = acknowledge(
                current().store.engine, alert_id, str(who.country), body.by, who.name, clock()
            )
        except AlertError as exc:
            raise h.refused(exc) from None
        return {"alert_id": alert_id, "deliveries": [_delivery(d) for d in done]}


def _ihr_routes(app: FastAPI, h: _Helpers, principal: Callable[..., Principal]) -> None:
    current, clock = h.current, h.clock

    @app.get("/v1/alerts/{alert_id}/ihr")
    async def ihr_worksheet(
        alert_id: str, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        """The alert's IHR Annex 2 worksheet pre-filled from the hub's data (counts of the
        countries the caller may see), with the signed completions the caller may read."""
        alert = h.authorized(who, "alerts.read", alert_id)
        return await run_in_threadpool(h.worksheet, who, alert)

    @app.post("/v1/alerts/{alert_id}/ihr")
    async def ihr_sign(
        alert_id: str, body: IhrCompletion, who: Annotated[Principal, Depends(principal)]
    ) -> dict[str, Any]:
        """Complete and sign the worksheet as national focal point (a country's
        epidemiologist or data manager, of a country concerned)."""
        h.signable(who, alert_id)
        replies = {q: Reply(r.answer, r.justification) for q, r in body.answers.items()}
        context = current()
        try:
            done = await run_in_threadpool(
                lambda: complete(
                    context.store.engine,
                    alert_id,
                    replies,
                    who,
                    clock(),
                    context=body.context,
                    visible=h.visible(who),
                )
            )
        except AlertError as exc:
            raise h.refused(exc) from None
        return {
            "alert_id": alert_id,
            "completion": done,
            "document": sign_worksheet(done, context.signing_key, clock()),
        }
