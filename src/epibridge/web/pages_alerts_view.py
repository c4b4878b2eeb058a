"""What the alert pages share: authorization by the API's policy, and the rows they show.

``authorized`` decides one alert exactly as the API does (``api_alerts._Helpers``): the
role first (``access.decide``, through the dashboard's gate), then the alert itself
(``access.alert_decision``: a country role only for alerts concerning its country, an
observer only for verified ones), every decision written to the access log under
``web/alerts/...``. ``refusal_page`` explains a refusal with the alert pages' wording.

``country_states`` sums up a country's delivery rows (one per channel) as one state:
acknowledged, escalated, overdue (not acknowledged ``ESCALATE_AFTER`` after it was sent,
not yet escalated by ``hub alerts escalate``), delivered, sent, or not sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from babel.numbers import format_decimal
from starlette.requests import Request
from starlette.responses import Response

from epibridge.hub.access import Action, Decision, alert_decision, decide
from epibridge.hub.alert_delivery import ESCALATE_AFTER, Delivery
from epibridge.hub.alert_store import OPEN, Alert, AlertError, read
from epibridge.hub.ihr import week_label
from epibridge.hub.users import log_access
from epibridge.web.areas import name_of, registry_unit
from epibridge.web.i18n import DASH
from epibridge.web.viewer import Refused, Viewer, Web

#: The inbox's order: open alerts first, then discarded and closed ones.
STATUS_ORDER = {"new": 0, "under_review": 1, "verified": 2, "discarded": 3, "closed": 4}


def decided(web: Web, viewer: Viewer, action: Action, resource: str, decision: Decision) -> None:
    """Log ``decision`` (resource ``web/<resource>``); ``Refused`` when it refuses."""
    log_access(
        web.current().store.engine,
        viewer.principal,
        action,
        f"web/{resource}",
        decision.allowed,
        decision.reason,
        web.clock(),
    )
    if not decision.allowed:
        refusal = Refused(403, decision.reason, decision.message)
        refusal.action, refusal.role = action, viewer.principal.role
        refusal.country = viewer.principal.country
        raise refusal


def fetch(web: Web, viewer: Viewer, alert_id: str) -> Alert:
    """The stored alert; ``Refused`` 404 when the hub holds none."""
    _ = viewer.gettext
    try:
        with web.current().store.engine.connect() as c:
            return read(c, alert_id)
    except AlertError:
        raise Refused(
            404, "not_found", _("The hub holds no alert %(id)s.") % {"id": alert_id}
        ) from None


def authorized(web: Web, viewer: Viewer, action: Action, alert_id: str, suffix: str = "") -> Alert:
    """The alert, if the viewer may do ``action`` on it (decisions logged); else ``Refused``."""
    resource = f"alerts/{alert_id}{suffix}"
    if not decide(viewer.principal, action).allowed:
        web.authorize(viewer, action, resource)  # logs and refuses
    alert = fetch(web, viewer, alert_id)
    decision = alert_decision(viewer.principal, action, alert.countries, alert.status)
    decided(web, viewer, action, resource, decision)
    return alert


def refusal_page(web: Web, request: Request, viewer: Viewer | None, refusal: Refused) -> Response:
    return web.page(
        request, "alert_refused.html", {"refusal": refusal}, viewer, status=refusal.status
    )


def csrf_page(web: Web, request: Request, viewer: Viewer) -> Response:
    """A form without this session's CSRF token: refused, nothing done."""
    return web.page(
        request, "refused.html", {"csrf_refusal": True, "refusal": None}, viewer, status=403
    )


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    local: str | None
    country: str | None  # None: a code the registry does not know


def areas_of(codes: Iterable[str]) -> list[Area]:
    """Area codes with their English and local-script names and their country."""
    found = []
    for code in codes:
        unit = registry_unit(code)
        found.append(Area(code, *name_of(code), None if unit is None else unit.country))
    return found


@dataclass(frozen=True)
class CountryState:
    country: str
    state: str  # acknowledged, escalated, overdue, delivered, sent, not_sent
    channels: tuple[str, ...]
    by: str | None  # who acknowledged
    at: datetime | None  # when it was acknowledged (or first sent)


def country_states(alert: Alert, rows: Sequence[Delivery], now: datetime) -> list[CountryState]:
    """One state per country concerned, from its delivery rows."""
    found = []
    for country in alert.countries:
        mine = [d for d in rows if d.country == country]
        channels = tuple(d.channel for d in mine)
        if not mine:
            found.append(CountryState(country, "not_sent", (), None, None))
            continue
        sent = min(d.sent_at for d in mine)
        acked = [d for d in mine if d.acknowledged_at is not None]
        if len(acked) == len(mine):
            first = min(acked, key=lambda d: d.acknowledged_at or sent)
            found.append(
                CountryState(
                    country, "acknowledged", channels, first.acknowledged_by, first.acknowledged_at
                )
            )
        elif any(d.escalated_at is not None for d in mine):
            found.append(CountryState(country, "escalated", channels, None, sent))
        elif alert.status in OPEN and sent <= now - ESCALATE_AFTER:
            found.append(CountryState(country, "overdue", channels, None, sent))
        elif any(d.delivered_at is not None for d in mine):
            found.append(CountryState(country, "delivered", channels, None, sent))
        else:
            found.append(CountryState(country, "sent", channels, None, sent))
    return found


def figure(value: float | None, lang: str, digits: int = 3) -> str:
    """A p-value or ratio to ``digits`` significant figures, in the language's format."""
    if value is None:
        return DASH
    return format_decimal(value, format="@" + "#" * (digits - 1), locale=lang)


def weeks_text(alert: Alert) -> str:
    """``2026-W10`` or ``2026-W10 (en dash) 2026-W12``."""
    first, last = week_label(alert.first_week), week_label(alert.last_week)
    return first if first == last else f"{first} {DASH} {last}"


def inbox_order(alert: Alert) -> tuple[int, int, str]:
    """Open alerts first (new, under review, verified), then discarded and closed; the
    most recent weeks first within a status."""
    return (STATUS_ORDER.get(alert.status, 9), -alert.last_week.toordinal(), alert.alert_id)
