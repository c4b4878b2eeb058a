"""Key certificates and the encrypted key store."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from joserfc.jwk import OKPKey

from epibridge.model.errors import EpibridgeError
from epibridge.transport.keys import (
    CERT_TYPE,
    BadCertificateError,
    ExpiredKeyError,
    NotYetValidKeyError,
    b64url,
    b64url_decode,
    issue_certificate,
    public_jwk,
    sign_compact,
    thumbprint,
    verify_certificate,
)
from epibridge.transport.keystore import (
    KeyStore,
    KeyStoreError,
    RootKeyOfflineError,
    WrongPassphraseError,
)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
PASS = "correct horse battery staple"


def _cert(root: Ed25519PrivateKey, days: int = 90) -> tuple[str, dict[str, str]]:
    key = Ed25519PrivateKey.generate()
    cert = issue_certificate(root, "KHM", key.public_key(), T0, T0 + timedelta(days=days))
    return cert.token, public_jwk(root.public_key())


def test_thumbprint_matches_joserfc() -> None:
    key = X25519PrivateKey.generate()
    assert thumbprint(public_jwk(key.public_key())) == OKPKey.import_key(key).thumbprint()


def test_certificate_round_trip() -> None:
    root = Ed25519PrivateKey.generate()
    enc = X25519PrivateKey.generate()
    issued = issue_certificate(root, "KHM", enc.public_key(), T0, T0 + timedelta(days=90))
    cert = verify_certificate(issued.token, public_jwk(root.public_key()))
    assert cert == issued
    assert (cert.country, cert.use, cert.root_kid) == (
        "KHM",
        "enc",
        thumbprint(public_jwk(root.public_key())),
    )
    assert cert.public_key() == enc.public_key()
    assert cert.kid == OKPKey.import_key(enc).thumbprint()


def test_tampered_payload_is_rejected() -> None:
    token, root_jwk = _cert(Ed25519PrivateKey.generate())
    head, body, sig = token.split(".")
    payload = json.loads(b64url_decode(body))
    payload["not_after"] = "2099-01-01T00:00:00Z"
    forged = ".".join([head, b64url(json.dumps(payload).encode()), sig])
    with pytest.raises(BadCertificateError) as caught:
        verify_certificate(forged, root_jwk)
    assert caught.value.reason == "bad_certificate"


def test_tampered_signature_is_rejected() -> None:
    token, root_jwk = _cert(Ed25519PrivateKey.generate())
    head, body, sig = token.split(".")
    raw = bytearray(b64url_decode(sig))
    raw[0] ^= 1
    with pytest.raises(BadCertificateError):
        verify_certificate(".".join([head, body, b64url(bytes(raw))]), root_jwk)


def test_certificate_from_another_root_is_rejected() -> None:
    token, _ = _cert(Ed25519PrivateKey.generate())
    other = public_jwk(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(BadCertificateError, match="not root"):
        verify_certificate(token, other)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kid": "someone-elses-kid"}, "thumbprint"),
        ({"use": "enc"}, "must be X25519"),
        ({"v": 2}, "version 1"),
        ({"not_after": "2026-01-01T00:00:00Z"}, "not later"),
    ],
)
def test_root_signed_but_inconsistent_certificate_rejected(
    change: dict[str, object], problem: str
) -> None:
    root = Ed25519PrivateKey.generate()
    root_jwk = public_jwk(root.public_key())
    jwk = public_jwk(Ed25519PrivateKey.generate().public_key())
    payload = {
        "v": 1,
        "country": "KHM",
        "kid": thumbprint(jwk),
        "use": "sig",
        "jwk": jwk,
        "not_before": "2026-01-05T08:00:00Z",
        "not_after": "2026-04-05T08:00:00Z",
        "root_kid": thumbprint(root_jwk),
    }
    assert verify_certificate(
        sign_compact(payload, root, thumbprint(root_jwk), CERT_TYPE), root_jwk
    )
    token = sign_compact({**payload, **change}, root, thumbprint(root_jwk), CERT_TYPE)
    with pytest.raises(BadCertificateError, match=problem):
        verify_certificate(token, root_jwk)


def test_validity_window() -> None:
    root = Ed25519PrivateKey.generate()
    token, root_jwk = _cert(root, days=30)
    cert = verify_certificate(token, root_jwk)
    cert.check_valid_at(T0)
    cert.check_valid_at(T0 + timedelta(days=30) - timedelta(seconds=1))
    with pytest.raises(NotYetValidKeyError) as early:
        cert.check_valid_at(T0 - timedelta(seconds=1))
    with pytest.raises(ExpiredKeyError) as late:
        cert.check_valid_at(T0 + timedelta(days=30))
    assert (early.value.reason, late.value.reason) == ("not_yet_valid_key", "expired_key")


@pytest.fixture(scope="module")
def store_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("node")
    KeyStore.init(home, "KHM", PASS, T0, validity=timedelta(days=30))
    return home


def test_store_persists_across_reopen(tmp_path: Path) -> None:
    store = KeyStore.init(tmp_path, "KHM", PASS, T0)
    signer = store.signing_key(T0)
    (enc,) = store.encryption_keys(T0)
    new = store.rotate("sig", T0 + timedelta(days=10))
    store.revoke(enc.kid, "superseded", T0 + timedelta(days=1))
    again = KeyStore.open(tmp_path, PASS)
    assert again.show() == store.show()
    assert again.signing_key(T0).private_key.public_key() == signer.private_key.public_key()
    assert again.signing_key(T0 + timedelta(days=11)).kid == new.kid
    assert again.encryption_keys(T0 + timedelta(days=2)) == ()
    assert [r.kid for r in again.revocations()] == [enc.kid]
    root = again.root_jwk
    assert all(verify_certificate(c.token, root) == c for c in again.certificates())


def test_default_validity_is_ninety_days(tmp_path: Path) -> None:
    store = KeyStore.init(tmp_path, "HUB", PASS, T0)
    assert {k.not_after - k.not_before for k in store.show().keys} == {timedelta(days=90)}
    assert {k.use for k in store.show().keys} == {"sig", "enc"}


def test_wrong_passphrase(store_home: Path) -> None:
    with pytest.raises(WrongPassphraseError, match="passphrase is wrong") as caught:
        KeyStore.open(store_home, PASS + "x")
    assert isinstance(caught.value, EpibridgeError)


def test_short_passphrase_and_bad_country_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="shorter"):
        KeyStore.init(tmp_path, "KHM", "short", T0)
    with pytest.raises(KeyStoreError, match="alpha-3"):
        KeyStore.init(tmp_path, "kh", PASS, T0)


def test_file_modes_and_pem_encrypted(store_home: Path) -> None:
    folder = store_home / "keys"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert len(files) == 4  # store.json, root.pem, one signing and one encryption key
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    for pem in folder.glob("*.pem"):
        data = pem.read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(data, None)
        with pytest.raises(ValueError, match="password"):
            serialization.load_pem_private_key(data, PASS.encode())


def test_group_readable_store_refused(tmp_path: Path) -> None:
    KeyStore.init(tmp_path, "KHM", PASS, T0)
    (tmp_path / "keys" / "store.json").chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        KeyStore.open(tmp_path, PASS)


def test_no_secrets_in_repr_or_str(store_home: Path) -> None:
    store = KeyStore.open(store_home, PASS)
    signer = store.signing_key(T0)
    (enc,) = store.encryption_keys(T0)
    raw = [
        signer.private_key.private_bytes_raw(),
        enc.private_key.private_bytes_raw(),
        store._secret.value,
    ]
    secrets = [PASS, *(b64url(r) for r in raw), *(r.hex() for r in raw), raw[2].decode()]
    shown = " ".join(
        f(x) for x in (store, signer, enc, store.show(), store._secret) for f in (repr, str)
    )
    assert signer.kid in shown
    for secret in secrets:
        assert secret not in shown
    with pytest.raises(TypeError, match="pickled"):
        store._secret.__reduce__()


def test_root_offline_blocks_rotation_only(tmp_path: Path) -> None:
    store = KeyStore.init(tmp_path, "KHM", PASS, T0)
    root = tmp_path / "keys" / "root.pem"
    kept = root.read_bytes()
    root.unlink()
    reopened = KeyStore.open(tmp_path, PASS)
    assert reopened.signing_key(T0).kid == store.signing_key(T0).kid
    with pytest.raises(RootKeyOfflineError, match="offline media"):
        reopened.rotate("enc", T0)
    root.write_bytes(kept)
    root.chmod(0o600)
    assert reopened.rotate("enc", T0).use == "enc"


def test_expired_and_revoked_keys_are_not_served(tmp_path: Path) -> None:
    store = KeyStore.init(tmp_path, "KHM", PASS, T0, validity=timedelta(days=7))
    with pytest.raises(KeyStoreError, match="no valid signing key"):
        store.signing_key(T0 + timedelta(days=7))
    signer = store.signing_key(T0)
    store.revoke(signer.kid, "key_compromise", T0 + timedelta(days=1))
    assert store.signing_key(T0 + timedelta(hours=23)).kid == signer.kid
    with pytest.raises(KeyStoreError, match="no valid signing key"):
        store.signing_key(T0 + timedelta(days=1))
    with pytest.raises(KeyStoreError, match="already revoked"):
        store.revoke(signer.kid, "superseded", T0)
    with pytest.raises(KeyStoreError, match="not one of"):
        store.revoke(store.encryption_keys(T0)[0].kid, "bored", T0)
