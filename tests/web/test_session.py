"""Logging in and out, CSRF, and sessions that were tampered with or have expired."""

from __future__ import annotations

import base64
import json
import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from epibridge.hub.app import create_app
from epibridge.hub.users import revoke_user
from epibridge.web.session import LOGIN_COOKIE, SECRET_FILE, SESSION_COOKIE
from tests.hub.test_app import Clock
from tests.hub.test_intake import NOW, Hub
from tests.web.conftest import csrf_of, log_in


def test_pages_need_a_login(client: TestClient) -> None:
    answer = client.get("/map?week=2026-W01", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fmap%3Fweek%3D2026-W01"
    form = client.get("/login")
    assert form.status_code == 200 and 'name="token"' in form.text


def test_login_sets_a_strict_signed_cookie(
    client: TestClient, tokens: dict[str, str], folder: Path
) -> None:
    page = client.get("/login?next=/quality")
    answer = client.post(
        "/login",
        data={
            "username": "khm_epi",
            "token": tokens["khm_epi"],
            "csrf": csrf_of(page.text),
            "next": "/quality",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/quality"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
    assert tokens["khm_epi"] not in cookie
    secret = folder / SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert client.get("/quality").status_code == 200


def test_wrong_token_is_an_error_on_the_form(client: TestClient, tokens: dict[str, str]) -> None:
    for name, token in [("khm_epi", tokens["khm_epi"] + "x"), ("khm_epi", tokens["admin"])]:
        page = client.get("/login")
        answer = client.post(
            "/login",
            data={"username": name, "token": token, "csrf": csrf_of(page.text), "next": "/"},
            follow_redirects=False,
        )
        assert answer.status_code == 401
        assert "do not match an active user" in answer.text
        assert SESSION_COOKIE not in client.cookies
    assert client.get("/", follow_redirects=False).status_code == 303


def test_revoked_user_is_logged_out(client: TestClient, tokens: dict[str, str], hub: Hub) -> None:
    log_in(client, "khm_epi", tokens["khm_epi"])
    assert client.get("/log").status_code == 200
    revoke_user(hub.context.store.engine, "khm_epi", NOW)
    assert client.get("/log", follow_redirects=False).status_code == 303


def test_logout(client: TestClient, tokens: dict[str, str]) -> None:
    log_in(client, "analyst", tokens["analyst"])
    page = client.get("/log")
    answer = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/log", follow_redirects=False).status_code == 303


def test_csrf_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    # Login form without its token, or with the token of another pre-login nonce.
    client.get("/login")
    answer = client.post(
        "/login",
        data={"username": "admin", "token": tokens["admin"], "csrf": "0" * 64},
        follow_redirects=False,
    )
    assert answer.status_code == 400 and SESSION_COOKIE not in client.cookies
    client.cookies.delete(LOGIN_COOKIE, path="/login")
    # Logout with a wrong token: refused, still logged in.
    log_in(client, "admin", tokens["admin"])
    answer = client.post("/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert answer.status_code == 403 and "security token" in answer.text
    assert client.get("/log").status_code == 200


def test_tampered_or_expired_session_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    log_in(client, "khm_epi", tokens["khm_epi"])
    cookie = client.cookies[SESSION_COOKIE]
    body, mac = cookie.split(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields["u"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    for bad in (f"{forged}.{mac}", f"{body}.{'0' * 64}", "garbage"):
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, bad)
        assert client.get("/log", follow_redirects=False).status_code == 303, bad
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/log").status_code == 200


def test_session_expires(hub: Hub, tokens: dict[str, str], folder: Path) -> None:
    clock = Clock(NOW)
    with TestClient(create_app(replace(hub.context, folder=folder), clock)) as client:
        log_in(client, "observer", tokens["observer"])
        assert client.get("/log").status_code == 200
        clock.now = NOW + timedelta(hours=8, minutes=1)
        assert client.get("/log", follow_redirects=False).status_code == 303
