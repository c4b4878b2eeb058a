"""Who is looking: the session behind a request, its language, and authorization.

``Web`` is the dashboard's shared state (the hub context, the clock, the session secret
and the gate). ``viewer`` turns a request's session cookie into a ``Viewer``: the user
is looked up again on every request (revoked: logged out; role changed: applies now).
``authorize`` asks the same gate the API uses (``hub/gate.py``), which writes the
decision to the access log; a refusal becomes a ``Refused`` the 403 page explains.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse

from epibridge.hub.access import Action, Principal, visible_countries
from epibridge.hub.gate import Gate
from epibridge.hub.intake import HubContext
from epibridge.hub.tables import hub_users_table
from epibridge.model.errors import EpibridgeError
from epibridge.web.i18n import LANG_COOKIE, LANGUAGES, Formatter, gettext_of, negotiate
from epibridge.web.render import render
from epibridge.web.session import (
    SESSION_COOKIE,
    Session,
    csrf_token,
    decode,
    load_secret,
)

logger = logging.getLogger(__name__)


class NotLoggedIn(Exception):  # noqa: N818 (a state, answered with the login page)
    """No valid session: the login page, then back to ``next_path``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Refused(Exception):  # noqa: N818 (a refusal, answered with an explaining page)
    """A page the viewer may not see: HTTP ``status`` with the policy's reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.action: str | None = None
        self.role: str | None = None
        self.country: str | None = None


class FolderError(EpibridgeError):
    """A file in the hub folder a page needs cannot be used (shown, with its fix, as 500)."""


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    session: Session
    lang: str
    csrf: str
    gettext: Callable[[str], str]
    fmt: Formatter


def language_of(request: Request) -> str:
    return negotiate(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


class Web:
    """The dashboard's state shared by its routes."""

    def __init__(self, current: Callable[[], HubContext], clock: Callable[[], datetime]) -> None:
        self.current, self.clock = current, clock
        self.gate = Gate(current, clock, Refused)
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def secret(self) -> bytes:
        with self._lock:
            if self._secret is None:
                self._secret = load_secret(self.current().folder)
            return self._secret

    def user(self, name: str) -> Principal | None:
        """The active user called ``name``, as the hub knows it now."""
        t = hub_users_table
        with self.current().store.engine.connect() as c:
            row = c.execute(select(t).where(t.c.name == name, t.c.revoked_at.is_(None))).first()
        if row is None:
            return None
        return Principal(row.name, row.role, row.country)

    def viewer(self, request: Request) -> Viewer:
        """The logged-in viewer of ``request``; ``NotLoggedIn`` otherwise."""
        secret = self.secret()
        session = decode(secret, request.cookies.get(SESSION_COOKIE), self.clock())
        found = None if session is None else self.user(session.user)
        if session is None or found is None:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise NotLoggedIn(wanted)
        lang = language_of(request)
        return Viewer(
            found,
            session,
            lang,
            csrf_token(secret, session.nonce),
            gettext_of(lang),
            Formatter(lang),
        )

    def authorize(
        self, viewer: Viewer, action: Action, resource: str, country: str | None = None
    ) -> None:
        """The API's gate (decision logged); ``Refused`` with who and what on a refusal."""
        try:
            self.gate(viewer.principal, action, f"web/{resource}", country)
        except Refused as refused:
            refused.action, refused.role = action, viewer.principal.role
            refused.country = viewer.principal.country
            raise

    def visible(self, viewer: Viewer) -> frozenset[str] | None:
        """The countries whose regional data the viewer sees (None: all)."""
        agreements = {k: a for k, (a, _) in self.current().agreements.items()}
        return visible_countries(viewer.principal, agreements)

    def page(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        viewer: Viewer | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """Render a page in the request's language, with the language switcher's links;
        a ``?lang=`` choice is remembered in a cookie."""
        lang = viewer.lang if viewer is not None else language_of(request)
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        switch = {
            code: request.url.path + "?" + urlencode([*params, ("lang", code)])
            for code in LANGUAGES
        }
        response = render(
            template,
            lang,
            {"viewer": viewer, "switch": switch, "request_path": request.url.path, **context},
            status,
            request.url.path,
        )
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(
                LANG_COOKIE,
                lang,
                max_age=365 * 24 * 3600,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response
