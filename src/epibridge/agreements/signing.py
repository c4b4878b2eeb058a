"""Both parties' signatures on an agreement, and the check that data may flow under it.

A signature file sits beside the agreement, ``<agreement file>.sig.json``::

    {"agreement_id": ..., "version": ..., "sha256": <agreement hash>,
     "signatures": [{"country": "KHM", "kid": ..., "signed_at": "2026-01-05T08:00:00Z",
                     "jws": <compact JWS>}, ...]}

Each JWS (Ed25519, ``typ`` ``epibridge-agreement-sig+jws``) signs the RFC 8785 JSON
``{"agreement_id", "version", "sha256", "signer_country", "signed_at"}``. What is signed
is the agreement's hash, so reformatting the TOML keeps the signatures and any change of
meaning breaks them. An agreement lasts years but signing keys 90 days, so a signature
is checked against the key as it stood at ``signed_at``, not at the time of the check.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from epibridge.model.agreement import Agreement
from epibridge.model.errors import ReasonedError
from epibridge.transport.keys import (
    TrustError,
    format_time,
    parse_time,
    peek,
    sign_compact,
    utc,
    verify_compact,
)
from epibridge.transport.keystore import SigningKey
from epibridge.transport.trust import HUB, TrustList

SIGNATURE_TYPE = "epibridge-agreement-sig+jws"
SUFFIX = ".sig.json"
_FILE_FIELDS = frozenset({"agreement_id", "version", "sha256", "signatures"})
_ENTRY_FIELDS = frozenset({"country", "kid", "signed_at", "jws"})
_PAYLOAD_FIELDS = frozenset({"agreement_id", "version", "sha256", "signer_country", "signed_at"})


class AgreementRefused(ReasonedError):  # noqa: N818 (a refusal, not a failure)
    """No data may flow under this agreement (or it cannot be signed). ``reason`` is a
    stable code for machines: the hub writes it into its receipt."""


@dataclass(frozen=True)
class AgreementSignature:
    """One party's signature; ``jws`` is what proves it, the rest says which key to check."""

    country: str
    kid: str
    signed_at: datetime
    jws: str

    def as_json(self) -> dict[str, str]:
        return {
            "country": self.country,
            "kid": self.kid,
            "signed_at": format_time(self.signed_at),
            "jws": self.jws,
        }


@dataclass(frozen=True)
class SignatureFile:
    """The signatures on one agreement version, at most one per party, sorted by country."""

    agreement_id: str
    version: str
    sha256: str
    signatures: tuple[AgreementSignature, ...]

    def by_country(self) -> dict[str, AgreementSignature]:
        return {item.country: item for item in self.signatures}

    def as_json(self) -> dict[str, Any]:
        return {
            "agreement_id": self.agreement_id,
            "version": self.version,
            "sha256": self.sha256,
            "signatures": [item.as_json() for item in self.signatures],
        }


def signatures_path(agreement_path: str | Path) -> Path:
    """Where the signatures of the agreement at ``agreement_path`` are kept."""
    path = Path(agreement_path)
    return path.with_name(path.name + SUFFIX)


def parties(agreement: Agreement) -> tuple[str, str]:
    """The codes that must sign: the sender, and ``HUB`` or the partner country."""
    recipient = HUB if agreement.recipient == "hub" else agreement.recipient
    return agreement.sender, recipient


def sign_agreement(
    agreement: Agreement,
    signing_key: SigningKey,
    country: str,
    at: datetime,
    existing: SignatureFile | None = None,
) -> SignatureFile:
    """``existing`` (or a new file) with ``country``'s signature added or replaced.

    Refuses a country that is not a party (``not_a_party``), a key certified for another
    country (``country_mismatch``), a key not valid at ``at`` (its trust reason), and
    ``existing`` signatures on another text of the agreement (``hash_mismatch``).
    """
    name = _name(agreement)
    if country not in parties(agreement):
        raise AgreementRefused(
            "not_a_party",
            f"{country} is not a party to {name} (parties: {', '.join(parties(agreement))}); "
            "only the sender and the recipient sign",
        )
    cert = signing_key.certificate
    if cert.country != country or cert.use != "sig":
        raise AgreementRefused(
            "country_mismatch",
            f"the key {cert.kid} is a {cert.country} {cert.use!r} key, not a {country} signing "
            "key; sign with the key store of the party that signs",
        )
    try:
        cert.check_valid_at(at)
    except TrustError as exc:
        raise AgreementRefused(exc.reason, exc.message) from exc
    if existing is not None and (
        (existing.agreement_id, existing.version, existing.sha256)
        != (agreement.id, agreement.version, agreement.sha256)
    ):
        raise AgreementRefused(
            "hash_mismatch",
            f"the existing signatures are on {existing.agreement_id} version "
            f"{existing.version} with hash {existing.sha256[:12]}..., not on {name} with hash "
            f"{agreement.sha256[:12]}...; the text changed: have every party sign it anew "
            "(delete the old signature file)",
        )
    signed_at = utc(at)
    payload = {
        "agreement_id": agreement.id,
        "version": agreement.version,
        "sha256": agreement.sha256,
        "signer_country": country,
        "signed_at": format_time(signed_at),
    }
    token = sign_compact(payload, signing_key.private_key, cert.kid, SIGNATURE_TYPE)
    mine = AgreementSignature(country, cert.kid, signed_at, token)
    others = [] if existing is None else [s for s in existing.signatures if s.country != country]
    return SignatureFile(
        agreement.id,
        agreement.version,
        agreement.sha256,
        tuple(sorted([*others, mine], key=lambda s: s.country)),
    )


def verify_agreement(
    agreement: Agreement,
    sf: SignatureFile,
    trust: TrustList,
    at: datetime,
    stopped: bool = False,
) -> None:
    """Return only if data may flow under ``agreement`` at ``at``; else ``AgreementRefused``.

    In order: ``stopped``; ``not_yet_valid`` / ``expired`` (the agreement's dates, UTC);
    ``hash_mismatch`` (the file is for another text); then each signature present:
    ``not_a_party``, ``future_signature`` (dated after ``at``), the trust list's reason for
    the key at ``signed_at`` (``unknown_key``, ``country_mismatch``, ``revoked_key``,
    ``expired_key`` ...), ``bad_signature``, ``hash_mismatch`` (signed another text);
    finally ``unsigned`` when a party has not signed.
    """
    name = _name(agreement)
    if stopped:
        raise AgreementRefused(
            "stopped",
            f"{name} was stopped; no data flows under it until a new version is agreed",
        )
    today = utc(at).date()
    if today < agreement.valid_from:
        raise AgreementRefused(
            "not_yet_valid",
            f"{name} is valid from {agreement.valid_from}; today (UTC) is {today}",
        )
    if today > agreement.valid_to:
        raise AgreementRefused(
            "expired",
            f"{name} expired on {agreement.valid_to}; the parties must agree and sign a new "
            "version with a later valid_to",
        )
    if (sf.agreement_id, sf.version, sf.sha256) != (
        agreement.id,
        agreement.version,
        agreement.sha256,
    ):
        raise AgreementRefused(
            "hash_mismatch",
            f"the signatures are on {sf.agreement_id} version {sf.version} with hash "
            f"{sf.sha256[:12]}..., but {name} now has hash {agreement.sha256[:12]}...; its "
            "meaning changed after signing: restore the signed text or have both parties "
            "sign the new one",
        )
    required = parties(agreement)
    for item in sf.signatures:
        _verify_one(agreement, item, trust, at, required)
    missing = [country for country in required if country not in sf.by_country()]
    if missing:
        raise AgreementRefused(
            "unsigned",
            f"{name} is not signed by {' and '.join(missing)}; both parties "
            f"({' and '.join(required)}) must sign it before data flows under it",
        )


def _verify_one(
    agreement: Agreement,
    item: AgreementSignature,
    trust: TrustList,
    at: datetime,
    required: tuple[str, str],
) -> None:
    who = f"the {item.country} signature on {_name(agreement)}"
    if item.country not in required:
        raise AgreementRefused(
            "not_a_party",
            f"{who}: {item.country} is not a party (parties: {', '.join(required)}); "
            "remove that signature",
        )
    if item.signed_at > utc(at):
        raise AgreementRefused(
            "future_signature",
            f"{who} is dated {format_time(item.signed_at)}, after the time checked "
            f"({format_time(at)}); check the signer's clock and sign again",
        )
    try:
        key = trust.resolve(item.country, item.kid, "sig", item.signed_at)
    except TrustError as exc:
        raise AgreementRefused(exc.reason, f"{who}: {exc.message}") from exc
    assert isinstance(key, Ed25519PublicKey)  # use "sig" guarantees Ed25519
    try:
        header, _ = peek(item.jws)
        if header.get("kid") != item.kid:
            raise ValueError(f"the token names key {header.get('kid')!r}, not {item.kid}")
        payload = verify_compact(item.jws, key, SIGNATURE_TYPE)
        if set(payload) != _PAYLOAD_FIELDS:
            raise ValueError(f"signed fields {sorted(payload)} are not {sorted(_PAYLOAD_FIELDS)}")
        if payload["signer_country"] != item.country:
            raise ValueError(f"it was signed as {payload['signer_country']!r}")
        if payload["signed_at"] != format_time(item.signed_at):
            raise ValueError(f"it was signed at {payload['signed_at']!r}, not as the file says")
    except ValueError as exc:
        raise AgreementRefused(
            "bad_signature",
            f"{who} does not verify with key {item.kid}: {exc}; ask {item.country} to sign again",
        ) from exc
    signed = (payload["agreement_id"], payload["version"], payload["sha256"])
    if signed != (agreement.id, agreement.version, agreement.sha256):
        raise AgreementRefused(
            "hash_mismatch",
            f"{who} is on {signed[0]} version {signed[1]} with hash {str(signed[2])[:12]}..., "
            f"not on the current text (hash {agreement.sha256[:12]}...); have "
            f"{item.country} sign the current text",
        )


def load_signatures(path: str | Path) -> SignatureFile:
    """Read a signature file. Missing: ``unsigned``; malformed: ``bad_signature_file``.

    Only the form is checked here; ``verify_agreement`` checks what the signatures prove.
    """
    path = Path(path)
    if not path.is_file():
        raise AgreementRefused(
            "unsigned",
            f"{path}: no signature file; each party signs the agreement with "
            "'epibridge agreements sign FILE' and the file is kept beside it",
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return _signature_file(doc)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise AgreementRefused(
            "bad_signature_file",
            f"{path}: not a valid signature file ({exc}); fetch it again from the other party",
        ) from exc


def save_signatures(path: str | Path, sf: SignatureFile) -> None:
    """Write ``sf`` to ``path``; replaces any older file only once the new one is complete."""
    path = Path(path)
    data = json.dumps(sf.as_json(), indent=2, sort_keys=True) + "\n"
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        with temp.open("x", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _signature_file(doc: Any) -> SignatureFile:
    if not isinstance(doc, dict) or set(doc) != _FILE_FIELDS:
        raise ValueError(f"fields must be {sorted(_FILE_FIELDS)}")
    if not isinstance(doc["signatures"], list):
        raise ValueError("'signatures' must be a list")
    entries = []
    for entry in doc["signatures"]:
        if not isinstance(entry, dict) or set(entry) != _ENTRY_FIELDS:
            raise ValueError(f"each signature must have exactly {sorted(_ENTRY_FIELDS)}")
        entries.append(
            AgreementSignature(
                country=_text(entry, "country"),
                kid=_text(entry, "kid"),
                signed_at=parse_time(entry["signed_at"]),
                jws=_text(entry, "jws"),
            )
        )
    countries = [item.country for item in entries]
    if len(set(countries)) != len(countries):
        raise ValueError("a party signs at most once")
    return SignatureFile(
        agreement_id=_text(doc, "agreement_id"),
        version=_text(doc, "version"),
        sha256=_text(doc, "sha256"),
        signatures=tuple(sorted(entries, key=lambda s: s.country)),
    )


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key!r} must be non-empty text")
    return value


def _name(agreement: Agreement) -> str:
    return f"agreement {agreement.id} version {agreement.version}"


__all__ = [
    "SIGNATURE_TYPE",
    "AgreementRefused",
    "AgreementSignature",
    "SignatureFile",
    "load_signatures",
    "parties",
    "save_signatures",
    "sign_agreement",
    "signatures_path",
    "verify_agreement",
]
