"""Logging in and out: a form for the user name and token, a signed session cookie.

The token is the one ``epibridge hub users add`` printed (``hub/users.py``): the hub
checks its SHA-256 and that it belongs to the name given. It is never stored in the
cookie nor logged. The login form is protected against CSRF with a pre-login nonce
cookie; logout is a POST with the session's CSRF token.
"""

import hmac
import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from epibridge.hub.users import principal_of
from epibridge.web.i18n import gettext_of
from epibridge.web.session import (
    LIFETIME,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    csrf_ok,
    csrf_token,
    encode,
    login_nonce,
    new_session,
)
from epibridge.web.viewer import NotLoggedIn, Web, language_of

logger = logging.getLogger(__name__)
MAX_FIELD = 512


def safe_next(path: str | None) -> str:
    """Only a path on this hub may be returned to after logging in."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/"
    return path


def register(app: FastAPI, web: Web) -> None:
    def form(request: Request, error: str | None, status: int, next_path: str) -> Response:
        nonce = login_nonce()
        response = web.page(
            request,
            "login.html",
            {"error": error, "csrf": csrf_token(web.secret(), nonce), "next": next_path},
            status=status,
        )
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=3600,
            path="/login",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str | None = None) -> Response:
        try:
            web.viewer(request)
            return RedirectResponse(safe_next(next), status_code=303)
        except NotLoggedIn:
            return form(request, None, 200, safe_next(next))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        fields = await request.form()
        name, token, csrf, next_path = (
            str(fields.get(k, ""))[:MAX_FIELD] for k in ("username", "token", "csrf", "next")
        )
        _ = gettext_of(language_of(request))
        if not csrf_ok(web.secret(), request.cookies.get(LOGIN_COOKIE), csrf):
            logger.warning("refused a login form without a valid CSRF token")
            return form(
                request,
                _("The form had expired or did not come from this hub. Please try again."),
                400,
                safe_next(next_path),
            )
        found = principal_of(web.current().store.engine, token.strip())
        if found is None or not hmac.compare_digest(found.name.encode(), name.strip().encode()):
            logger.warning("refused a dashboard login for %r", name[:64])
            return form(
                request,
                _("That user name and token do not match an active user of this hub."),
                401,
                safe_next(next_path),
            )
        session = new_session(found.name, web.clock())
        response = RedirectResponse(safe_next(next_path), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            encode(web.secret(), session),
            max_age=int(LIFETIME.total_seconds()),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        logger.info("dashboard login by %s", found.name)
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        viewer = web.viewer(request)
        fields = await request.form()
        if not csrf_ok(web.secret(), viewer.session.nonce, str(fields.get("csrf", ""))):
            logger.warning("refused a logout without a valid CSRF token")
            return web.page(
                request,
                "refused.html",
                {"csrf_refusal": True, "refusal": None},
                viewer,
                status=403,
            )
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response
