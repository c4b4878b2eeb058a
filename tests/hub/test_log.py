"""The transparency log: RFC 9162 hashing, proofs, signed heads, and tampering found."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, text

from epibridge.hub.audit import audit_verify
from epibridge.hub.log import (
    check_consistency,
    check_inclusion,
    entry_of,
    prove_consistency,
    prove_inclusion,
    root,
    sign_head,
)
from epibridge.hub.migrate import upgrade
from epibridge.hub.tables import log_entries_table
from tests.hub import test_intake
from tests.hub.payloads import counts_table
from tests.hub.test_intake import NOW, Hub
from tests.hub.test_regional import A, B, _send

hub = test_intake.hub
world = test_intake.world
url = test_intake.url

# The reference tree of RFC 6962's authors (certificate-transparency test data): leaf
# inputs, the root of each prefix, and audit paths (hex).
CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]  # fmt: skip
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PATH_1_OF_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


def test_the_stored_tree_matches_the_rfc_6962_reference(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.sqlite'}"
    upgrade(db)
    engine = create_engine(db)
    from epibridge.hub.log import leaf_hash

    with engine.begin() as c:
        for i, data in enumerate(CT_LEAVES, start=1):
            c.execute(
                insert(log_entries_table).values(
                    seq=i,
                    kind="test",
                    subject=str(i),
                    entry=data,
                    leaf_hash=leaf_hash(bytes.fromhex(data)).hex(),
                    logged_at=NOW,
                )
            )
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert root(engine, size)[1].hex() == expected
    proof = prove_inclusion(engine, 1, 8)
    assert proof["path"][1:] == CT_PATH_1_OF_8
    for first in range(1, 9):
        for second in range(first, 9):
            proof = prove_consistency(engine, first, second)
            assert check_consistency(
                (first, CT_ROOTS[first - 1]), (second, CT_ROOTS[second - 1]), proof
            )
    bad = prove_consistency(engine, 3, 8)
    assert not check_consistency((3, CT_ROOTS[3]), (8, CT_ROOTS[7]), bad)
    engine.dispose()


def _logged(hub: Hub, tmp: Path) -> None:
    _send(hub, tmp, A, counts_table(5, seed=1), at_hours=0)
    sign_head(hub.context.store.engine, hub.context.signing_key, NOW + timedelta(hours=0.5))
    _send(hub, tmp, B, counts_table(5, seed=2), at_hours=1)
    sign_head(hub.context.store.engine, hub.context.signing_key, NOW + timedelta(hours=1.5))


def test_submissions_are_leaves_with_proofs(hub: Hub, tmp_path: Path) -> None:
    _logged(hub, tmp_path)
    engine = hub.context.store.engine
    size, digest = root(engine)
    assert size == 2
    found = entry_of(engine, "submission", A)
    assert found is not None
    index, entry = found
    assert index == 1 and '"manifest_sha256"' in entry and '"counts_rows":5' in entry
    proof = prove_inclusion(engine, index, size)
    assert check_inclusion(entry, index, digest.hex(), size, proof)
    assert not check_inclusion(entry.replace("KHM", "LAO"), index, digest.hex(), size, proof)
    first = root(engine, 1)
    assert check_consistency(
        (1, first[1].hex()), (2, digest.hex()), prove_consistency(engine, 1, 2)
    )
    report = audit_verify(engine, hub.context.trust, progress=lambda step: None)
    assert report.problems == []
    assert (report.leaves, report.submissions, report.heads) == (2, 2, 2)


TAMPERING = {
    "a count": "UPDATE regional_counts SET cases = cases + 1 WHERE submission_id = '{A}'",
    "an origin": "UPDATE submissions SET origin_country = 'LAO' WHERE submission_id = '{A}'",
    "a leaf": "DELETE FROM log_entries WHERE seq = 1",
    "a head": "UPDATE tree_heads SET root_hash = '00' WHERE tree_size = 2",
    "a row": "DELETE FROM regional_counts WHERE source_row = 0 AND submission_id = '{B}'",
}


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_editing_the_database_is_found(hub: Hub, tmp_path: Path, what: str) -> None:
    _logged(hub, tmp_path)
    engine = hub.context.store.engine
    with engine.begin() as c:
        c.execute(text(TAMPERING[what].format(A=A, B=B)))
    report = audit_verify(engine, hub.context.trust, progress=lambda step: None)
    assert report.problems, f"editing {what} went unnoticed"
