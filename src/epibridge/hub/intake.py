"""Hub intake: verify a sealed submission before trusting anything in it, keep it once.

The same checks serve the HTTP service and the offline path (a file from a USB stick):

1. the container's protocol version is supported;
2. the envelope opens with one of the hub's encryption keys (chosen by the kid in the
   JWE header) and the manifest's signature verifies with a signing key the trust list
   certifies for the manifest's origin country, valid and unrevoked now;
3. the agreement is known to the hub, its hash is the one the manifest names, both
   parties signed it, it is in force and not stopped, and its sender is the origin;
4. every part decrypts and matches the signed manifest, and is a usable release part
   (``payload.py``: Parquet with the release columns, the policy receipt);
5. the submission id is new, or was stored with exactly this manifest (idempotent); a new
   one is stored with its regional rows in one transaction (``regional.py``).

Every refusal is logged with its machine-readable reason; every acceptance is answered
with a receipt signed by the hub over the exact manifest hash.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from joserfc.jwk import OKPKey
from sqlalchemy import Connection

from epibridge.agreements.signing import SignatureFile, verify_agreement
from epibridge.hub.log import append_submission
from epibridge.hub.payload import Payload, PayloadError, check_payload
from epibridge.hub.regional import insert_payload
from epibridge.hub.store import HubStore, StoredSubmission, SubmissionConflict
from epibridge.model.agreement import Agreement
from epibridge.model.errors import EpibridgeError, ReasonedError
from epibridge.transport.keys import TrustError, format_time, sign_compact
from epibridge.transport.keystore import EncryptionKey, SigningKey
from epibridge.transport.seal import SealError, envelope_kid, open_sealed
from epibridge.transport.trust import TrustList

RECEIPT_TYPE = "epibridge-receipt+jws"


class IntakeRefused(ReasonedError):  # noqa: N818 (a refusal, not a failure)
    """The hub refuses a submission: ``reason`` for machines, the message for people."""


@dataclass(frozen=True)
class Receipt:
    submission_id: str
    manifest_sha256: str
    status: str  # "accepted" or "duplicate"
    received_at: datetime
    token: str  # compact JWS by the hub over the fields above


@dataclass(frozen=True)
class HubContext:
    """What intake needs besides the file: the hub's keys, trust and agreements."""

    store: HubStore
    trust: TrustList
    encryption_keys: Sequence[EncryptionKey]
    signing_key: SigningKey
    agreements: Mapping[str, tuple[Agreement, SignatureFile]]
    spool: Path
    is_stopped: Callable[[str, str], bool] = lambda agreement_id, version: False
    #: The hub's folder (for files an analyst maintains there, e.g. expansion factors).
    folder: Path | None = None


def _recipient(context: HubContext, kid: str) -> OKPKey:
    for key in context.encryption_keys:
        if key.kid == kid:
            return OKPKey.import_key(key.private_key, {"kid": key.kid})
    raise IntakeRefused(
        "unknown_recipient_key",
        f"the submission is sealed to hub key {kid}, which this hub does not hold; "
        "refresh the trust list on the node and seal again",
    )


def _signer(context: HubContext, now: datetime) -> Callable[[str, str], OKPKey]:
    def resolve(country: str, kid: str) -> OKPKey:
        key = context.trust.resolve(country, kid, "sig", now)
        return OKPKey.import_key(key)

    return resolve


def _check_agreement(context: HubContext, manifest: Mapping[str, Any], now: datetime) -> Agreement:
    agreement_id = str(manifest.get("agreement_id", ""))
    found = context.agreements.get(agreement_id)
    if found is None:
        raise IntakeRefused("unknown_agreement", f"the hub holds no agreement {agreement_id!r}")
    agreement, signatures = found
    if manifest.get("agreement_sha256") != agreement.sha256:
        raise IntakeRefused(
            "agreement_mismatch",
            f"the submission names agreement {agreement_id} with another hash than the one "
            "both parties signed; release under the signed version",
        )
    if manifest.get("origin_country") != agreement.sender:
        raise IntakeRefused(
            "origin_mismatch",
            f"agreement {agreement_id} covers data of {agreement.sender}, not of "
            f"{manifest.get('origin_country')}",
        )
    stopped = context.is_stopped(agreement.id, agreement.version)
    try:
        verify_agreement(agreement, signatures, context.trust, now, stopped=stopped)
    except EpibridgeError as exc:
        raise IntakeRefused(
            getattr(exc, "reason", "agreement_refused"), getattr(exc, "message", str(exc))
        ) from None
    return agreement


def _period(manifest: Mapping[str, Any], key: str) -> date | None:
    period = manifest.get("period")
    if isinstance(period, dict) and period.get(key):
        return date.fromisoformat(str(period[key]))
    return None


def _integrate(connection: Connection, submission_id: str, payload: Payload, now: datetime) -> None:
    """In the submission's own transaction: its regional rows, then its log leaf."""
    digests = insert_payload(connection, submission_id, payload)
    append_submission(connection, submission_id, now, digests)


def _fsync(path: Path) -> None:
    """Make the copy durable before the database row that points to it is committed."""
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _sign_receipt(context: HubContext, fields: dict[str, Any]) -> str:
    key = context.signing_key
    return sign_compact(fields, key.private_key, key.kid, RECEIPT_TYPE)


def receive(
    path: Path,
    context: HubContext,
    now: datetime,
    *,
    expected_origin: str | None = None,
    expected_submission_id: str | None = None,
) -> Receipt:
    """Verify and keep the sealed submission at ``path``; a refusal raises ``IntakeRefused``.

    ``expected_origin`` is the country the sender authenticated as (the HTTP service passes
    its access token's subject) and ``expected_submission_id`` the id the request named:
    both are compared with the signed manifest before the store is touched, so a mismatch
    leaves nothing stored (reasons ``token_country_mismatch`` and ``id_mismatch``).
    """
    try:
        return _receive(path, context, now, expected_origin, expected_submission_id)
    except (IntakeRefused, SealError, TrustError) as exc:
        reason = getattr(exc, "reason", "refused")
        message = getattr(exc, "message", str(exc))
        context.store.reject(reason=reason, message=message, at=now)
        if isinstance(exc, IntakeRefused):
            raise
        raise IntakeRefused(reason, message) from None


def _check_expected(
    manifest: Mapping[str, Any], origin: str | None, submission_id: str | None
) -> None:
    claimed = str(manifest.get("origin_country", ""))
    if origin is not None and claimed != origin:
        raise IntakeRefused(
            "token_country_mismatch",
            f"the submission carries data of {claimed}, but the sender authenticated as "
            f"{origin}; a node sends only its own country's submissions",
        )
    named = str(manifest.get("submission_id", ""))
    if submission_id is not None and named != submission_id:
        raise IntakeRefused(
            "id_mismatch",
            f"the request names submission {submission_id}, but the signed manifest says "
            f"{named}; send the file under its own submission id",
        )


def _receive(
    path: Path,
    context: HubContext,
    now: datetime,
    expected_origin: str | None,
    expected_submission_id: str | None,
) -> Receipt:
    recipient = _recipient(context, envelope_kid(path))
    context.spool.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".intake-", dir=context.spool))
    try:
        opened = open_sealed(path, work / "parts", recipient, _signer(context, now))
        manifest = opened.manifest
        _check_expected(manifest, expected_origin, expected_submission_id)
        agreement = _check_agreement(context, manifest, now)
        try:
            payload = check_payload(opened.parts, manifest)
        except PayloadError as exc:
            raise IntakeRefused(exc.reason, exc.message) from None
        submission_id = str(manifest["submission_id"])
        if "/" in submission_id or "\\" in submission_id or submission_id.startswith("."):
            raise IntakeRefused(
                "bad_submission_id", f"submission id {submission_id!r} is not valid"
            )
        # Named by id and manifest hash: a file left by a crash before its row was written
        # can only ever be overwritten by the same content.
        kept = context.spool / f"{submission_id}.{opened.manifest_sha256[:16]}.zip"
        offered = StoredSubmission(
            submission_id=submission_id,
            origin_country=agreement.sender,
            agreement_id=agreement.id,
            agreement_sha256=agreement.sha256,
            manifest_sha256=opened.manifest_sha256,
            manifest=json.dumps(manifest, sort_keys=True),
            signer_kid=opened.signer_kid,
            received_at=now,
            stored_path=str(kept),
            size_bytes=path.stat().st_size,
            revision_of=manifest.get("revision_of"),
            period_from=_period(manifest, "from"),
            period_to=_period(manifest, "to"),
        )
        # The file is in place before the row that points to it, so a crash between the two
        # leaves at worst an unreferenced file, never a row without its file.
        created = not kept.exists()
        if created:
            staged = work / "sealed.zip"
            shutil.copyfile(path, staged)
            _fsync(staged)
            staged.replace(kept)
        try:
            stored, new = context.store.accept(
                offered, lambda con: _integrate(con, submission_id, payload, now)
            )
        except SubmissionConflict as exc:
            if created:
                kept.unlink(missing_ok=True)
            raise IntakeRefused(
                exc.reason,
                f"submission {submission_id} was already received with other content; a "
                "correction needs a new submission id that names the old one in revision_of",
            ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    status = "accepted" if new else "duplicate"
    fields = {
        "submission_id": submission_id,
        "manifest_sha256": stored.manifest_sha256,
        "status": status,
        "received_at": format_time(stored.received_at),
        "hub_kid": context.signing_key.kid,
    }
    token = _sign_receipt(context, fields)
    return Receipt(submission_id, stored.manifest_sha256, status, stored.received_at, token)
