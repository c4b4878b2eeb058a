"""The hub's trust list: signer chain, rollback, staleness, resolution and rotation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from epibridge.transport.keys import (
    BadCertificateError,
    CountryMismatchError,
    ExpiredKeyError,
    KeyCertificate,
    NotYetValidKeyError,
    RevokedKeyError,
    UnknownCountryError,
    UnknownKeyError,
    Use,
    WrongUseError,
    issue_certificate,
    public_jwk,
)
from epibridge.transport.trust import (
    HUB,
    BadTrustListError,
    NoCurrentKeyError,
    Revocation,
    StaleTrustListError,
    TrustList,
    TrustListRollbackError,
    UntrustedSignerError,
    issue_trust_list,
    verify_trust_list,
)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Party:
    """A country or the hub: a root and the certificates it issued."""

    country: str
    root: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    certs: list[KeyCertificate] = field(default_factory=list)

    @property
    def root_jwk(self) -> dict[str, str]:
        return public_jwk(self.root.public_key())

    def certify(
        self, key: Ed25519PrivateKey | X25519PrivateKey, start: datetime, days: int = 90
    ) -> KeyCertificate:
        cert = issue_certificate(
            self.root, self.country, key.public_key(), start, start + days * DAY
        )
        self.certs.append(cert)
        return cert


@dataclass
class World:
    hub: Party
    khm: Party
    hub_signer: Ed25519PrivateKey
    hub_cert: KeyCertificate
    khm_sig: KeyCertificate

    def issue(
        self,
        serial: int,
        issued_at: datetime = T0,
        revoked: tuple[Revocation, ...] = (),
        signer: tuple[Ed25519PrivateKey, KeyCertificate] | None = None,
    ) -> str:
        key, cert = signer or (self.hub_signer, self.hub_cert)
        return issue_trust_list(
            key,
            cert,
            serial,
            issued_at,
            issued_at + 7 * DAY,
            {HUB: self.hub.root_jwk, "KHM": self.khm.root_jwk},
            [c.token for c in self.hub.certs + self.khm.certs],
            revoked,
        )

    def verify(
        self, token: str, now: datetime = T0, previous: TrustList | None = None
    ) -> TrustList:
        return verify_trust_list(token, self.hub.root_jwk, now, previous)


@pytest.fixture
def world() -> World:
    hub, khm = Party(HUB), Party("KHM")
    signer = Ed25519PrivateKey.generate()
    hub_cert = hub.certify(signer, T0 - DAY)
    hub.certify(X25519PrivateKey.generate(), T0 - DAY)
    khm_sig = khm.certify(Ed25519PrivateKey.generate(), T0 - DAY, days=30)
    khm.certify(X25519PrivateKey.generate(), T0 - DAY, days=30)
    return World(hub, khm, signer, hub_cert, khm_sig)


def test_resolve_valid_key(world: World) -> None:
    trust = world.verify(world.issue(1))
    assert trust.resolve("KHM", world.khm_sig.kid, "sig", T0) == world.khm_sig.public_key()
    enc = trust.current_encryption_key(HUB, T0)
    assert trust.resolve(HUB, enc.kid, "enc", T0) == enc.public_key()


@pytest.mark.parametrize(
    ("ask", "error", "reason"),
    [
        (lambda w: ("KHM", "no-such-kid", "sig", T0), UnknownKeyError, "unknown_key"),
        (lambda w: (HUB, w.khm_sig.kid, "sig", T0), CountryMismatchError, "country_mismatch"),
        (lambda w: ("KHM", w.khm_sig.kid, "enc", T0), WrongUseError, "wrong_use"),
        (lambda w: ("KHM", w.khm_sig.kid, "sig", T0 + 29 * DAY), ExpiredKeyError, "expired_key"),
        (lambda w: ("KHM", w.khm_sig.kid, "sig", T0 - 2 * DAY), NotYetValidKeyError, None),
    ],
)
def test_resolve_failures_have_reasons(
    world: World,
    ask: Callable[[World], tuple[str, str, Use, datetime]],
    error: type[Exception],
    reason: str | None,
) -> None:
    trust = world.verify(world.issue(1))
    country, kid, use, at = ask(world)
    with pytest.raises(error) as caught:
        trust.resolve(country, kid, use, at)
    assert getattr(caught.value, "reason", None) == (reason or "not_yet_valid_key")
    assert kid in str(caught.value)


def test_revoked_key_refused_from_revocation_time(world: World) -> None:
    revoked = (Revocation(world.khm_sig.kid, T0 + DAY, "key_compromise"),)
    trust = world.verify(world.issue(1, revoked=revoked))
    assert trust.resolve("KHM", world.khm_sig.kid, "sig", T0 + DAY - timedelta(seconds=1))
    with pytest.raises(RevokedKeyError) as caught:
        trust.resolve("KHM", world.khm_sig.kid, "sig", T0 + DAY)
    assert caught.value.reason == "revoked_key"


def test_certificate_under_wrong_root_refused(world: World) -> None:
    impostor = Party("KHM")
    forged = impostor.certify(Ed25519PrivateKey.generate(), T0 - DAY)
    world.khm.certs.append(forged)
    trust = world.verify(world.issue(1))
    with pytest.raises(BadCertificateError):
        trust.resolve("KHM", forged.kid, "sig", T0)
    # A country without a root in the list cannot be resolved at all.
    lao = Party("LAO")
    stray = lao.certify(Ed25519PrivateKey.generate(), T0 - DAY)
    world.khm.certs.append(stray)
    with pytest.raises(UnknownCountryError) as caught:
        world.verify(world.issue(2)).resolve("LAO", stray.kid, "sig", T0)
    assert caught.value.reason == "unknown_country"


def test_overlapping_rotation_resolves_both_and_picks_newest(world: World) -> None:
    newer = world.khm.certify(Ed25519PrivateKey.generate(), T0 + 20 * DAY, days=30)
    trust = world.verify(world.issue(1))
    at = T0 + 21 * DAY
    assert trust.resolve("KHM", world.khm_sig.kid, "sig", at) == world.khm_sig.public_key()
    assert trust.resolve("KHM", newer.kid, "sig", at) == newer.public_key()
    assert trust.current_signing_key("KHM", at).kid == newer.kid
    assert trust.current_signing_key("KHM", T0 + 19 * DAY).kid == world.khm_sig.kid
    with pytest.raises(NoCurrentKeyError) as caught:
        trust.current_signing_key("KHM", T0 + 60 * DAY)
    assert caught.value.reason == "no_current_key"


def test_serial_rollback_refused(world: World) -> None:
    first = world.verify(world.issue(5))
    assert world.verify(first.token, previous=first) == first  # same list fetched again
    second = world.verify(world.issue(6), previous=first)
    assert second.serial == 6
    with pytest.raises(TrustListRollbackError) as caught:
        world.verify(first.token, previous=second)
    assert caught.value.reason == "rollback"
    with pytest.raises(TrustListRollbackError):  # same serial, different content
        world.verify(world.issue(6, issued_at=T0 - DAY), previous=second)


def test_stale_list_refused(world: World) -> None:
    token = world.issue(1)
    assert world.verify(token, now=T0 + 7 * DAY).serial == 1
    with pytest.raises(StaleTrustListError) as caught:
        world.verify(token, now=T0 + 7 * DAY + timedelta(seconds=1))
    assert caught.value.reason == "stale_trust_list"


def test_list_signed_by_uncertified_key_refused(world: World) -> None:
    rogue = Ed25519PrivateKey.generate()
    rogue_root = Party(HUB)
    rogue_cert = rogue_root.certify(rogue, T0 - DAY)
    token = issue_trust_list(
        rogue,
        rogue_cert,
        9,
        T0,
        T0 + DAY,
        {HUB: rogue_root.root_jwk},
        [c.token for c in world.khm.certs],
    )
    with pytest.raises(UntrustedSignerError) as caught:
        world.verify(token)
    assert caught.value.reason == "untrusted_signer"


def test_list_signed_by_country_key_or_revoked_hub_key_refused(world: World) -> None:
    khm_key = Ed25519PrivateKey.generate()
    khm_cert = world.khm.certify(khm_key, T0 - DAY)
    with pytest.raises(ValueError, match="hub signing key"):
        world.issue(1, signer=(khm_key, khm_cert))
    revoked = (Revocation(world.hub_cert.kid, T0, "key_compromise"),)
    with pytest.raises(UntrustedSignerError, match="revoked"):
        world.verify(world.issue(1, revoked=revoked))


def test_tampered_list_refused(world: World) -> None:
    token = world.issue(1)
    head, _, sig = token.split(".")
    other = world.issue(2).split(".")[1]
    with pytest.raises(BadTrustListError) as caught:
        world.verify(".".join([head, other, sig]))
    assert caught.value.reason == "bad_trust_list"
    with pytest.raises(BadTrustListError):
        verify_trust_list(token, Party(HUB).root_jwk, T0)  # pinned a different hub root
