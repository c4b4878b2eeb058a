"""The hub's API users and the access log.

A user is a name, a role (``hub/access.py``), the country it acts for, and a bearer token:
32 random bytes (``ebu_`` + base64url), shown once when the user is created. Only its
SHA-256 is stored: the token is random and long, so a fast hash is enough to make a
stolen database useless for logging in, and lookups stay one index probe. Revoking a user
refuses the token from that moment on.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from epibridge.hub.access import COUNTRY_ROLES, USER_ROLES, Principal, Role
from epibridge.hub.tables import access_log_table, hub_users_table, utc
from epibridge.model.errors import EpibridgeError

TOKEN_PREFIX = "ebu_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class UserError(EpibridgeError):
    """A user that cannot be created or changed as asked."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    country: str | None
    created_at: datetime
    revoked_at: datetime | None


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _role(text: str) -> Role:
    for role in USER_ROLES:
        if role == text:
            return role
    raise UserError(f"role {text!r} is not one of {', '.join(USER_ROLES)}")


def add_user(
    engine: Engine, name: str, role: str, country: str | None, now: datetime
) -> tuple[User, str]:
    """Create a user; the user and its token (shown once, never stored)."""
    checked = _role(role)
    if not _NAME.fullmatch(name):
        raise UserError(f"user name {name!r}: use letters, digits, '.', '_', '@' or '-'")
    if checked in COUNTRY_ROLES and not (country and re.fullmatch(r"[A-Z]{3}", country)):
        raise UserError(f"a {checked} acts for a country: give --country with its ISO3 code")
    if checked not in COUNTRY_ROLES and country:
        raise UserError(f"a {checked} does not act for one country: leave out --country")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    created = utc(now, "the creation time")
    try:
        with engine.begin() as c:
            c.execute(
                insert(hub_users_table).values(
                    name=name,
                    role=checked,
                    country=country,
                    token_sha256=_sha256(token),
                    created_at=created,
                )
            )
    except IntegrityError:
        raise UserError(f"a user named {name!r} exists; choose another name") from None
    return User(name, checked, country, created, None), token


def users(engine: Engine) -> list[User]:
    t = hub_users_table
    with engine.connect() as c:
        rows = list(c.execute(select(t).order_by(t.c.name)))
    return [User(r.name, _role(r.role), r.country, r.created_at, r.revoked_at) for r in rows]


def revoke_user(engine: Engine, name: str, now: datetime) -> None:
    t = hub_users_table
    with engine.begin() as c:
        done = c.execute(
            update(t)
            .where(t.c.name == name, t.c.revoked_at.is_(None))
            .values(revoked_at=utc(now, "the revocation time"))
        )
    if done.rowcount != 1:
        raise UserError(f"no active user named {name!r}")


def principal_of(engine: Engine, token: str) -> Principal | None:
    """The user a bearer token belongs to, if it is a valid, unrevoked user token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    t = hub_users_table
    with engine.connect() as c:
        row = c.execute(
            select(t).where(t.c.token_sha256 == _sha256(token), t.c.revoked_at.is_(None))
        ).first()
    if row is None:
        return None
    return Principal(row.name, _role(row.role), row.country)


def log_access(
    engine: Engine,
    principal: Principal,
    action: str,
    resource: str,
    allowed: bool,
    reason: str,
    now: datetime,
) -> None:
    with engine.begin() as c:
        c.execute(
            insert(access_log_table).values(
                at=utc(now, "the access time"),
                principal=principal.name,
                role=principal.role,
                action=action,
                resource=resource,
                allowed=allowed,
                reason=reason,
            )
        )
