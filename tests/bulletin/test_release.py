"""A written bulletin is a hub release: one transparency-log leaf per distinct file."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from epibridge.bulletin.content import Bulletin, BulletinError, Source, gather
from epibridge.bulletin.html import render_html
from epibridge.bulletin.release import publish
from epibridge.hub.audit import RELEASE_KIND, audit_verify
from epibridge.hub.log import append
from epibridge.hub.tables import log_entries_table
from tests.bulletin.conftest import AS_OF, WEEK
from tests.hub.test_intake import NOW, Hub


def _releases(source: Source) -> list[tuple[str, dict[str, object]]]:
    t = log_entries_table
    with source.engine.connect() as c:
        rows = c.execute(select(t.c.subject, t.c.entry).where(t.c.kind == RELEASE_KIND))
        return [(r.subject, json.loads(r.entry)) for r in rows]


def test_one_leaf_per_distinct_file_and_the_audit_agrees(
    loaded: Hub, source: Source, bulletin: Bulletin, tmp_path: Path
) -> None:
    data = render_html(bulletin)
    out = tmp_path / "bulletin.html"
    first = publish(source.engine, bulletin, "html", data, out, NOW)
    assert out.read_bytes() == data
    assert first.sha256 == hashlib.sha256(data).hexdigest() and first.leaf is not None
    [(subject, entry)] = _releases(source)
    assert subject == f"bulletin/2026-W02/html/{first.sha256}"
    assert entry == {
        "kind": "release",
        "artifact": "bulletin",
        "disease": "DENGUE",
        "week": "2026-W02",
        "as_of": "2026-01-07T14:00:00Z",
        "format": "html",
        "sha256": first.sha256,
        "size_bytes": len(data),
        "generator": "epibridge 0.1.0",
    }
    # the same bytes again, even under another name: no new leaf
    again = publish(source.engine, bulletin, "html", data, tmp_path / "copy.html", NOW)
    assert again.leaf is None and len(_releases(source)) == 1
    # a later as-of time makes other bytes: a leaf of its own
    later = gather(source, WEEK, AS_OF + timedelta(days=1), "DENGUE")
    third = publish(source.engine, later, "html", render_html(later), out, NOW)
    assert third.leaf == first.leaf + 1 and len(_releases(source)) == 2
    report = audit_verify(source.engine, loaded.context.trust, progress=lambda _: None)
    assert report.problems == [] and report.releases == 2


def test_the_audit_checks_the_shape_of_release_leaves(loaded: Hub, source: Source) -> None:
    good = {
        "artifact": "bulletin",
        "disease": "DENGUE",
        "week": "2026-W02",
        "as_of": "2026-01-07T14:00:00Z",
        "format": "pdf",
        "sha256": "ab" * 32,
        "size_bytes": 1234,
        "generator": "epibridge 0.1.0",
    }
    bad = {**good, "week": "2026-W99", "sha256": "not a hash", "extra": 1}
    with source.engine.begin() as c:
        append(c, RELEASE_KIND, f"bulletin/2026-W02/pdf/{'ab' * 32}", good, NOW)
        append(c, RELEASE_KIND, "bulletin/elsewhere", {**good, "sha256": "cd" * 32}, NOW)
        append(c, RELEASE_KIND, "bulletin/bad", bad, NOW)
    report = audit_verify(source.engine, loaded.context.trust, progress=lambda _: None)
    assert report.releases == 3
    problems = " | ".join(report.problems)
    assert "release subject 'bulletin/elsewhere' is not 'bulletin/2026-W02/pdf/cdcd" in problems
    assert "release field week is '2026-W99'" in problems
    assert "release field sha256 is 'not a hash'" in problems
    assert "unknown fields extra" in problems
    assert len(report.problems) == 4


def test_a_folder_or_missing_folder_is_a_clear_error(
    source: Source, bulletin: Bulletin, tmp_path: Path
) -> None:
    for target in (tmp_path, tmp_path / "no" / "such" / "b.html"):
        with pytest.raises(BulletinError, match="cannot write the bulletin to"):
            publish(source.engine, bulletin, "html", b"x", target, NOW)
    assert _releases(source) == []
