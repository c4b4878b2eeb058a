"""A party's public key bundle: what a node sends the hub so that the hub can vouch for it.

``epibridge keys export`` writes it; ``epibridge hub enrol`` reads it. It holds only
public facts: the country, its root public key, every certificate the root issued and
every revocation. Nothing in it is secret, but nothing in it is trusted either until the
hub has checked that every certificate verifies under the root and names the country, and
(for a country already enrolled) that the root is the one pinned at first enrolment: the
root is compared out of band (its kid, read over the phone or in a signed letter), once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epibridge.model.errors import EpibridgeError
from epibridge.transport.keys import (
    KeyCertificate,
    TrustError,
    public_key_from_jwk,
    thumbprint,
    verify_certificate,
)
from epibridge.transport.keystore import KeyStore
from epibridge.transport.trust import Revocation

BUNDLE_VERSION = 1
_FIELDS = frozenset({"v", "type", "country", "root", "certificates", "revoked"})
_TYPE = "epibridge-key-bundle"


class BundleError(EpibridgeError):
    """A key bundle that cannot be used: names the file and what is wrong with it."""


@dataclass(frozen=True)
class KeyBundle:
    """A checked bundle: every certificate verifies under ``root`` for ``country``."""

    country: str
    root: Mapping[str, str]
    certificates: tuple[KeyCertificate, ...]
    revoked: tuple[Revocation, ...]

    @property
    def root_kid(self) -> str:
        return thumbprint(self.root)

    def as_json(self) -> dict[str, Any]:
        return {
            "v": BUNDLE_VERSION,
            "type": _TYPE,
            "country": self.country,
            "root": dict(self.root),
            "certificates": [c.token for c in self.certificates],
            "revoked": [r.as_json() for r in self.revoked],
        }

    def merged(self, newer: KeyBundle) -> KeyBundle:
        """This bundle with the certificates and revocations of ``newer`` added (same root)."""
        if newer.country != self.country or newer.root_kid != self.root_kid:
            raise BundleError(
                f"the bundle for {newer.country} has root {newer.root_kid}, but {self.country} "
                f"was enrolled with root {self.root_kid}"
            )
        certs = {c.kid: c for c in self.certificates}
        certs.update({c.kid: c for c in newer.certificates})
        revoked = {r.kid: r for r in self.revoked}
        for r in newer.revoked:
            revoked.setdefault(r.kid, r)  # a revocation is never undone or moved later
        return KeyBundle(
            self.country,
            self.root,
            tuple(sorted(certs.values(), key=lambda c: (c.not_before, c.kid))),
            tuple(sorted(revoked.values(), key=lambda r: (r.revoked_at, r.kid))),
        )


def bundle_of(store: KeyStore) -> KeyBundle:
    """The public bundle of an open key store."""
    return KeyBundle(store.country, store.root_jwk, store.certificates(), store.revocations())


def write_bundle(bundle: KeyBundle, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(bundle.as_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_bundle(path: Path) -> KeyBundle:
    """Read and check a bundle file; every problem names the file and what to do."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: no such key bundle") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(
            f"{path}: not a key bundle (not JSON: {exc})\n"
            "  what to do: send the file 'epibridge keys export' wrote, unchanged"
        ) from None
    try:
        return parse_bundle(doc)
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from None


def parse_bundle(doc: Any) -> KeyBundle:
    if not isinstance(doc, dict) or doc.get("type") != _TYPE:
        raise BundleError("not an epibridge key bundle (its 'type' is missing or different)")
    if doc.get("v") != BUNDLE_VERSION or set(doc) != _FIELDS:
        raise BundleError(
            f"bundle version {doc.get('v')!r} with fields {sorted(doc)} is not version "
            f"{BUNDLE_VERSION}'s; export it again with this version of epibridge"
        )
    country = str(doc["country"])
    root = doc["root"]
    try:
        public_key_from_jwk(root)
        certs = tuple(verify_certificate(str(t), root) for t in doc["certificates"])
        revoked = tuple(Revocation.from_json(r) for r in doc["revoked"])
    except (TrustError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"the bundle of {country} does not verify: {exc}") from None
    for cert in certs:
        if cert.country != country:
            raise BundleError(f"certificate {cert.kid} is for {cert.country}, not {country}")
    kids = {c.kid for c in certs}
    for r in revoked:
        if r.kid not in kids:
            raise BundleError(f"revocation of {r.kid}: no certificate with that kid in the bundle")
    if not certs:
        raise BundleError(f"the bundle of {country} holds no certificate")
    return KeyBundle(country, {str(k): str(v) for k, v in root.items()}, certs, revoked)


def exported_bundle(home: Path) -> KeyBundle:
    """The public bundle of the key store in ``home``, read without the passphrase (it
    holds no secret) and checked like any bundle."""
    path = home / "keys" / "store.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        doc = {
            "v": BUNDLE_VERSION,
            "type": _TYPE,
            "country": state["country"],
            "root": state["root"],
            "certificates": state["certificates"],
            "revoked": state["revoked"],
        }
    except FileNotFoundError:
        raise BundleError(
            f"{home / 'keys'}: no key store here; create one with 'keys init'"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: the key store is damaged ({exc})") from None
    try:
        return parse_bundle(doc)
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from None
