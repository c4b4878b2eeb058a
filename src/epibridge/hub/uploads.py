"""Resumable uploads: a large sealed file reaches the hub in pieces that survive a dropped
connection or a hub restart.

The scheme is tus 1.0 core, as simplified by the IETF draft "Resumable Uploads for HTTP":
the node creates an upload with its total length, appends bytes at the offset the hub
reports, and asks the hub to run intake once every byte is there. Each upload is two files
under the spool's ``uploads`` folder: ``<id>.part`` (the bytes so far) and ``<id>.json``
(country, length, creation time). Nothing is kept in memory, so a new hub process on the
same spool carries on where the old one stopped.

The offset is the size of ``<id>.part`` and the file is only ever appended to, in the
order the bytes arrive: whatever part of a chunk was written before a connection dropped
is a correct prefix, and the next append starts after it. An append is flushed and
fsynced before its new offset is reported, so an offset a node was told is durable. One
append at a time per upload (an exclusive ``flock`` on the data file), so two requests
cannot interleave their bytes.

No HTTP here: ``hub/app.py`` maps these calls and their ``UploadError`` reasons to answers.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from epibridge.model.errors import ReasonedError

# An upload nobody finished within this time is deleted (when a new one is created).
UPLOAD_TTL = timedelta(hours=24)
# What ``secrets.token_urlsafe`` produces: nothing else can name an upload (no "/", no "..").
_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_ID_BYTES = 24


class UploadError(ReasonedError):
    """An upload request that cannot be served. ``offset`` is the upload's current offset
    when knowing it helps the node carry on (a mismatch, an incomplete upload)."""

    def __init__(self, reason: str, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(reason, message)


@dataclass(frozen=True)
class Upload:
    upload_id: str
    country: str
    length: int
    offset: int
    created_at: datetime
    data: Path


def _not_found(upload_id: str) -> UploadError:
    # The same answer for an unknown id and for another country's upload: an id is not
    # proof that an upload exists.
    return UploadError(
        "upload_not_found",
        f"no upload {upload_id!r} for this node; it finished, expired or never existed: "
        "create a new upload",
    )


class UploadWriter:
    """Appends one request's bytes to an upload; ``close`` makes them durable and gives the
    new offset. Holds the upload's lock until closed."""

    def __init__(self, handle: IO[bytes], upload: Upload) -> None:
        self._handle = handle
        self._upload = upload
        self.offset = upload.offset

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; refused (``too_large``) if it would pass the declared length,
        in which case nothing of it is written."""
        if self.offset + len(chunk) > self._upload.length:
            raise UploadError(
                "too_large",
                f"upload {self._upload.upload_id} is {self._upload.length} bytes long; these "
                f"bytes would end at {self.offset + len(chunk)}",
                self.offset,
            )
        self._handle.write(chunk)
        self.offset += len(chunk)

    def close(self) -> int:
        """Flush, fsync, unlock; the offset now on disk."""
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self.offset = os.fstat(self._handle.fileno()).st_size
        finally:
            self._handle.close()  # closing the file releases the flock
        return self.offset


class Uploads:
    """The resumable uploads under ``root`` (the hub's ``spool / "uploads"``)."""

    def __init__(self, root: Path, *, max_length: int, ttl: timedelta = UPLOAD_TTL) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"the upload TTL must be positive, got {ttl}")
        self.root = root
        self.max_length = max_length
        self.ttl = ttl

    # -- paths ------------------------------------------------------------------------

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        if not _ID.fullmatch(upload_id):
            raise _not_found(upload_id)
        return self.root / f"{upload_id}.part", self.root / f"{upload_id}.json"

    # -- lifecycle --------------------------------------------------------------------

    def create(self, country: str, length: int, now: datetime) -> Upload:
        """A new, empty upload of ``length`` bytes owned by ``country``. Deletes stale
        uploads first."""
        if length < 1:
            raise UploadError("invalid_request", "Upload-Length must be a positive integer")
        if length > self.max_length:
            raise UploadError(
                "too_large", f"the hub accepts sealed files of at most {self.max_length} bytes"
            )
        self.expire(now)
        self.root.mkdir(parents=True, exist_ok=True)
        upload_id = secrets.token_urlsafe(_ID_BYTES)
        data, sidecar = self._paths(upload_id)
        data.touch(exist_ok=False)
        meta = {"country": country, "length": length, "created_at": now.isoformat()}
        # Written whole under a temporary name, then renamed: a crash leaves no half sidecar.
        handle, name = tempfile.mkstemp(prefix=".upload-meta-", dir=self.root)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(meta, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, sidecar)
        return Upload(upload_id, country, length, 0, now, data)

    def get(self, upload_id: str, country: str) -> Upload:
        """The upload ``upload_id`` of ``country``; ``upload_not_found`` otherwise."""
        data, sidecar = self._paths(upload_id)
        meta = _read_meta(sidecar)
        if meta is None or meta["country"] != country:
            raise _not_found(upload_id)
        try:
            offset = data.stat().st_size
        except FileNotFoundError:
            raise _not_found(upload_id) from None
        return Upload(upload_id, country, meta["length"], offset, meta["created_at"], data)

    def writer(self, upload_id: str, country: str, offset: int) -> UploadWriter:
        """Open the upload for appending at ``offset``, which must be its current offset
        (``offset_mismatch`` otherwise, with the current one)."""
        upload = self.get(upload_id, country)
        handle = upload.data.open("ab")
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UploadError(
                    "upload_busy",
                    f"upload {upload_id} is being written by another request; wait for it to "
                    "finish, then ask for the offset again",
                ) from None
            current = os.fstat(handle.fileno()).st_size
            if offset != current:
                raise UploadError(
                    "offset_mismatch",
                    f"upload {upload_id} is at offset {current}, not {offset}; send the bytes "
                    f"from {current}",
                    current,
                )
        except BaseException:
            handle.close()
            raise
        return UploadWriter(handle, replace(upload, offset=current))

    def complete(self, upload_id: str, country: str) -> Upload:
        """The upload if every byte is there; ``upload_incomplete`` (with the offset) if not."""
        upload = self.get(upload_id, country)
        if upload.offset != upload.length:
            raise UploadError(
                "upload_incomplete",
                f"upload {upload_id} holds {upload.offset} of {upload.length} bytes; send the "
                f"rest from offset {upload.offset}, then submit again",
                upload.offset,
            )
        return upload

    def discard(self, upload_id: str) -> None:
        """Delete the upload (sidecar first: without it the data file is unreachable)."""
        data, sidecar = self._paths(upload_id)
        sidecar.unlink(missing_ok=True)
        data.unlink(missing_ok=True)

    def expire(self, now: datetime) -> list[str]:
        """Delete uploads created ``ttl`` or more before ``now``, and data files left without
        a sidecar for as long; the ids deleted."""
        if not self.root.is_dir():
            return []
        gone: list[str] = []
        for sidecar in self.root.glob("*.json"):
            if not _ID.fullmatch(sidecar.stem):
                continue
            meta = _read_meta(sidecar)
            if meta is not None and meta["created_at"] + self.ttl > now:
                continue
            self.discard(sidecar.stem)
            gone.append(sidecar.stem)
        cutoff = (now - self.ttl).timestamp()
        for data in self.root.glob("*.part"):
            sidecar = data.with_suffix(".json")
            try:
                orphaned = not sidecar.exists() and data.stat().st_mtime <= cutoff
            except FileNotFoundError:
                continue
            if orphaned:
                data.unlink(missing_ok=True)
                gone.append(data.stem)
        return gone


def _read_meta(sidecar: Path) -> dict[str, Any] | None:
    """The sidecar's fields, typed; None if it is missing or unreadable."""
    try:
        raw = json.loads(sidecar.read_text(encoding="utf-8"))
        return {
            "country": str(raw["country"]),
            "length": int(raw["length"]),
            "created_at": datetime.fromisoformat(str(raw["created_at"])),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None
