"""The hub's signed trust list: which keys each country holds, and which are revoked.

The hub signs the list with one of its own signing keys; that key's certificate is in
the list and must verify under the hub root each node pinned at enrolment. A node then
asks ``resolve(country, kid, use, at)`` for the public key behind a signature or an
encryption target. Rotation needs no downtime because a country may have several valid
certificates per use at once: old and new both resolve while both are valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from epibridge.transport.keys import (
    BadCertificateError,
    CountryMismatchError,
    KeyCertificate,
    PublicKey,
    RevokedKeyError,
    TrustError,
    UnknownCountryError,
    UnknownKeyError,
    Use,
    WrongUseError,
    format_time,
    parse_time,
    peek,
    public_key_from_jwk,
    sign_compact,
    thumbprint,
    utc,
    verify_certificate,
    verify_compact,
)

HUB = "HUB"
LIST_TYPE = "epibridge-trust-list+jws"
REVOCATION_REASONS = frozenset({"key_compromise", "superseded", "retired", "unspecified"})
_LIST_FIELDS = frozenset(
    {"v", "serial", "issued_at", "next_update", "roots", "certificates", "revoked"}
)


class BadTrustListError(TrustError):
    """The trust list is malformed or its signature does not verify."""

    reason = "bad_trust_list"


class UntrustedSignerError(BadTrustListError):
    """The list is signed by a key without a valid certificate from the pinned hub root."""

    reason = "untrusted_signer"


class TrustListRollbackError(BadTrustListError):
    """The list is older than (or conflicts with) the one already accepted."""

    reason = "rollback"


class StaleTrustListError(BadTrustListError):
    """The list is past its ``next_update``: revocations since then would be missed."""

    reason = "stale_trust_list"


class NoCurrentKeyError(TrustError):
    """No certificate of this country and use is valid and unrevoked at the time asked."""

    reason = "no_current_key"


@dataclass(frozen=True)
class Revocation:
    """From ``revoked_at`` on, ``kid`` is refused. Set it back to the suspected time of a
    compromise: signatures dated after it fail, earlier ones still verify."""

    kid: str
    revoked_at: datetime
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"kid": self.kid, "revoked_at": format_time(self.revoked_at), "reason": self.reason}

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Revocation:
        if set(item) != {"kid", "revoked_at", "reason"}:
            raise ValueError(f"revocation fields {sorted(item)} are not kid, revoked_at, reason")
        if item["reason"] not in REVOCATION_REASONS:
            raise ValueError(f"revocation reason {item['reason']!r} is unknown")
        return cls(str(item["kid"]), parse_time(item["revoked_at"]), str(item["reason"]))


@dataclass(frozen=True)
class TrustList:
    """A verified trust list. Build it with ``verify_trust_list``, never directly."""

    serial: int
    issued_at: datetime
    next_update: datetime
    roots: Mapping[str, Mapping[str, str]]
    certificates: tuple[str, ...]
    revoked: Mapping[str, Revocation]
    token: str
    # kid -> (country as claimed, certificate token): only to find what to verify.
    _index: dict[str, tuple[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, tuple[str, str]] = {}
        for token in self.certificates:
            _, payload = peek(token)
            index[str(payload.get("kid"))] = (str(payload.get("country")), token)
        object.__setattr__(self, "_index", index)

    def certificate(self, country: str, kid: str) -> KeyCertificate:
        """The certificate of ``kid``, verified under ``country``'s root in this list."""
        claimed = self._index.get(kid)
        if claimed is None:
            raise UnknownKeyError(
                f"key {kid} is not in trust list #{self.serial}; if the sender rotated its "
                "keys recently, fetch a newer trust list from the hub"
            )
        if claimed[0] != country:
            raise CountryMismatchError(f"key {kid} belongs to {claimed[0]}, not {country}")
        root = self.roots.get(country)
        if root is None:
            raise UnknownCountryError(f"trust list #{self.serial} has no root key for {country}")
        cert = verify_certificate(claimed[1], root)
        if cert.country != country:
            raise CountryMismatchError(f"key {kid} is certified for {cert.country}, not {country}")
        return cert

    def check(self, country: str, kid: str, use: Use, at: datetime) -> KeyCertificate:
        """The certificate of ``kid`` if usable for ``use`` at ``at``; else a ``TrustError``."""
        cert = self.certificate(country, kid)
        if cert.use != use:
            raise WrongUseError(f"{country} key {kid} is a {cert.use!r} key, not {use!r}")
        revocation = self.revoked.get(kid)
        if revocation is not None and revocation.revoked_at <= utc(at):
            raise RevokedKeyError(
                f"{country} key {kid} was revoked at {format_time(revocation.revoked_at)} "
                f"({revocation.reason}); the sender must use a newer key"
            )
        cert.check_valid_at(at)
        return cert

    def resolve(self, country: str, kid: str, use: Use, at: datetime) -> PublicKey:
        """The public key to check a signature with (``sig``) or encrypt to (``enc``)."""
        return self.check(country, kid, use, at).public_key()

    def current_key(self, country: str, use: Use, at: datetime) -> KeyCertificate:
        """The newest certificate of ``country`` and ``use`` valid and unrevoked at ``at``."""
        usable = []
        for kid, (claimed, _) in self._index.items():
            if claimed == country:
                try:
                    usable.append(self.check(country, kid, use, at))
                except TrustError:
                    continue
        if not usable:
            raise NoCurrentKeyError(
                f"trust list #{self.serial} has no valid {use!r} key for {country} at "
                f"{format_time(at)}; {country} must rotate its keys and send them to the hub"
            )
        return max(usable, key=lambda cert: (cert.not_before, cert.not_after, cert.kid))

    def current_signing_key(self, country: str, at: datetime) -> KeyCertificate:
        return self.current_key(country, "sig", at)

    def current_encryption_key(self, country: str, at: datetime) -> KeyCertificate:
        return self.current_key(country, "enc", at)


def issue_trust_list(
    signer: Ed25519PrivateKey,
    signer_certificate: KeyCertificate,
    serial: int,
    issued_at: datetime,
    next_update: datetime,
    roots: Mapping[str, Mapping[str, str]],
    certificates: Iterable[str],
    revoked: Iterable[Revocation] = (),
) -> str:
    """The hub's signed list. The signer's own certificate is added if missing."""
    if signer_certificate.country != HUB or signer_certificate.use != "sig":
        raise ValueError("a trust list is signed by a hub signing key")
    if signer_certificate.public_key() != signer.public_key():
        raise ValueError("the signer's certificate is for another key")
    if HUB not in roots or thumbprint(roots[HUB]) != signer_certificate.root_kid:
        raise ValueError("roots must hold the hub root that certified the signer")
    tokens = list(dict.fromkeys(certificates))
    if signer_certificate.token not in tokens:
        tokens.append(signer_certificate.token)
    payload = {
        "v": 1,
        "serial": serial,
        "issued_at": format_time(issued_at),
        "next_update": format_time(next_update),
        "roots": {country: dict(jwk) for country, jwk in roots.items()},
        "certificates": tokens,
        "revoked": [item.as_json() for item in revoked],
    }
    return sign_compact(payload, signer, signer_certificate.kid, LIST_TYPE)


def verify_trust_list(
    token: str, hub_root: Mapping[str, str], now: datetime, previous: TrustList | None = None
) -> TrustList:
    """Accept ``token`` only if a certified hub key signed it, it is fresh, and it does not
    roll back ``previous``. The same list fetched again (same serial, same token) is fine."""
    try:
        header, claimed = peek(token)
        signer = _signer(str(header.get("kid")), claimed, hub_root, now)
        payload = verify_compact(token, signer, LIST_TYPE)
        trust = _trust_list(payload, token, hub_root)
    except (ValueError, KeyError, TypeError) as exc:
        raise BadTrustListError(f"trust list rejected: {exc}") from exc
    if previous is not None and (
        trust.serial < previous.serial
        or (trust.serial == previous.serial and trust.token != previous.token)
    ):
        raise TrustListRollbackError(
            f"trust list #{trust.serial} does not supersede the accepted #{previous.serial}; "
            "someone may be replaying an old list: keep the current one and tell the hub"
        )
    if utc(now) > trust.next_update:
        raise StaleTrustListError(
            f"trust list #{trust.serial} was due for replacement at "
            f"{format_time(trust.next_update)}; fetch a fresh one from the hub"
        )
    return trust


def _signer(
    kid: str, claimed: Mapping[str, Any], hub_root: Mapping[str, str], now: datetime
) -> Ed25519PublicKey:
    """The hub signing key named ``kid``, checked against the pinned root (not the list's)."""
    for cert_token in claimed.get("certificates", []):
        if peek(cert_token)[1].get("kid") == kid:
            try:
                cert = verify_certificate(cert_token, hub_root)
                revoked = [Revocation.from_json(item) for item in claimed.get("revoked", [])]
                _check_signer(cert, revoked, now)
            except (TrustError, ValueError) as exc:
                raise UntrustedSignerError(f"the list's signing key {kid}: {exc}") from exc
            key = cert.public_key()
            assert isinstance(key, Ed25519PublicKey)  # use "sig" guarantees Ed25519
            return key
    raise UntrustedSignerError(
        f"the list is signed by key {kid}, which has no certificate from the pinned hub root"
    )


def _check_signer(cert: KeyCertificate, revoked: list[Revocation], now: datetime) -> None:
    if cert.country != HUB or cert.use != "sig":
        raise BadCertificateError(f"key is a {cert.country} {cert.use!r} key, not a hub signer")
    for item in revoked:
        if item.kid == cert.kid and item.revoked_at <= utc(now):
            raise RevokedKeyError(f"revoked at {format_time(item.revoked_at)}")
    cert.check_valid_at(now)


def _trust_list(payload: Mapping[str, Any], token: str, hub_root: Mapping[str, str]) -> TrustList:
    if set(payload) != _LIST_FIELDS or payload["v"] != 1:
        raise ValueError(f"fields {sorted(payload)} are not version 1's")
    serial = payload["serial"]
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise ValueError(f"serial {serial!r} is not a non-negative integer")
    roots = {str(country): dict(jwk) for country, jwk in payload["roots"].items()}
    for country, jwk in roots.items():
        if not isinstance(public_key_from_jwk(jwk), Ed25519PublicKey):
            raise ValueError(f"the root of {country} is not an Ed25519 key")
    if roots.get(HUB) != dict(hub_root):
        raise ValueError("its hub root differs from the pinned one")
    certificates = tuple(str(item) for item in payload["certificates"])
    kids = [str(peek(item)[1].get("kid")) for item in certificates]
    if len(set(kids)) != len(kids):
        raise ValueError("a key id is certified twice")
    revoked = {item.kid: item for item in map(Revocation.from_json, payload["revoked"])}
    issued_at, next_update = parse_time(payload["issued_at"]), parse_time(payload["next_update"])
    if next_update <= issued_at:
        raise ValueError("next_update is not later than issued_at")
    return TrustList(serial, issued_at, next_update, roots, certificates, revoked, token)
