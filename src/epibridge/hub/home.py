"""The hub's home folder: its configuration, enrolled parties, agreements and trust list.

Layout (created by ``epibridge hub init``)::

    hub.toml               database URL and trust-list lifetime
    keys/                  the hub's key store (country HUB; transport/keystore.py)
    parties/<ISO3>.json    each enrolled country's public key bundle (transport/bundle.py)
    agreements/<id>.toml   the agreements in force, each beside <id>.toml.signatures.json
    agreements/stops.json  agreements the hub has stopped
    trust-list.jws         the current signed trust list (served at GET /v1/trust-list)
    spool/                 sealed submissions as received, and uploads in progress
    hub.sqlite             the default database (SQLite); PostgreSQL through hub.toml

Everything here but ``keys/`` is public or integrity-protected by signatures, so the
folder can be backed up and inspected; the key store is encrypted under the passphrase.
Times are passed in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from epibridge.agreements import load_agreement
from epibridge.agreements.signing import (
    SignatureFile,
    load_signatures,
    signatures_path,
    verify_agreement,
)
from epibridge.hub.intake import HubContext
from epibridge.hub.store import HubStore
from epibridge.model.agreement import Agreement
from epibridge.model.errors import EpibridgeError
from epibridge.transport.bundle import KeyBundle, bundle_of, read_bundle, write_bundle
from epibridge.transport.keys import format_time, thumbprint, utc
from epibridge.transport.keystore import KeyStore
from epibridge.transport.trust import HUB, TrustList, issue_trust_list, verify_trust_list

CONFIG = "hub.toml"
TRUST_LIST = "trust-list.jws"
DEFAULT_TRUST_LIST_DAYS = 7
_STOPS = "stops.json"


class HubHomeError(EpibridgeError):
    """The hub's folder is missing, damaged, or asked to do something it cannot."""


@dataclass(frozen=True)
class HubConfig:
    database: str
    trust_list_days: int = DEFAULT_TRUST_LIST_DAYS


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


class HubHome:
    """A hub's folder. ``HubHome.init`` creates one; ``HubHome(folder)`` opens it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        path = folder / CONFIG
        if not path.exists():
            raise HubHomeError(
                f"{folder}: no hub here ({CONFIG} is missing)\n"
                "  what to do: create it with 'epibridge hub init --home FOLDER'"
            )
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
            section = doc["hub"]
            self.config = HubConfig(
                database=str(section["database"]),
                trust_list_days=int(section.get("trust_list_days", DEFAULT_TRUST_LIST_DAYS)),
            )
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise HubHomeError(
                f"{path}: cannot be read ({exc})\n"
                '  what to do: it needs a [hub] table with database = "<SQLAlchemy URL>"'
            ) from None
        if self.config.trust_list_days < 1:
            raise HubHomeError(f"{path}: [hub] trust_list_days must be 1 or more")

    @classmethod
    def init(
        cls,
        folder: Path,
        passphrase: str,
        now: datetime,
        database: str | None = None,
        trust_list_days: int = DEFAULT_TRUST_LIST_DAYS,
    ) -> HubHome:
        """Create the folder, the hub's keys, the database schema and a first trust list."""
        if (folder / CONFIG).exists():
            raise HubHomeError(f"{folder}: a hub already lives here ({CONFIG} exists)")
        folder.mkdir(parents=True, exist_ok=True)
        url = database or f"sqlite:///{(folder / 'hub.sqlite').resolve()}"
        HubStore.open(url).close()  # creates or upgrades the schema; fails early if unreachable
        store = KeyStore.init(folder, HUB, passphrase, now)
        for sub in ("parties", "agreements", "spool"):
            (folder / sub).mkdir(exist_ok=True)
        _atomic_write(
            folder / CONFIG,
            "# epibridge hub settings (docs/hub.md)\n[hub]\n"
            f"database = {_toml_string(url)}\ntrust_list_days = {trust_list_days}\n",
        )
        home = cls(folder)
        home.publish_trust_list(store, now)
        return home

    # -- keys and trust -------------------------------------------------------------------

    def keys(self, passphrase: str) -> KeyStore:
        return KeyStore.open(self.folder, passphrase)

    def parties(self) -> dict[str, KeyBundle]:
        """Every enrolled country's bundle, by country code."""
        found = {}
        for path in sorted((self.folder / "parties").glob("*.json")):
            bundle = read_bundle(path)
            found[bundle.country] = bundle
        return found

    def enrol(self, bundle: KeyBundle, store: KeyStore, now: datetime) -> KeyBundle:
        """Add or update a country's keys and publish a new trust list.

        The first bundle of a country pins its root; later bundles must carry the same
        root and add certificates (rotation) or revocations. A root cannot be replaced
        here: that is a new enrolment, decided out of band (``unenrol`` first).
        """
        return self.enrol_all([bundle], store, now)[0]

    def enrol_all(
        self, bundles: list[KeyBundle], store: KeyStore, now: datetime
    ) -> list[KeyBundle]:
        """``enrol`` for several countries, with one new trust list at the end."""
        merged = []
        for bundle in bundles:
            if bundle.country == HUB:
                raise HubHomeError("the hub's own keys are not enrolled: they are in its key store")
            path = self.folder / "parties" / f"{bundle.country}.json"
            known = read_bundle(path) if path.exists() else None
            merged.append(bundle if known is None else known.merged(bundle))
            write_bundle(merged[-1], path)
        self.publish_trust_list(store, now)
        return merged

    def publish_trust_list(self, store: KeyStore, now: datetime) -> TrustList:
        """Sign and write a trust list of every enrolled party and the hub's own keys."""
        previous = self._current_token()
        serial = 1 if previous is None else self._serial(previous) + 1
        own = bundle_of(store)
        parties = {**self.parties(), HUB: own}
        signer = store.signing_key(now)
        token = issue_trust_list(
            signer.private_key,
            signer.certificate,
            serial,
            now,
            utc(now) + timedelta(days=self.config.trust_list_days),
            roots={country: dict(b.root) for country, b in parties.items()},
            certificates=[c.token for b in parties.values() for c in b.certificates],
            revoked=[r for b in parties.values() for r in b.revoked],
        )
        _atomic_write(self.folder / TRUST_LIST, token + "\n")
        trust = verify_trust_list(token, own.root, now)
        self._log(
            "trust_list",
            str(trust.serial),
            {
                "serial": trust.serial,
                "issued_at": format_time(trust.issued_at),
                "next_update": format_time(trust.next_update),
                "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
                "roots": {c: thumbprint(jwk) for c, jwk in sorted(trust.roots.items())},
                "revoked": sorted(trust.revoked),
            },
            now,
        )
        return trust

    def _log(self, kind: str, subject: str, entry: dict[str, Any], now: datetime) -> None:
        """Add a leaf to the transparency log (``hub/log.py``)."""
        from epibridge.hub.log import append

        with self.open_store() as store, store.engine.begin() as connection:
            append(connection, kind, subject, entry, now)

    def trust(self, store: KeyStore, now: datetime) -> TrustList:
        """The current trust list; a fresh one is published once half its life has passed."""
        token = self._current_token()
        if token is not None:
            trust = verify_trust_list(token, store.root_jwk, now)
            if now < trust.issued_at + (trust.next_update - trust.issued_at) / 2:
                return trust
        return self.publish_trust_list(store, now)

    def _current_token(self) -> str | None:
        path = self.folder / TRUST_LIST
        return path.read_text(encoding="utf-8").strip() if path.exists() else None

    @staticmethod
    def _serial(token: str) -> int:
        from epibridge.transport.keys import peek

        return int(peek(token)[1]["serial"])

    # -- agreements -----------------------------------------------------------------------

    def add_agreement(self, path: Path, store: KeyStore, now: datetime) -> Agreement:
        """Register an agreement signed by both parties (its signature file beside it).

        Refused unless both signatures verify against the current trust list; a newer
        version of an agreement id replaces the older one for intake.
        """
        agreement = load_agreement(path)
        if agreement.recipient != "hub":
            raise HubHomeError(
                f"{path}: agreement {agreement.id} is between {agreement.sender} and "
                f"{agreement.recipient}; the hub receives data only under agreements whose "
                'recipient is "hub"'
            )
        signatures = load_signatures(signatures_path(path))
        trust = self.trust(store, now)
        verify_agreement(agreement, signatures, trust, now, stopped=self._stopped(agreement))
        folder = self.folder / "agreements"
        target = folder / f"{agreement.id}.toml"
        shutil.copyfile(path, target.with_name(target.name + ".partial"))
        shutil.copyfile(signatures_path(path), signatures_path(target).with_name("sig.partial"))
        os.replace(signatures_path(target).with_name("sig.partial"), signatures_path(target))
        os.replace(target.with_name(target.name + ".partial"), target)
        self._log(
            "agreement",
            f"{agreement.id}@{agreement.version}#{agreement.sha256[:16]}",
            {
                "agreement_id": agreement.id,
                "version": agreement.version,
                "sha256": agreement.sha256,
                "sender": agreement.sender,
                "recipient": agreement.recipient,
                "valid_from": agreement.valid_from.isoformat(),
                "valid_to": agreement.valid_to.isoformat(),
                "signed_by": [
                    {"country": x.country, "kid": x.kid, "signed_at": format_time(x.signed_at)}
                    for x in signatures.signatures
                ],
            },
            now,
        )
        return agreement

    def agreements(self) -> dict[str, tuple[Agreement, SignatureFile]]:
        found = {}
        for path in sorted((self.folder / "agreements").glob("*.toml")):
            agreement = load_agreement(path)
            found[agreement.id] = (agreement, load_signatures(signatures_path(path)))
        return found

    def stop_agreement(self, agreement_id: str, reason: str, now: datetime) -> None:
        """Stop intake under every version of ``agreement_id`` from now on (kept forever)."""
        if agreement_id not in self.agreements():
            raise HubHomeError(f"the hub holds no agreement {agreement_id!r}")
        stops = self.stops()
        if agreement_id in stops:
            return
        stops[agreement_id] = {"reason": reason, "stopped_at": format_time(now)}
        _atomic_write(self.folder / "agreements" / _STOPS, json.dumps(stops, indent=2) + "\n")
        self._log(
            "agreement_stop",
            agreement_id,
            {"agreement_id": agreement_id, **stops[agreement_id]},
            now,
        )

    def stops(self) -> dict[str, Any]:
        path = self.folder / "agreements" / _STOPS
        if not path.exists():
            return {}
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded

    def _stopped(self, agreement: Agreement) -> bool:
        return agreement.id in self.stops()

    # -- what intake needs ----------------------------------------------------------------

    def context(self, store: KeyStore, now: datetime, hub_store: HubStore) -> HubContext:
        """Everything intake checks against, as of ``now``."""
        stops = self.stops()
        return HubContext(
            store=hub_store,
            trust=self.trust(store, now),
            encryption_keys=store.encryption_keys(now),
            signing_key=store.signing_key(now),
            agreements=self.agreements(),
            spool=self.folder / "spool",
            is_stopped=_stopped_lookup(stops),
            folder=self.folder,
        )

    def open_store(self) -> HubStore:
        return HubStore.open(self.config.database)


def _stopped_lookup(stops: Mapping[str, Any]) -> Callable[[str, str], bool]:
    def is_stopped(agreement_id: str, version: str) -> bool:
        return agreement_id in stops

    return is_stopped
