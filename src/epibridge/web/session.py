"""Signed session cookies and CSRF tokens for the dashboard.

A person logs in once with the user token ``epibridge hub users add`` printed; the
dashboard then keeps a session cookie, not the token. The cookie holds the user's name,
a random nonce and an expiry, signed with HMAC-SHA256 under a secret kept in the hub's
folder (``web_session.key``, created with mode 0600 on first use). Nothing else is
trusted from it: every request looks the user up again, so a revoked user is out at
once, and a changed role applies at once.

CSRF: every POST form carries a token derived from the session's nonce (or, on the login
form, from a pre-login nonce cookie) with the same secret; the cookies are also
``SameSite=Strict``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from epibridge.model.errors import EpibridgeError

SECRET_FILE = "web_session.key"
SESSION_COOKIE = "epibridge_session"
LOGIN_COOKIE = "epibridge_login"
LIFETIME = timedelta(hours=8)


class SessionError(EpibridgeError):
    """The session secret cannot be created or read safely."""


def load_secret(folder: Path | None) -> bytes:
    """The hub's session secret, created (mode 0600) on first use."""
    if folder is None:
        raise SessionError(
            "the hub has no folder to keep the dashboard's session secret in\n"
            "  what to do: start the hub with `epibridge hub serve` on an initialised hub folder"
        )
    path = folder / SECRET_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SessionError(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):o})\n"
            f"  what to do: chmod 600 {path}"
        )
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError):
        secret = b""
    if len(secret) < 32:
        raise SessionError(f"{path} is not a session secret; delete it to make a new one")
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, message: str) -> str:
    return hmac.new(secret, f"{purpose}|{message}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Session:
    user: str
    nonce: str
    expires: datetime


def new_session(user: str, now: datetime) -> Session:
    return Session(user, secrets.token_urlsafe(16), now + LIFETIME)


def encode(secret: bytes, session: Session) -> str:
    body = _b64(
        json.dumps(
            {"u": session.user, "n": session.nonce, "e": int(session.expires.timestamp())},
            separators=(",", ":"),
        ).encode()
    )
    return f"{body}.{_mac(secret, 'session', body)}"


def decode(secret: bytes, cookie: str | None, now: datetime) -> Session | None:
    """The session a cookie holds, if its signature is right and it has not expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    body, mac = cookie.split(".")
    if not hmac.compare_digest(mac, _mac(secret, "session", body)):
        return None
    try:
        fields = json.loads(_unb64(body))
        expires = datetime.fromtimestamp(int(fields["e"]), now.tzinfo)
        session = Session(str(fields["u"]), str(fields["n"]), expires)
    except (ValueError, KeyError, TypeError):
        return None
    return session if now < session.expires else None


def csrf_token(secret: bytes, nonce: str) -> str:
    """The token a POST form of the session (or pre-login nonce) ``nonce`` must carry."""
    return _mac(secret, "csrf", nonce)


def csrf_ok(secret: bytes, nonce: str | None, offered: str | None) -> bool:
    if not nonce or not offered:
        return False
    return hmac.compare_digest(csrf_token(secret, nonce), offered)


def login_nonce() -> str:
    return secrets.token_urlsafe(16)
