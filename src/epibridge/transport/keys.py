"""Key certificates: a country's root key vouches for its short-lived working keys.

A certificate is a compact JWS signed by the root over RFC 8785 canonical JSON::

    {"v": 1, "country": "KHM", "kid": ..., "use": "sig" | "enc", "jwk": {public OKP JWK},
     "not_before": "2026-01-01T00:00:00Z", "not_after": ..., "root_kid": ...}

``kid`` is the RFC 7638 thumbprint of ``jwk``, so a key id cannot be attached to another
key. The JWS algorithm is ``Ed25519`` (RFC 9864's fully-specified name; ``EdDSA`` is
deprecated there and joserfc warns on it). Every failure is a ``TrustError`` subclass
with a machine-readable ``reason`` so the hub can put it in a receipt.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from epibridge.model.errors import EpibridgeError

Use = Literal["sig", "enc"]
PublicKey = Ed25519PublicKey | X25519PublicKey

ALGORITHM = "Ed25519"
CERT_TYPE = "epibridge-key-cert+jws"
DEFAULT_VALIDITY = timedelta(days=90)
_CURVE: dict[str, str] = {"sig": "Ed25519", "enc": "X25519"}
_CERT_FIELDS = frozenset(
    {"v", "country", "kid", "use", "jwk", "not_before", "not_after", "root_kid"}
)


class TrustError(EpibridgeError):
    """A key or signature cannot be trusted. ``reason`` is a stable code for machines."""

    reason: ClassVar[str] = "untrusted"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"{message} [{self.reason}]")


class UnknownKeyError(TrustError):
    """No certificate for this key id (or no root for this country) is in the trust list."""

    reason = "unknown_key"


class UnknownCountryError(UnknownKeyError):
    """The trust list holds no root key for this country."""

    reason = "unknown_country"


class BadCertificateError(TrustError):
    """A certificate is malformed, tampered with, or not signed by the country's root."""

    reason = "bad_certificate"


class CountryMismatchError(TrustError):
    """The key belongs to another country than the one claimed."""

    reason = "country_mismatch"


class WrongUseError(TrustError):
    """A signing key was presented for encryption, or the other way round."""

    reason = "wrong_use"


class ExpiredKeyError(TrustError):
    """The key's certificate ended before the time in question."""

    reason = "expired_key"


class NotYetValidKeyError(TrustError):
    """The key's certificate starts after the time in question."""

    reason = "not_yet_valid_key"


class RevokedKeyError(TrustError):
    """The key was revoked at or before the time in question."""

    reason = "revoked_key"


def utc(at: datetime) -> datetime:
    """``at`` in UTC, to the second (what a certificate can say). Naive times are a bug."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"time {at!r} has no timezone; pass timezone-aware UTC times")
    return at.astimezone(UTC).replace(microsecond=0)


def format_time(at: datetime) -> str:
    return utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime:
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError(f"time {text!r} is not ISO 8601 UTC ending in 'Z'")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes: the same value always signs to the same payload."""
    return rfc8785.dumps(value)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The public OKP JWK (RFC 8037) of an Ed25519 or X25519 key."""
    crv = "Ed25519" if isinstance(key, Ed25519PublicKey) else "X25519"
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {"kty": "OKP", "crv": crv, "x": b64url(raw)}


def thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 thumbprint: base64url SHA-256 of the required members, canonically ordered."""
    required = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}
    return b64url(hashlib.sha256(canonical_json(required)).digest())


def public_key_from_jwk(jwk: Mapping[str, Any]) -> PublicKey:
    """The key a JWK describes; ``ValueError`` unless it is a 32-byte Ed25519/X25519 OKP key."""
    if set(jwk) != {"kty", "crv", "x"} or jwk["kty"] != "OKP":
        raise ValueError("not a public OKP JWK with exactly kty, crv and x")
    raw = b64url_decode(str(jwk["x"]))
    if jwk["crv"] == "Ed25519":
        return Ed25519PublicKey.from_public_bytes(raw)
    if jwk["crv"] == "X25519":
        return X25519PublicKey.from_public_bytes(raw)
    raise ValueError(f"curve {jwk['crv']!r} is not Ed25519 or X25519")


def sign_compact(payload: Mapping[str, Any], key: Ed25519PrivateKey, kid: str, typ: str) -> str:
    """A compact JWS over the canonical JSON of ``payload``."""
    header = {"alg": ALGORITHM, "kid": kid, "typ": typ}
    return jws.serialize_compact(
        header, canonical_json(payload), OKPKey.import_key(key), algorithms=[ALGORITHM]
    )


def verify_compact(token: str, key: Ed25519PublicKey, typ: str) -> dict[str, Any]:
    """The payload of ``token`` if ``key`` signed it with the expected type; else ``ValueError``."""
    try:
        found = jws.deserialize_compact(token, OKPKey.import_key(key), algorithms=[ALGORITHM])
    except JoseError as exc:
        raise ValueError(f"signature check failed ({exc.error})") from exc
    if found.protected.get("typ") != typ:
        raise ValueError(f"token type is {found.protected.get('typ')!r}, expected {typ!r}")
    payload = json.loads(found.payload)
    if not isinstance(payload, dict) or canonical_json(payload) != found.payload:
        raise ValueError("payload is not canonical JSON of an object")
    return payload


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS, NOT verified: only to find which key to check."""
    try:
        head, body, _sig = token.split(".")
        header, payload = json.loads(b64url_decode(head)), json.loads(b64url_decode(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a compact JWS") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("not a compact JWS over a JSON object")
    return header, payload


@dataclass(frozen=True)
class KeyCertificate:
    """A verified (or freshly issued) certificate; ``token`` is what travels."""

    country: str
    kid: str
    use: Use
    jwk: Mapping[str, str]
    not_before: datetime
    not_after: datetime
    root_kid: str
    token: str

    def public_key(self) -> PublicKey:
        return public_key_from_jwk(self.jwk)

    def valid_at(self, at: datetime) -> bool:
        return self.not_before <= utc(at) < self.not_after

    def check_valid_at(self, at: datetime) -> None:
        """Raise ``NotYetValidKeyError`` / ``ExpiredKeyError`` unless valid at ``at``."""
        when = format_time(at)
        if utc(at) < self.not_before:
            raise NotYetValidKeyError(
                f"{self.country} key {self.kid} is valid only from "
                f"{format_time(self.not_before)}, not at {when}; check the sender's clock"
            )
        if utc(at) >= self.not_after:
            raise ExpiredKeyError(
                f"{self.country} key {self.kid} expired at {format_time(self.not_after)} "
                f"(time checked: {when}); the sender must rotate its keys"
            )


def issue_certificate(
    root: Ed25519PrivateKey,
    country: str,
    key: PublicKey,
    not_before: datetime,
    not_after: datetime,
) -> KeyCertificate:
    """Certify ``key`` for ``country`` (``sig`` for Ed25519, ``enc`` for X25519)."""
    if utc(not_after) <= utc(not_before):
        raise ValueError("not_after must be later than not_before")
    jwk = public_jwk(key)
    use: Use = "sig" if jwk["crv"] == "Ed25519" else "enc"
    root_kid = thumbprint(public_jwk(root.public_key()))
    payload = {
        "v": 1,
        "country": country,
        "kid": thumbprint(jwk),
        "use": use,
        "jwk": jwk,
        "not_before": format_time(not_before),
        "not_after": format_time(not_after),
        "root_kid": root_kid,
    }
    return _certificate(payload, sign_compact(payload, root, root_kid, CERT_TYPE))


def verify_certificate(token: str, root_jwk: Mapping[str, str]) -> KeyCertificate:
    """The certificate in ``token`` if ``root_jwk`` signed it and it is well formed.

    Validity in time and revocation are separate checks (``check_valid_at``, the trust
    list): a certificate is a statement that stays true after it expires.
    """
    try:
        root_kid = thumbprint(root_jwk)
        root = public_key_from_jwk(root_jwk)
        if not isinstance(root, Ed25519PublicKey):
            raise ValueError("the root key is not an Ed25519 key")
        header, _ = peek(token)
        if header.get("kid") != root_kid:
            raise ValueError(f"signed by key {header.get('kid')!r}, not root {root_kid}")
        payload = verify_compact(token, root, CERT_TYPE)
        if payload.get("root_kid") != root_kid:
            raise ValueError("root_kid does not name the signing root")
        return _certificate(payload, token)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadCertificateError(
            f"key certificate rejected: {exc}; ask the hub for a fresh trust list"
        ) from exc


def _certificate(payload: Mapping[str, Any], token: str) -> KeyCertificate:
    if set(payload) != _CERT_FIELDS or payload["v"] != 1:
        raise ValueError(f"certificate fields {sorted(payload)} are not version 1's")
    use, jwk = payload["use"], payload["jwk"]
    if use not in _CURVE or not isinstance(jwk, dict):
        raise ValueError(f"use {use!r} is not 'sig' or 'enc'")
    public_key_from_jwk(jwk)
    if jwk["crv"] != _CURVE[use]:
        raise ValueError(f"a {use!r} key must be {_CURVE[use]}, not {jwk['crv']}")
    if payload["kid"] != thumbprint(jwk):
        raise ValueError("kid is not the thumbprint of the key")
    not_before, not_after = parse_time(payload["not_before"]), parse_time(payload["not_after"])
    if not_after <= not_before:
        raise ValueError("not_after is not later than not_before")
    return KeyCertificate(
        country=str(payload["country"]),
        kid=str(payload["kid"]),
        use=use,
        jwk=dict(jwk),
        not_before=not_before,
        not_after=not_after,
        root_kid=str(payload["root_kid"]),
        token=token,
    )
