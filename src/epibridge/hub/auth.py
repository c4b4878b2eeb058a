"""Who is calling the hub: client assertions in, short-lived access tokens out.

The pattern is SMART Backend Services (HL7 FHIR "Backend Services" authorization), which
profiles the OAuth 2.0 client-credentials grant with a JWT client assertion (RFC 7523,
section 2.2): a node proves it holds a signing key by signing a short JWT
``{iss = sub = country, aud = token URL, exp, iat, jti}`` with the Ed25519 key the trust
list certifies for its country. No shared secret exists, so none can leak; revoking the
key in the trust list ends access at the next token request.

The hub answers with its own compact JWS (``typ`` ``epibridge-access+jws``) naming the
country; every protected request carries it as a bearer token. Tokens live five minutes,
so a revocation takes effect within five minutes without a token-revocation list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from epibridge.model.errors import EpibridgeError
from epibridge.transport.keys import ALGORITHM, TrustError, peek, sign_compact, verify_compact
from epibridge.transport.keystore import SigningKey
from epibridge.transport.trust import HUB, TrustList

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_TYP = "JWT"
ACCESS_TOKEN_TYPE = "epibridge-access+jws"
ACCESS_AUDIENCE = "epibridge-hub"
ACCESS_TOKEN_LIFETIME = timedelta(minutes=5)
# SMART Backend Services: an assertion's exp is no more than five minutes in the future.
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
# Node clocks drift; this much is tolerated on exp and iat, never on an expired assertion.
CLOCK_SKEW = timedelta(seconds=60)
_MAX_JTI = 255


class AuthError(EpibridgeError):
    """A token request or a bearer token is refused; ``status`` is the HTTP answer."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"{message} [{reason}]")


def _seconds(at: datetime) -> int:
    return int(at.astimezone(UTC).timestamp())


def client_assertion(
    key: SigningKey,
    country: str,
    token_url: str,
    now: datetime,
    jti: str,
    lifetime: timedelta = MAX_ASSERTION_LIFETIME,
) -> str:
    """The assertion a node sends to ``token_url``: signed by ``key``, for one use (``jti``)."""
    claims = {
        "iss": country,
        "sub": country,
        "aud": token_url,
        "iat": _seconds(now),
        "exp": _seconds(now + lifetime),
        "jti": jti,
    }
    return sign_compact(claims, key.private_key, key.kid, ASSERTION_TYP)


class StoredReplayCache:
    """Client-assertion ids already used, kept in the hub database until they expire: a
    replay is refused by every hub process (several workers, replicas) and after a
    restart. The primary key does the refusing."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def remember(self, issuer: str, jti: str, expires: datetime, now: datetime) -> None:
        from epibridge.hub.tables import assertion_ids_table as t

        try:
            with self._engine.begin() as c:
                c.execute(delete(t).where(t.c.expires_at < now - CLOCK_SKEW))
                c.execute(insert(t).values(issuer=issuer, jti=jti, expires_at=expires))
        except IntegrityError:
            raise AuthError(
                401,
                "replayed_assertion",
                f"the client assertion {jti!r} of {issuer} was already used; sign a new "
                "assertion with a fresh jti for every token request",
            ) from None


def _invalid(message: str) -> AuthError:
    return AuthError(401, "invalid_client", message)


def _signed_claims(assertion: str, key: Ed25519PublicKey) -> dict[str, Any]:
    """The assertion's claims if ``key`` signed it. Unlike ``verify_compact`` the JSON need
    not be canonical, so any JWT library can produce the assertion."""
    try:
        found = jws.deserialize_compact(assertion, OKPKey.import_key(key), algorithms=[ALGORITHM])
        claims = json.loads(found.payload)
    except (JoseError, ValueError):
        raise _invalid(
            "the client assertion's signature does not verify with the key named by its kid"
        ) from None
    typ = found.protected.get("typ")
    if typ is not None and str(typ).upper() != ASSERTION_TYP:
        raise _invalid(f"the client assertion's typ is {typ!r}, expected 'JWT'")
    if not isinstance(claims, dict):
        raise _invalid("the client assertion's payload is not a JSON object")
    return claims


def _time_claim(claims: dict[str, Any], name: str) -> datetime:
    value = claims.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(f"the client assertion's {name} must be a NumericDate (whole seconds)")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise _invalid(f"the client assertion's {name} is out of range") from None


def verify_assertion(
    assertion: str,
    trust: TrustList,
    audience: str,
    now: datetime,
    replay: StoredReplayCache,
) -> str:
    """The country a valid client assertion authenticates; else ``AuthError``.

    Checks, in order: the key (``kid``) is certified for the claimed country, valid and
    unrevoked at ``now``; the signature; ``iss == sub``; ``aud`` names this token URL;
    ``exp`` is in the future but at most five minutes away; ``iat`` is not in the future;
    ``jti`` was not used before.
    """
    try:
        header, unverified = peek(assertion)
    except ValueError:
        raise _invalid("the client assertion is not a compact JWS") from None
    kid, issuer = header.get("kid"), unverified.get("iss")
    if not isinstance(kid, str) or not isinstance(issuer, str) or not kid or not issuer:
        raise _invalid("the client assertion needs a kid header and an iss claim")
    try:
        key = trust.resolve(issuer, kid, "sig", now)
    except TrustError as exc:
        raise AuthError(401, exc.reason, exc.message) from None
    if not isinstance(key, Ed25519PublicKey):  # a "sig" certificate is always Ed25519
        raise _invalid(f"key {kid} is not a signing key")
    claims = _signed_claims(assertion, key)
    if claims.get("iss") != issuer or claims.get("sub") != issuer:
        raise _invalid("the client assertion's iss and sub must both be the node's country")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise AuthError(
            401,
            "wrong_audience",
            f"the client assertion is addressed to {aud!r}, not to this hub's {audience!r}",
        )
    expires, issued = _time_claim(claims, "exp"), _time_claim(claims, "iat")
    if expires <= now:
        raise AuthError(
            401, "expired_assertion", "the client assertion has expired; sign a new one"
        )
    if expires > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
        raise AuthError(
            401,
            "assertion_lifetime_too_long",
            "the client assertion's exp is more than five minutes ahead; check the node's clock",
        )
    if issued > now + CLOCK_SKEW:
        raise AuthError(
            401,
            "assertion_from_future",
            "the client assertion's iat is in the future; check the node's clock",
        )
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
        raise _invalid("the client assertion needs a jti: a unique string of 1-255 characters")
    replay.remember(issuer, jti, expires, now)
    return issuer


@dataclass(frozen=True)
class AccessToken:
    token: str
    country: str
    expires_at: datetime


def issue_access_token(key: SigningKey, country: str, now: datetime, jti: str) -> AccessToken:
    """A bearer token for ``country``, signed by the hub, valid ``ACCESS_TOKEN_LIFETIME``."""
    expires = now + ACCESS_TOKEN_LIFETIME
    claims = {
        "iss": HUB,
        "sub": country,
        "aud": ACCESS_AUDIENCE,
        "iat": _seconds(now),
        "exp": _seconds(expires),
        "jti": jti,
    }
    return AccessToken(
        sign_compact(claims, key.private_key, key.kid, ACCESS_TOKEN_TYPE), country, expires
    )


def verify_access_token(token: str, key: SigningKey, now: datetime) -> str:
    """The country a bearer token was issued to; ``AuthError`` 401 if it is not valid now."""
    invalid = AuthError(
        401, "invalid_token", "the bearer token is not one this hub issued; request a new one"
    )
    try:
        header, _ = peek(token)
        if header.get("kid") != key.kid:
            raise invalid
        claims = verify_compact(token, key.private_key.public_key(), ACCESS_TOKEN_TYPE)
    except ValueError:
        raise invalid from None
    country, expires = claims.get("sub"), claims.get("exp")
    if claims.get("aud") != ACCESS_AUDIENCE or not isinstance(country, str) or not country:
        raise invalid
    if not isinstance(expires, int) or datetime.fromtimestamp(expires, UTC) <= now:
        raise AuthError(
            401, "expired_token", "the bearer token has expired; request a new one at /v1/token"
        )
    return country
