"""A party's own keys on disk, encrypted at rest under a passphrase that is never stored.

Layout of ``<home>/keys/`` (folder 0700, every file 0600)::

    store.json      public state: country, root public key, KDF salt, certificates, revocations
    root.pem        the root private key; may live on offline media between rotations
    <kid>.pem       one per signing or encryption key

Private keys are PKCS#8 PEM under ``BestAvailableEncryption``. Its PBKDF2 runs only
2,048 rounds (cryptography 50), so the passphrase is first stretched with scrypt
(OWASP's N=2^15, r=8, p=3) and the result is the PEM password: a guess costs an
attacker scrypt, not 2,048 hashes. Only that derived key stays in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from epibridge.model.errors import EpibridgeError
from epibridge.transport.keys import (
    DEFAULT_VALIDITY,
    BadCertificateError,
    KeyCertificate,
    Use,
    format_time,
    issue_certificate,
    public_jwk,
    utc,
    verify_certificate,
)
from epibridge.transport.trust import REVOCATION_REASONS, Revocation

MIN_PASSPHRASE = 12
_SCRYPT = {"n": 2**15, "r": 8, "p": 3}
_STORE = "store.json"
_ROOT = "root.pem"


class KeyStoreError(EpibridgeError):
    """The key store is missing, damaged, unprotected, or cannot do what was asked."""


class WrongPassphraseError(KeyStoreError):
    """The passphrase does not decrypt the key store."""


class RootKeyOfflineError(KeyStoreError):
    """The root key file is not in the key folder (kept offline), so nothing can be certified."""


class _Secret:
    """Holds the derived key; shows nothing when printed and refuses to be pickled."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("key store secrets cannot be pickled")


@dataclass(frozen=True, repr=False)
class SigningKey:
    """A certified Ed25519 private key, ready to sign. Printing it shows only public facts."""

    certificate: KeyCertificate
    private_key: Ed25519PrivateKey

    @property
    def kid(self) -> str:
        return self.certificate.kid

    def __repr__(self) -> str:
        cert = self.certificate
        return f"SigningKey({cert.country}, kid={cert.kid}, until={format_time(cert.not_after)})"


@dataclass(frozen=True, repr=False)
class EncryptionKey:
    """A certified X25519 private key, to open what was sealed to ``kid``."""

    certificate: KeyCertificate
    private_key: X25519PrivateKey

    @property
    def kid(self) -> str:
        return self.certificate.kid

    def __repr__(self) -> str:
        cert = self.certificate
        return f"EncryptionKey({cert.country}, kid={cert.kid}, until={format_time(cert.not_after)})"


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    use: Use
    not_before: datetime
    not_after: datetime
    revoked: Revocation | None


@dataclass(frozen=True)
class KeyStoreInfo:
    """Everything ``show()`` reveals: public facts only."""

    country: str
    root_kid: str
    keys: tuple[KeyInfo, ...]


class KeyStore:
    """Open with ``KeyStore.init`` (first time) or ``KeyStore.open``; times are passed in."""

    def __init__(self, folder: Path, state: dict[str, Any], secret: _Secret) -> None:
        self.folder = folder
        self._state = state
        self._secret = secret
        root = state["root"]
        self._certificates = tuple(verify_certificate(t, root) for t in state["certificates"])
        self._revoked = {r.kid: r for r in map(Revocation.from_json, state["revoked"])}

    @classmethod
    def init(
        cls,
        home: Path,
        country: str,
        passphrase: str,
        now: datetime,
        validity: timedelta = DEFAULT_VALIDITY,
    ) -> KeyStore:
        """Create ``home/keys`` with a root key and a first signing and encryption key."""
        folder = home / "keys"
        if (folder / _STORE).exists():
            raise KeyStoreError(f"{folder}: a key store already exists; open it or rotate keys")
        if not re.fullmatch(r"[A-Z]{3}", country):
            raise KeyStoreError(f"country {country!r} is not an ISO 3166 alpha-3 code or HUB")
        if len(passphrase) < MIN_PASSPHRASE:
            raise KeyStoreError(
                f"the key passphrase is shorter than {MIN_PASSPHRASE} characters; choose a "
                "longer one (a few random words) and keep it outside the node"
            )
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        salt = secrets.token_bytes(16)
        secret = _derive(passphrase, salt, _SCRYPT)
        root = Ed25519PrivateKey.generate()
        _write_private(folder / _ROOT, root, secret)
        state = {
            "v": 1,
            "country": country,
            "root": public_jwk(root.public_key()),
            "kdf": {"name": "scrypt", "salt": base64.b64encode(salt).decode(), **_SCRYPT},
            "validity_seconds": int(validity.total_seconds()),
            "certificates": [],
            "revoked": [],
        }
        store = cls(folder, state, secret)
        store.rotate("sig", now)
        store.rotate("enc", now)
        return store

    @staticmethod
    def exists(home: Path) -> bool:
        """Whether ``home`` holds a key store (without opening it: no passphrase needed)."""
        return (home / "keys" / _STORE).exists()

    @staticmethod
    def require(home: Path) -> None:
        """Raise the error :meth:`open` gives when ``home`` holds no key store."""
        if not KeyStore.exists(home):
            raise KeyStoreError(f"{home / 'keys'}: no key store here; create one with 'keys init'")

    @classmethod
    def open(cls, home: Path, passphrase: str) -> KeyStore:
        """Open an existing store; refuses a wrong passphrase or files others can read."""
        KeyStore.require(home)
        folder = home / "keys"
        path = folder / _STORE
        for item in [folder, *folder.iterdir()]:
            mode = stat.S_IMODE(item.stat().st_mode)
            if mode & 0o077:
                raise KeyStoreError(
                    f"{item}: other users can access it (mode {mode:o}); run "
                    f"'chmod {'700' if item.is_dir() else '600'} {item}' and consider the "
                    "keys exposed: rotate them"
                )
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            kdf = state["kdf"]
            params = {name: int(kdf[name]) for name in ("n", "r", "p")}
            secret = _derive(passphrase, base64.b64decode(kdf["salt"]), params)
            store = cls(folder, state, secret)
        except (ValueError, KeyError, TypeError, BadCertificateError) as exc:
            raise KeyStoreError(f"{path}: the key store is damaged ({exc})") from exc
        newest = max(store._certificates, key=lambda c: c.not_before)
        store._load_private(newest.kid)  # fails now, not later, on a wrong passphrase
        return store

    def reloaded(self) -> KeyStore:
        """The same store read again from disk (after a rotation by another process); the
        passphrase-derived key is kept, so no passphrase is asked again."""
        path = self.folder / _STORE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            return KeyStore(self.folder, state, self._secret)
        except (ValueError, KeyError, TypeError, BadCertificateError) as exc:
            raise KeyStoreError(f"{path}: the key store is damaged ({exc})") from exc

    @property
    def country(self) -> str:
        return str(self._state["country"])

    @property
    def root_jwk(self) -> dict[str, str]:
        return dict(self._state["root"])

    def certificates(self) -> tuple[KeyCertificate, ...]:
        """Every certificate ever issued here (send them to the hub)."""
        return self._certificates

    def revocations(self) -> tuple[Revocation, ...]:
        """Every revocation recorded here (send them to the hub)."""
        return tuple(self._revoked.values())

    def rotate(self, use: Use, now: datetime, validity: timedelta | None = None) -> KeyCertificate:
        """Add a new ``use`` key valid from ``now``; older keys stay valid until they expire."""
        root_path = self.folder / _ROOT
        if not root_path.exists():
            raise RootKeyOfflineError(
                f"{root_path} is not here: copy the root key back from its offline media, "
                "run the command again, then move it away"
            )
        root = self._read_private(root_path)
        assert isinstance(root, Ed25519PrivateKey)
        key: Ed25519PrivateKey | X25519PrivateKey = (
            Ed25519PrivateKey.generate() if use == "sig" else X25519PrivateKey.generate()
        )
        span = validity or timedelta(seconds=int(self._state["validity_seconds"]))
        cert = issue_certificate(root, self.country, key.public_key(), now, utc(now) + span)
        _write_private(self.folder / f"{cert.kid}.pem", key, self._secret)
        self._certificates = (*self._certificates, cert)
        self._save()
        return cert

    def revoke(self, kid: str, reason: str, now: datetime) -> Revocation:
        """Refuse ``kid`` from ``now`` on (pass an earlier time after a compromise)."""
        if kid not in {cert.kid for cert in self._certificates}:
            raise KeyStoreError(f"key {kid} is not in this key store; see 'keys show'")
        if reason not in REVOCATION_REASONS:
            raise KeyStoreError(
                f"revocation reason {reason!r} is not one of {sorted(REVOCATION_REASONS)}"
            )
        if kid in self._revoked:
            raise KeyStoreError(f"key {kid} was already revoked")
        revocation = Revocation(kid, utc(now), reason)
        self._revoked[kid] = revocation
        self._save()
        return revocation

    def show(self) -> KeyStoreInfo:
        keys = tuple(
            KeyInfo(c.kid, c.use, c.not_before, c.not_after, self._revoked.get(c.kid))
            for c in self._certificates
        )
        root_kid = self._certificates[0].root_kid
        return KeyStoreInfo(self.country, root_kid, keys)

    def signing_key(self, now: datetime) -> SigningKey:
        """The newest signing key valid and unrevoked at ``now``."""
        usable = self._usable("sig", now)
        if not usable:
            raise KeyStoreError(
                f"no valid signing key at {format_time(now)}: all expired or revoked; "
                "rotate the signing key (needs the root key)"
            )
        key = self._load_private(usable[0].kid)
        assert isinstance(key, Ed25519PrivateKey)
        return SigningKey(usable[0], key)

    def encryption_keys(self, now: datetime) -> tuple[EncryptionKey, ...]:
        """Every encryption key valid and unrevoked at ``now``, newest first."""
        found = []
        for cert in self._usable("enc", now):
            key = self._load_private(cert.kid)
            assert isinstance(key, X25519PrivateKey)
            found.append(EncryptionKey(cert, key))
        return tuple(found)

    def __repr__(self) -> str:
        return f"KeyStore({self.country}, {self.folder}, {len(self._certificates)} keys)"

    def _usable(self, use: Use, now: datetime) -> list[KeyCertificate]:
        at = utc(now)
        usable = [
            cert
            for cert in self._certificates
            if cert.use == use
            and cert.valid_at(at)
            and not (cert.kid in self._revoked and self._revoked[cert.kid].revoked_at <= at)
        ]
        return sorted(usable, key=lambda c: (c.not_before, c.not_after, c.kid), reverse=True)

    def _load_private(self, kid: str) -> Ed25519PrivateKey | X25519PrivateKey:
        path = self.folder / f"{kid}.pem"
        if not path.exists():
            raise KeyStoreError(f"{path}: private key file missing; restore it from backup")
        return self._read_private(path)

    def _read_private(self, path: Path) -> Ed25519PrivateKey | X25519PrivateKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), self._secret.value)
        except ValueError as exc:
            raise WrongPassphraseError(
                f"{path}: the key passphrase is wrong (or the file is damaged); check "
                "EPIBRIDGE_KEY_PASSPHRASE"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
            raise KeyStoreError(f"{path}: not an Ed25519 or X25519 key")
        return key

    def _save(self) -> None:
        self._state["certificates"] = [cert.token for cert in self._certificates]
        self._state["revoked"] = [item.as_json() for item in self._revoked.values()]
        data = json.dumps(self._state, indent=2, sort_keys=True).encode("utf-8")
        temp = self.folder / f".{_STORE}.{secrets.token_hex(4)}"
        _write_new(temp, data)
        os.replace(temp, self.folder / _STORE)


def _derive(passphrase: str, salt: bytes, params: dict[str, int]) -> _Secret:
    raw = hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, maxmem=256 * 2**20, dklen=32, **params
    )
    return _Secret(base64.b64encode(raw))


def _write_private(path: Path, key: Ed25519PrivateKey | X25519PrivateKey, secret: _Secret) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret.value),
    )
    _write_new(path, pem)


def _write_new(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner only, flushed to disk before it is used."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
