"""Offline transfer as operators do it: node export -> USB stick -> hub import -> receipt back."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.exchange_setup import Parties, ok, run, seal, set_up


@pytest.fixture(scope="module")
def parties(tmp_path_factory: pytest.TempPathFactory) -> Parties:
    return set_up(tmp_path_factory.mktemp("offline"))


def test_export_import_receipt(parties: Parties) -> None:
    p = parties
    sid = seal(p)
    assert "already sealed" in ok("node", "seal", str(p.release), *p.node_opt)
    assert "queued" in ok("node", "status", *p.node_opt)
    stick = p.tmp / "stick" / "khm.zip"
    ok("node", "export", sid, "--out", str(stick), *p.node_opt)
    assert "sent" in ok("node", "status", *p.node_opt)
    out = ok("hub", "import", str(stick), *p.hub_opt)
    assert f"accepted submission {sid}" in out
    again = ok("hub", "import", str(stick), "--receipt-out", str(p.tmp / "r2.jws"), *p.hub_opt)
    assert f"duplicate submission {sid}" in again
    held = ok("hub", "submissions", *p.hub_opt)
    assert sid in held and held.count(sid) == 1
    receipt = stick.with_name(stick.name + ".receipt.jws")
    assert f"submission {sid}: acknowledged" in ok("node", "receipt", str(receipt), *p.node_opt)
    status = ok("node", "status", *p.node_opt)
    assert "acknowledged" in status and "receipt is kept" in status
    # a mistyped home is said so, and not made into an empty node
    typo = p.tmp / "nodee"
    wrong = run("node", "status", "--home", str(typo))
    assert wrong.returncode == 2 and "no node here" in wrong.stderr and not typo.exists()


def test_a_damaged_file_is_refused_with_its_reason(parties: Parties) -> None:
    p = parties
    if not list((p.node / "outbox").glob("*.zip")):
        seal(p)
    source = p.tmp / "flipped.zip"
    source.write_bytes(sorted((p.node / "outbox").glob("*.zip"))[0].read_bytes())
    with zipfile.ZipFile(source) as z:
        info = next(i for i in z.infolist() if i.filename.startswith("parts/"))
    data = bytearray(source.read_bytes())
    # 40 bytes into the member's data (past its 30-byte local header and name).
    data[info.header_offset + 30 + len(info.filename) + 40] ^= 0x01
    source.write_bytes(bytes(data))
    done = run("hub", "import", str(source), *p.hub_opt)
    assert done.returncode == 2, done.stdout
    assert "payload_mismatch" in done.stderr and "Traceback" not in done.stderr
    assert "payload_mismatch" in ok("hub", "submissions", "--rejections", *p.hub_opt)


def test_a_receipt_for_another_manifest_is_refused(parties: Parties, tmp_path: Path) -> None:
    p = parties
    bogus = tmp_path / "bogus.jws"
    bogus.write_text("not.a.receipt\n")
    done = run("node", "receipt", str(bogus), *p.node_opt)
    assert done.returncode == 2 and "not a hub receipt" in done.stderr


def test_counts_as_of_and_lineage(parties: Parties, tmp_path: Path) -> None:
    p = parties
    held = ok("hub", "submissions", *p.hub_opt)
    sid = next(w for w in held.split() if w.count("-") == 4 and len(w) == 36)
    counts = ok("hub", "counts", "--out", str(tmp_path / "c.csv"), *p.hub_opt)
    assert "KHM" in counts and "DENGUE" in counts
    assert sid in (tmp_path / "c.csv").read_text()
    # codes as typed in lower case mean the same country and disease
    assert "KHM" in ok("hub", "counts", "--country", "khm", "--disease", "dengue", *p.hub_opt)
    before = ok("hub", "counts", "--as-of", "2000-01-01", *p.hub_opt)
    assert "KHM" not in before
    traced = ok("hub", "lineage", sid, *p.hub_opt)
    assert "from KHM" in traced and "in today's regional picture" in traced
    missing = run("hub", "lineage", "00000000-0000-4000-8000-000000000000", *p.hub_opt)
    assert missing.returncode == 1 and "holds no submission" in missing.stdout
    bad = run("hub", "counts", "--as-of", "yesterday", *p.hub_opt)
    assert bad.returncode == 2 and "--as-of" in bad.stderr
