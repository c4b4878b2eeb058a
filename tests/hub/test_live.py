"""A running hub picks up enrolments, agreements, stops and key rotations without a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from epibridge.agreements import load_agreement
from epibridge.agreements.signing import save_signatures, sign_agreement, signatures_path
from epibridge.hub.home import HubHome, HubHomeError
from epibridge.hub.live import LiveContext
from epibridge.transport.bundle import BundleError, bundle_of
from epibridge.transport.keystore import KeyStore
from tests.test_cli_node import _agreement

PASS = "a long enough passphrase"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_live_context_follows_the_hub_folder(tmp_path: Path) -> None:
    clock = Clock()
    hub = HubHome.init(tmp_path / "hub", PASS, clock())
    keys = hub.keys(PASS)
    with hub.open_store() as store:
        live = LiveContext(hub, keys, store, clock, refresh=timedelta(hours=1))
        first = live()
        assert set(first.trust.roots) == {"HUB"} and first.agreements == {}
        assert live() is first  # nothing changed: the same context

        khm = KeyStore.init(tmp_path / "khm", "KHM", PASS, clock())
        hub.enrol(bundle_of(khm), keys, clock())
        second = live()
        assert "KHM" in second.trust.roots and second.trust.serial > first.trust.serial

        path = _agreement(tmp_path)
        agreement = load_agreement(path)
        signed = sign_agreement(agreement, khm.signing_key(clock()), "KHM", clock())
        signed = sign_agreement(agreement, keys.signing_key(clock()), "HUB", clock(), signed)
        save_signatures(signatures_path(path), signed)
        hub.add_agreement(path, keys, clock())
        third = live()
        assert agreement.id in third.agreements
        assert not third.is_stopped(agreement.id, agreement.version)

        hub.stop_agreement(agreement.id, "breach under review", clock())
        assert live().is_stopped(agreement.id, agreement.version)

        # The hub's own encryption key rotated by another process (``keys rotate``).
        KeyStore.open(hub.folder, PASS).rotate("enc", clock())
        assert len(live().encryption_keys) == 2

        # Past half its life the trust list is re-issued on the next request.
        serial = live().trust.serial
        clock.now += timedelta(days=4)
        assert live().trust.serial == serial + 1


def test_enrolment_pins_the_root(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    hub = HubHome.init(tmp_path / "hub", PASS, now)
    keys = hub.keys(PASS)
    first = KeyStore.init(tmp_path / "a", "KHM", PASS, now)
    hub.enrol(bundle_of(first), keys, now)
    first.rotate("sig", now)  # a rotation under the same root: accepted, merged
    merged = hub.enrol(bundle_of(first), keys, now)
    assert len(merged.certificates) == 3
    impostor = KeyStore.init(tmp_path / "b", "KHM", PASS, now)
    with pytest.raises(BundleError, match="enrolled with root"):
        hub.enrol(bundle_of(impostor), keys, now)
    with pytest.raises(HubHomeError, match="hub's own keys"):
        hub.enrol(bundle_of(keys), keys, now)


def test_an_agreement_between_two_countries_is_not_the_hubs(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    hub = HubHome.init(tmp_path / "hub", PASS, now)
    path = _agreement(tmp_path)
    path.write_text(path.read_text().replace('recipient = "hub"', 'recipient = "VNM"'))
    with pytest.raises(HubHomeError, match="only under agreements whose recipient"):
        hub.add_agreement(path, hub.keys(PASS), now)
