"""Refusals of the policy checks; keyed pseudonyms (stable under one key, unlinkable across)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from epibridge.agreements import load_agreement
from epibridge.model.agreement import Embargo, Refusal
from epibridge.pipeline import policy
from epibridge.pipeline.pseudonym import derive_key, key_scope, pseudonymize

PER = load_agreement(
    Path(str(resources.files("epibridge.examples") / "agreements")) / "per-hub-linelist.toml"
)
MASTER = bytes(range(32))


def test_in_force() -> None:
    policy.check_in_force(PER, date(2026, 11, 23), None)
    with pytest.raises(Refusal, match="expired on 2035-12-31") as err:
        policy.check_in_force(PER, date(2036, 1, 1), None)
    assert "renew" in err.value.fix
    with pytest.raises(Refusal, match="valid from 2026-01-01"):
        policy.check_in_force(PER, date(2025, 12, 31), None)
    with pytest.raises(Refusal, match="stopped on this node"):
        policy.check_in_force(PER, date(2026, 11, 23), "renegotiation")


def test_request() -> None:
    policy.check_request(PER, ["cases"], ["sex", "case_id"])
    with pytest.raises(Refusal, match="'outcome' is not allowed") as err:
        policy.check_request(PER, ["cases"], ["sex", "outcome"])
    assert "--field outcome" in err.value.fix
    counts_only = replace(PER, datasets=("counts",))
    with pytest.raises(Refusal, match="does not allow releasing cases"):
        policy.check_request(counts_only, ["cases"], None)


def test_embargo() -> None:
    today = date(2026, 11, 23)
    cutoff = policy.embargo_cutoff(PER, today, None)
    assert cutoff == date(2026, 11, 9)
    policy.check_embargo(PER, date(2026, 11, 9), cutoff, today)
    with pytest.raises(Refusal, match="ending 2026-11-15") as err:
        policy.check_embargo(PER, date(2026, 11, 15), cutoff, today)
    assert "--to 2026-11-09" in err.value.fix
    waits = replace(PER, embargo=Embargo(days=0, after_publication=True))
    with pytest.raises(Refusal, match="national publication"):
        policy.embargo_cutoff(waits, today, None)
    assert policy.embargo_cutoff(waits, today, date(2026, 10, 31)) == date(2026, 10, 31)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(min_size=1, max_size=20)), min_size=1, max_size=30))
def test_pseudonyms_stable_and_unlinkable(ids: list[str | None]) -> None:
    key = derive_key(MASTER, PER)
    once = pseudonymize(pa.array(ids, pa.string()), key).to_pylist()
    twice = pseudonymize(pa.array(ids, pa.string()), derive_key(MASTER, PER)).to_pylist()
    assert once == twice
    other = replace(PER, id="PER-PARTNER-VNM")
    elsewhere = pseudonymize(pa.array(ids, pa.string()), derive_key(MASTER, other)).to_pylist()
    for a, b, raw in zip(once, elsewhere, ids, strict=True):
        if raw is None:
            assert a is None and b is None
        else:
            assert a is not None and len(a) == 64 and a != b
    # Same id -> same pseudonym; different ids -> different pseudonyms.
    pairs = {(r, p) for r, p in zip(ids, once, strict=True) if r is not None}
    assert len({p for _, p in pairs}) == len({r for r, _ in pairs})


def test_linkage_scope_is_shared_across_agreements() -> None:
    a = replace(PER, record_linkage=True)
    b = replace(PER, id="PER-PARTNER-VNM", record_linkage=True)
    assert key_scope(a) == key_scope(b) == "linkage:PER"
    assert derive_key(MASTER, a) == derive_key(MASTER, b)
    assert derive_key(MASTER, a) != derive_key(MASTER, PER)
    assert derive_key(MASTER, PER) != MASTER
    with pytest.raises(ValueError, match="at least 32 bytes"):
        derive_key(b"short", PER)
