"""The hub's transparency log: an append-only Merkle tree (RFC 9162) over what it accepted.

Every accepted submission, registered agreement and key change is a **leaf**: canonical
JSON (RFC 8785) of the facts about it, numbered from 1 without gaps, hashed as RFC 9162
says (SHA-256 of 0x00 followed by the entry; interior nodes SHA-256 of 0x01, left,
right). A submission's entry also carries the SHA-256 of the regional rows stored with it,
so that a value edited in the database no longer matches the log.

The hub **signs tree heads** (tree size, root hash, time) with its signing key. Anyone
holding two heads can ask for a consistency proof that the later tree extends the
earlier one; a node asks for the inclusion proof of each of its submissions, and may
**countersign** a head it has checked, so that the hub cannot later show another history
to someone else. ``audit_verify`` recomputes every leaf from the store and every signed
head from the leaves.

The tree arithmetic (roots of subtrees, inclusion and consistency proofs and their
verification) is ``pymerkle``'s; this module stores leaves in the hub database and gives
the library a view of them. Tests check its roots and proofs against the reference
vectors of RFC 6962's authors (certificate-transparency test data).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import rfc8785
from pymerkle import BaseMerkleTree, ConsistencyProof, InclusionProof, InvalidProof
from pymerkle import verify_consistency as _verify_consistency
from pymerkle import verify_inclusion as _verify_inclusion
from sqlalchemy import Boolean, Connection, Date, Engine, Integer, Table, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from epibridge.hub.tables import (
    log_entries_table,
    regional_cases_table,
    regional_counts_table,
    regional_denominators_table,
    regional_reporting_table,
    submissions_table,
    tree_heads_table,
    utc,
)
from epibridge.model.errors import ReasonedError
from epibridge.transport.keys import format_time, sign_compact
from epibridge.transport.keystore import SigningKey

HEAD_TYPE = "epibridge-tree-head+jws"
COUNTERSIGNATURE_TYPE = "epibridge-tree-head-cosignature+jws"
LOG_ID = "epibridge-hub-log/1"
# Any constant: the PostgreSQL advisory lock that orders appends across processes.
_APPEND_LOCK = 0x65706962


class LogError(ReasonedError):
    """A request about the log that cannot be answered (unknown leaf, bad sizes)."""


def canonical(entry: Mapping[str, Any]) -> bytes:
    return rfc8785.dumps(dict(entry))


def leaf_hash(entry_bytes: bytes) -> bytes:
    """RFC 9162 section 2.1.1: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry_bytes).digest()


# -- what a submission's leaf says ------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value) if value.microsecond == 0 else utc(value, "time").isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _arrow_type(column: Any) -> pa.DataType:
    kind = column.type
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, Date):
        return pa.date32()
    if isinstance(kind, Integer):  # SmallInteger and BigInteger too
        return pa.int64()
    return pa.string()


class RowsDigest:
    """SHA-256 over a table's rows as CSV (no header), fed in batches in row order.

    The same rows give the same bytes whether they come from the released Parquet (at
    intake) or back from the database (at audit): every column goes through one Arrow
    type chosen from its SQL type, and CSV writes each row on its own.
    """

    def __init__(self, table: Table) -> None:
        self.columns = [c.name for c in table.columns if c.name != "row_id"]
        self.schema = pa.schema(
            [pa.field(c.name, _arrow_type(c)) for c in table.columns if c.name != "row_id"]
        )
        self._digest = hashlib.sha256()
        self.rows = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        batch = pa.Table.from_pylist(
            [{c: r.get(c) for c in self.columns} for r in rows], self.schema
        )
        out = io.BytesIO()
        pacsv.write_csv(batch, out, pacsv.WriteOptions(include_header=False))
        self._digest.update(out.getvalue())
        self.rows += len(rows)

    def add_table(self, batch: pa.Table) -> None:
        """Rows already in ``self.schema``'s columns and types (the bulk-insert path)."""
        out = io.BytesIO()
        pacsv.write_csv(batch, out, pacsv.WriteOptions(include_header=False))
        self._digest.update(out.getvalue())
        self.rows += batch.num_rows

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


#: The regional tables a submission leaf digests, by the name its leaf uses.
ROWS_TABLES = (
    ("counts", regional_counts_table),
    ("cases", regional_cases_table),
    ("reporting", regional_reporting_table),
    ("denominators", regional_denominators_table),
)
#: Digested in every submission leaf, rows or not; the others only when the submission
#: has rows there (so leaves written before those tables existed still verify).
ALWAYS_DIGESTED = ("counts", "cases")


def stored_rows_digest(connection: Connection, submission_id: str) -> dict[str, Any]:
    """The digests of a submission's regional rows, read back from the database."""
    found: dict[str, Any] = {}
    for name, table in ROWS_TABLES:
        digest = RowsDigest(table)
        result = connection.execute(
            select(*[table.c[c] for c in digest.columns])
            .where(table.c.submission_id == submission_id)
            .order_by(table.c.row_id)
        )
        while batch := result.fetchmany(10_000):
            digest.add([dict(r._mapping) for r in batch])
        if digest.rows or name in ALWAYS_DIGESTED:
            found[f"{name}_rows"] = digest.rows
            found[f"{name}_sha256"] = digest.hexdigest()
    return found


def submission_entry(
    connection: Connection, submission_id: str, rows: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The leaf of an accepted submission, computed from what the store holds (``rows``:
    the digests of its regional rows when the caller just computed them)."""
    s = submissions_table
    row = connection.execute(select(s).where(s.c.submission_id == submission_id)).one()
    return {
        "kind": "submission",
        "submission_id": row.submission_id,
        "origin_country": row.origin_country,
        "agreement_id": row.agreement_id,
        "agreement_sha256": row.agreement_sha256,
        "manifest_sha256": row.manifest_sha256,
        "revision_of": row.revision_of,
        "received_at": _plain(row.received_at),
        "size_bytes": row.size_bytes,
        **(stored_rows_digest(connection, submission_id) if rows is None else rows),
    }


# -- appending --------------------------------------------------------------------------


def append(
    connection: Connection, kind: str, subject: str, entry: Mapping[str, Any], at: datetime
) -> int | None:
    """Add a leaf in the caller's transaction; its index, or None if already logged.

    Appends are serialized (an advisory lock on PostgreSQL; SQLite's write transactions
    already are), so leaf numbers have no gaps and no two writers take the same one. Call
    it last in a transaction: the lock is held until the commit.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    known = connection.execute(
        select(log_entries_table.c.seq).where(
            log_entries_table.c.kind == kind, log_entries_table.c.subject == subject
        )
    ).first()
    if known is not None:
        return None
    size = connection.execute(select(func.coalesce(func.max(log_entries_table.c.seq), 0)))
    seq = int(size.scalar_one()) + 1
    body = canonical({"kind": kind, **entry})
    connection.execute(
        insert(log_entries_table).values(
            seq=seq,
            kind=kind,
            subject=subject,
            entry=body.decode(),
            leaf_hash=leaf_hash(body).hex(),
            logged_at=utc(at, "the log time"),
        )
    )
    return seq


def append_submission(
    connection: Connection,
    submission_id: str,
    at: datetime,
    rows: Mapping[str, Any] | None = None,
) -> int | None:
    entry = submission_entry(connection, submission_id, rows)
    entry.pop("kind")
    return append(connection, "submission", submission_id, entry, at)


# -- the tree ---------------------------------------------------------------------------


class StoredTree(BaseMerkleTree):  # type: ignore[misc]
    """pymerkle's tree over the leaf hashes in ``log_entries`` (read only: leaves are
    appended through ``append``, in the store's own transactions)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        super().__init__(algorithm="sha256", disable_cache=True)

    def _encode_entry(self, data: bytes) -> bytes:
        return data

    def _store_leaf(self, data: bytes, digest: bytes) -> int:
        raise LogError("read_only", "leaves are appended through hub.log.append")

    def _get_leaf(self, index: int) -> bytes:
        with self._engine.connect() as c:
            found = c.execute(
                select(log_entries_table.c.leaf_hash).where(log_entries_table.c.seq == index)
            ).scalar_one_or_none()
        if found is None:
            raise LogError("unknown_leaf", f"the log has no leaf {index}")
        return bytes.fromhex(found)

    def _get_leaves(self, offset: int, width: int) -> list[bytes]:
        t = log_entries_table
        with self._engine.connect() as c:
            found = c.execute(
                select(t.c.leaf_hash)
                .where(t.c.seq > offset, t.c.seq <= offset + width)
                .order_by(t.c.seq)
            ).scalars()
            leaves = [bytes.fromhex(h) for h in found]
        if len(leaves) != width:
            raise LogError(
                "missing_leaves",
                f"leaves {offset + 1} to {offset + width}: only {len(leaves)} are stored",
            )
        return leaves

    def _get_size(self) -> int:
        with self._engine.connect() as c:
            return int(
                c.execute(select(func.coalesce(func.max(log_entries_table.c.seq), 0))).scalar_one()
            )


def root(engine: Engine, size: int | None = None) -> tuple[int, bytes]:
    """The tree size and its RFC 9162 root hash (of the first ``size`` leaves)."""
    tree = StoredTree(engine)
    n = tree.get_size() if size is None else size
    if n > tree.get_size():
        raise LogError("bad_size", f"the log has {tree.get_size()} leaves, not {n}")
    return n, tree.get_root(n) if n else hashlib.sha256(b"").digest()


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: str  # hex
    issued_at: datetime
    token: str  # compact JWS by a hub signing key


def sign_head(engine: Engine, key: SigningKey, now: datetime) -> TreeHead:
    """Sign the current tree head (kept; the same size twice keeps the first)."""
    size, digest = root(engine)
    existing = head_of(engine, size)
    if existing is not None:
        return existing
    issued = utc(now, "the head's time")
    payload = {
        "log": LOG_ID,
        "tree_size": size,
        "root_hash": digest.hex(),
        "timestamp": format_time(issued.replace(microsecond=0)),
    }
    token = sign_compact(payload, key.private_key, key.kid, HEAD_TYPE)
    head = TreeHead(size, digest.hex(), issued.replace(microsecond=0), token)
    try:
        with engine.begin() as c:
            c.execute(
                insert(tree_heads_table).values(
                    tree_size=size, root_hash=head.root_hash, issued_at=head.issued_at, token=token
                )
            )
    except IntegrityError:
        found = head_of(engine, size)
        assert found is not None
        return found
    return head


def head_of(engine: Engine, size: int | None = None) -> TreeHead | None:
    """The signed head of ``size`` leaves, or the latest one."""
    t = tree_heads_table
    query = select(t)
    query = (
        query.where(t.c.tree_size == size)
        if size is not None
        else query.order_by(t.c.tree_size.desc()).limit(1)
    )
    with engine.connect() as c:
        row = c.execute(query).first()
    if row is None:
        return None
    return TreeHead(int(row.tree_size), row.root_hash, row.issued_at, row.token)


# -- proofs -----------------------------------------------------------------------------


def entry_of(engine: Engine, kind: str, subject: str) -> tuple[int, str] | None:
    """The leaf index and entry text of a logged subject."""
    t = log_entries_table
    with engine.connect() as c:
        row = c.execute(
            select(t.c.seq, t.c.entry).where(t.c.kind == kind, t.c.subject == subject)
        ).first()
    return None if row is None else (int(row.seq), str(row.entry))


def prove_inclusion(engine: Engine, index: int, size: int) -> dict[str, Any]:
    if not 1 <= index <= size:
        raise LogError("bad_size", f"leaf {index} is not in a tree of {size} leaves")
    proof: dict[str, Any] = StoredTree(engine).prove_inclusion(index, size).serialize()
    return proof


def prove_consistency(engine: Engine, first: int, second: int) -> dict[str, Any]:
    if not 1 <= first <= second:
        raise LogError("bad_size", f"cannot prove {first} leaves consistent with {second}")
    proof: dict[str, Any] = StoredTree(engine).prove_consistency(first, second).serialize()
    return proof


def check_inclusion(entry: str, index: int, root_hash: str, size: int, proof: Any) -> bool:
    """Whether ``proof`` shows ``entry`` as leaf ``index`` of the tree with ``root_hash``."""
    try:
        parsed = InclusionProof.deserialize(proof)
        _verify_inclusion(
            leaf_hash(entry.encode()),
            bytes.fromhex(root_hash),
            parsed,
            index=index,
            size=size,
            algorithm="sha256",
        )
    except (InvalidProof, ValueError, KeyError, TypeError):
        return False
    return True


def check_consistency(first: tuple[int, str], second: tuple[int, str], proof: Any) -> bool:
    """Whether ``proof`` shows the tree (size, root) ``second`` extending ``first``."""
    try:
        parsed = ConsistencyProof.deserialize(proof)
        _verify_consistency(
            bytes.fromhex(first[1]),
            bytes.fromhex(second[1]),
            parsed,
            prior_size=first[0],
            later_size=second[0],
            algorithm="sha256",
        )
    except (InvalidProof, ValueError, KeyError, TypeError):
        return False
    return True


def entries(engine: Engine) -> Sequence[Any]:
    t = log_entries_table
    with engine.connect() as c:
        return list(c.execute(select(t).order_by(t.c.seq)))
