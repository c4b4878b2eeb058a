"""``epibridge audit verify``: check the whole transparency log against the store.

Every check is recomputed from what the database holds now, so an edit made directly in
the database (a changed count, a changed origin, a deleted leaf, a rewritten tree head)
shows up as a problem naming the row:

1. leaves are numbered 1..n without gaps, each entry is canonical JSON, and its stored
   hash is SHA-256(0x00 || entry);
2. each submission's leaf equals the leaf computed from its stored row and regional rows,
   and every stored submission has a leaf;
3. each signed tree head verifies with a hub signing key of the trust list, says what its
   row says, and its root is the root of that many leaves now;
4. each countersignature verifies with a signing key of its country and names the head;
5. each alert event has its leaf (kind ``alert``, subject ``<alert_id>/<event_no>``) saying
   what the event row says, every alert leaf names a stored event, and each alert's row
   hashes to the ``state_sha256`` of its latest leaf (``alert_store.py``);
6. each release leaf (kind ``release``: a file the hub published, such as a weekly
   bulletin) has the shape of ``RELEASE_FIELDS`` and its subject names its week, format
   and SHA-256. The file itself is not in the store: whoever holds it checks its SHA-256
   against the leaf (``docs/bulletin.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, select

from epibridge.hub.alert_store import LOG_KIND as ALERT_KIND
from epibridge.hub.alert_store import alerts as stored_alerts
from epibridge.hub.alert_store import events as alert_events
from epibridge.hub.log import (
    COUNTERSIGNATURE_TYPE,
    HEAD_TYPE,
    canonical,
    entries,
    leaf_hash,
    root,
    submission_entry,
)
from epibridge.hub.tables import countersignatures_table, submissions_table, tree_heads_table
from epibridge.model.errors import EpibridgeError
from epibridge.transport.keys import TrustError, parse_time, peek, verify_compact
from epibridge.transport.trust import HUB, TrustList

RELEASE_KIND = "release"
#: What a release leaf holds besides ``kind``: field -> what its value must look like.
RELEASE_FIELDS: dict[str, re.Pattern[str]] = {
    "artifact": re.compile(r"bulletin"),
    "disease": re.compile(r"[A-Z0-9_]{1,40}"),
    "week": re.compile(r"\d{4}-W(0[1-9]|[1-4]\d|5[0-3])"),
    "as_of": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"),
    "format": re.compile(r"html|pdf"),
    "sha256": re.compile(r"[0-9a-f]{64}"),
    "size_bytes": re.compile(r"[1-9]\d*"),
    "generator": re.compile(r"epibridge \S+"),
}


def release_subject(entry: Mapping[str, Any]) -> str:
    """A release leaf's subject: ``<artifact>/<week>/<format>/<sha256>`` (one per file)."""
    return f"{entry['artifact']}/{entry['week']}/{entry['format']}/{entry['sha256']}"


def release_problems(seq: int, subject: str, entry: Mapping[str, Any]) -> list[str]:
    """What is wrong with the shape of a release leaf (nothing when it is sound)."""
    problems = []
    extra = sorted(set(entry) - set(RELEASE_FIELDS) - {"kind"})
    if extra:
        problems.append(f"leaf {seq}: a release leaf has unknown fields {', '.join(extra)}")
    for name, shape in RELEASE_FIELDS.items():
        value = entry.get(name)
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if text is None or shape.fullmatch(text) is None:
            problems.append(f"leaf {seq}: release field {name} is {value!r}")
    if not problems and subject != release_subject(entry):
        problems.append(
            f"leaf {seq}: release subject {subject!r} is not {release_subject(entry)!r}"
        )
    return problems


class AuditFailure(EpibridgeError):  # noqa: N818 (the audit failed: not a bug)
    """The log does not match the store: the message lists every problem found."""

    exit_code = 3


@dataclass
class AuditReport:
    leaves: int = 0
    submissions: int = 0
    heads: int = 0
    countersignatures: int = 0
    alerts: int = 0
    alert_events: int = 0
    releases: int = 0
    problems: list[str] = field(default_factory=list)


def _verify(token: str, trust: TrustList, country: str, typ: str, at: Any) -> dict[str, Any]:
    header, _ = peek(token)
    key = trust.resolve(country, str(header.get("kid", "")), "sig", at)
    assert isinstance(key, Ed25519PublicKey)
    return verify_compact(token, key, typ)


def _leaves(
    engine: Engine, report: AuditReport, alert_leaves: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Check numbering, form and hashes; the submission entries by id (and the alert
    entries by subject into ``alert_leaves``)."""
    found: dict[str, dict[str, Any]] = {}
    for expected, row in enumerate(entries(engine), start=1):
        report.leaves += 1
        if row.seq != expected:
            report.problems.append(f"leaf {expected} is missing (the next one is {row.seq})")
            break
        try:
            entry = json.loads(row.entry)
        except json.JSONDecodeError:
            report.problems.append(f"leaf {row.seq}: the entry is not JSON")
            continue
        if canonical(entry).decode() != row.entry:
            report.problems.append(f"leaf {row.seq}: the entry is not canonical JSON")
        if leaf_hash(row.entry.encode()).hex() != row.leaf_hash:
            report.problems.append(f"leaf {row.seq}: its hash is not the hash of its entry")
        if entry.get("kind") != row.kind:
            report.problems.append(f"leaf {row.seq}: kind {row.kind!r} differs from its entry")
        if row.kind == "submission":
            found[row.subject] = {"seq": row.seq, **entry}
        elif row.kind == ALERT_KIND and alert_leaves is not None:
            alert_leaves[row.subject] = {"seq": row.seq, **entry}
        elif row.kind == RELEASE_KIND:
            report.releases += 1
            report.problems.extend(release_problems(row.seq, row.subject, entry))
    return found


def _alerts(engine: Engine, logged: dict[str, dict[str, Any]], report: AuditReport) -> None:
    """Every alert event against its leaf; every alert row against its latest leaf."""
    latest: dict[str, dict[str, Any]] = {}
    with engine.connect() as c:
        for event in alert_events(c):
            report.alert_events += 1
            subject = f"{event.alert_id}/{event.event_no}"
            leaf = logged.pop(subject, None)
            if leaf is None:
                report.problems.append(f"alert event {subject} is stored but not in the log")
                continue
            expected = event.entry(str(leaf.get("state_sha256")))
            for key in sorted(expected):
                if expected[key] != leaf.get(key):
                    report.problems.append(
                        f"alert event {subject} (leaf {leaf['seq']}): {key} is "
                        f"{expected[key]!r} in the store but {leaf.get(key)!r} in the log"
                    )
            latest[event.alert_id] = leaf
        for alert in stored_alerts(c):
            report.alerts += 1
            leaf = latest.get(alert.alert_id)
            if leaf is None:
                report.problems.append(f"alert {alert.alert_id} is stored with no logged event")
            elif alert.state_sha256() != leaf.get("state_sha256"):
                report.problems.append(
                    f"alert {alert.alert_id}: its stored state no longer hashes to the one "
                    f"logged by its last event (leaf {leaf['seq']}): the row was changed "
                    "outside the hub"
                )
    for subject, leaf in logged.items():
        report.problems.append(
            f"leaf {leaf['seq']} names alert event {subject}, which is not stored"
        )


def _submissions(engine: Engine, logged: dict[str, dict[str, Any]], report: AuditReport) -> None:
    with engine.connect() as c:
        stored = [r.submission_id for r in c.execute(select(submissions_table.c.submission_id))]
        for sid in stored:
            report.submissions += 1
            leaf = logged.pop(sid, None)
            if leaf is None:
                report.problems.append(f"submission {sid} is stored but not in the log")
                continue
            now = submission_entry(c, sid)
            for key in sorted(set(now) | set(leaf) - {"seq"}):
                if now.get(key) != leaf.get(key):
                    report.problems.append(
                        f"submission {sid} (leaf {leaf['seq']}): {key} is {now.get(key)!r} in "
                        f"the store but {leaf.get(key)!r} in the log"
                    )
    for sid, leaf in logged.items():
        report.problems.append(f"leaf {leaf['seq']} names submission {sid}, which is not stored")


def _heads(engine: Engine, trust: TrustList, report: AuditReport) -> None:
    with engine.connect() as c:
        heads = list(c.execute(select(tree_heads_table).order_by(tree_heads_table.c.tree_size)))
        cosigned = list(c.execute(select(countersignatures_table)))
    roots: dict[int, str] = {}
    for head in heads:
        report.heads += 1
        size = int(head.tree_size)
        try:
            claims = _verify(
                head.token, trust, HUB, HEAD_TYPE, parse_time(peek(head.token)[1]["timestamp"])
            )
        except (TrustError, ValueError, KeyError) as exc:
            report.problems.append(f"tree head {size}: its signature does not verify ({exc})")
            continue
        if claims.get("tree_size") != size or claims.get("root_hash") != head.root_hash:
            report.problems.append(f"tree head {size}: the signed head says something else")
        try:
            _, now = root(engine, size)
        except EpibridgeError as exc:
            report.problems.append(f"tree head {size}: {exc}")
            continue
        if now.hex() != claims.get("root_hash"):
            report.problems.append(
                f"tree head {size}: the first {size} leaves no longer hash to the signed root: "
                "history was rewritten"
            )
        roots[size] = str(claims.get("root_hash"))
    for item in cosigned:
        report.countersignatures += 1
        size = int(item.tree_size)
        try:
            claims = _verify(
                item.token, trust, item.country, COUNTERSIGNATURE_TYPE, item.received_at
            )
        except (TrustError, ValueError, KeyError) as exc:
            report.problems.append(
                f"{item.country}'s countersignature of head {size} does not verify ({exc})"
            )
            continue
        if claims.get("tree_size") != size or claims.get("root_hash") != roots.get(size):
            report.problems.append(
                f"{item.country} countersigned head {size} with another root than the hub's"
            )


def audit_verify(
    engine: Engine, trust: TrustList, progress: Callable[[str], None] = print
) -> AuditReport:
    """Check everything; the report lists the problems (empty when the log is sound)."""
    report = AuditReport()
    progress("checking the leaves")
    alert_leaves: dict[str, dict[str, Any]] = {}
    logged = _leaves(engine, report, alert_leaves)
    progress("checking every submission against its leaf")
    _submissions(engine, logged, report)
    progress("checking every alert and its events against their leaves")
    _alerts(engine, alert_leaves, report)
    progress("checking the signed tree heads and countersignatures")
    _heads(engine, trust, report)
    return report
