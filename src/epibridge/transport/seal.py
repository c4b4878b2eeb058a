"""Sealed submissions: signed by the node, encrypted to the hub, streamed part by part.

The construction (``docs/protocol.md``, decision 0008) uses standard pieces only:

* the **manifest** (RFC 8785 canonical JSON) lists every payload part with its size and
  the SHA-256 of its plaintext, and is signed by the node: a compact JWS with Ed25519;
* each **part** (Parquet tables, the policy receipt) is encrypted with Tink's streaming
  AEAD (AES256_GCM_HKDF_1MB) under a fresh per-submission key, with the submission id
  and part name as associated data, so a part cannot be swapped, reordered or truncated.
  Tink makes the key (its JSON keyset travels in the envelope); the segments are written
  and read by ``stream_aead`` (the same bytes, one whole 1 MiB segment at a time);
* the signed manifest and the streaming key travel in the **envelope**, a compact JWE to
  the hub's X25519 key (ECDH-ES+A256KW, A256GCM);
* the container is an uncompressed zip: ``protocol`` (the version, readable before any
  decryption), ``envelope.jwe`` and ``parts/<name>.tink``.

Parts are read and written in 1 MiB segments, never held whole in memory. Opening writes
each part to a ``.partial`` file and moves it into place only once its stream has been
authenticated to the end and its hash matches the signed manifest.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
import tink
from joserfc import jwe, jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from tink import JsonKeysetWriter, cleartext_keyset_handle, streaming_aead

from epibridge.model.errors import ReasonedError
from epibridge.transport import stream_aead

PROTOCOL = "epibridge-sealed-submission"
VERSION = "1"
SUPPORTED_VERSIONS = ("1",)
MAX_ENVELOPE = 1 << 20
_PROTOCOL_MEMBER = "protocol"
_ENVELOPE_MEMBER = "envelope.jwe"

streaming_aead.register()


class SealError(ReasonedError):
    """A submission that cannot be trusted or read: ``reason`` is machine-readable."""


@dataclass(frozen=True)
class Opened:
    """What a verified submission holds: its manifest and the decrypted part files."""

    manifest: dict[str, Any]
    signer_kid: str
    parts: dict[str, Path]
    manifest_sha256: str


_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="epibridge-sha256")
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="epibridge-write")


def _pump(
    segments: Iterable[tuple[memoryview, memoryview]], write: Callable[[memoryview], Any]
) -> tuple[str, int]:
    """Write each ``(plaintext, output)`` segment's output; returns the SHA-256 (hex) and
    length of the plaintext.

    Three steps overlap: this thread reads and encrypts (or decrypts) segment k+1 while
    a second thread hashes segment k and a third writes it (one write per segment, about
    1 MiB; the zip's CRC-32 is computed in that write). hashlib, zlib and file writes
    release the GIL, so a second core takes the hashing and writing. At most one segment
    is in flight on each side thread: memory stays at a few segments.
    """
    digest, size = hashlib.sha256(), 0
    pending: list[Future[Any]] = []
    try:
        for plaintext, output in segments:
            for future in pending:
                future.result()
            pending = [_HASHER.submit(digest.update, plaintext), _WRITER.submit(write, output)]
            size += len(plaintext)
        for future in pending:
            future.result()
    finally:
        # On an error, let the side threads finish before the caller closes the files.
        for future in pending:
            future.exception()
    return digest.hexdigest(), size


class _StoredMember:
    """Reads an uncompressed zip member straight from the file into the caller's buffers.

    ``zipfile``'s reader copies every piece through its own buffer; this one reads the
    member's bytes in place (``readinto``) and checks their CRC-32 at the end, as zipfile
    does. Authenticity does not rest on it: the stream's AEAD tags do that.
    """

    def __init__(self, z: zipfile.ZipFile, name: str) -> None:
        info = z.getinfo(name)
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise zipfile.BadZipFile(f"{name} is compressed or encrypted, not stored")
        if z.filename is None:
            raise zipfile.BadZipFile("the zip has no file name to read from")
        self._file = open(z.filename, "rb", buffering=0)  # noqa: SIM115 (closed in __exit__)
        try:
            self._file.seek(info.header_offset)
            local = self._file.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"{name}: bad local file header")
            name_size, extra_size = struct.unpack("<HH", local[26:30])
            if self._file.read(name_size) != info.orig_filename.encode(
                "utf-8" if info.flag_bits & 0x800 else "cp437"
            ):
                raise zipfile.BadZipFile(f"{name}: the local header names another member")
            self._file.seek(info.header_offset + 30 + name_size + extra_size)
        except BaseException:
            self._file.close()
            raise
        self._left = info.compress_size
        self._expected_crc = info.CRC
        self._crc = 0
        self._name = name

    def readinto(self, buffer: memoryview) -> int:
        view = buffer[: self._left]
        n = self._file.readinto(view) or 0
        if n == 0 and self._left:
            raise zipfile.BadZipFile(f"{self._name}: the file ends inside the member")
        self._crc = zlib.crc32(view[:n], self._crc)
        self._left -= n
        return n

    def check_crc(self) -> None:
        if self._left or self._crc != self._expected_crc:
            raise zipfile.BadZipFile(f"{self._name}: CRC-32 mismatch")

    def __enter__(self) -> _StoredMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _aad(submission_id: str, name: str) -> bytes:
    return f"{PROTOCOL}/{VERSION}|{submission_id}|{name}".encode()


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(".") or name.endswith(".partial"):
        raise SealError("bad_part_name", f"part name {name!r} is not a plain file name")


def canonical_manifest(manifest: Mapping[str, Any]) -> bytes:
    return rfc8785.dumps(dict(manifest))


def seal(
    out: Path,
    manifest: Mapping[str, Any],
    parts: Sequence[tuple[str, Path]],
    signer: OKPKey,
    recipient: OKPKey,
) -> dict[str, Any]:
    """Write a sealed submission to ``out``; returns the manifest as signed.

    ``manifest`` holds the submission's fields (``submission_id`` required); the part list,
    the recipient's key id and the protocol version are added here. ``signer`` is the
    node's Ed25519 private JWK, ``recipient`` the hub's X25519 public JWK, both with kids.
    """
    submission_id = str(manifest["submission_id"])
    handle = tink.new_keyset_handle(streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
    keyset = io.StringIO()
    cleartext_keyset_handle.write(JsonKeysetWriter(keyset), handle)
    key = stream_aead.keys_from_keyset(keyset.getvalue())[0]
    entries = []
    tmp = out.with_name(out.name + ".partial")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            z.writestr(_PROTOCOL_MEMBER, f"{PROTOCOL}/{VERSION}\n")
            for name, path in parts:
                _check_name(name)
                with (
                    path.open("rb", buffering=0) as src,
                    z.open(f"parts/{name}.tink", "w", force_zip64=True) as member,
                ):
                    segments = stream_aead.encrypt(key, _aad(submission_id, name), src.readinto)
                    sha256, size = _pump(segments, member.write)
                entries.append({"name": name, "size": size, "sha256": sha256})
            signed = {
                **dict(manifest),
                "protocol_version": VERSION,
                "recipient_kid": recipient.kid,
                "parts": entries,
            }
            token = jws.serialize_compact(
                {"alg": "Ed25519", "kid": signer.kid},
                canonical_manifest(signed),
                signer,
                algorithms=["Ed25519"],
            )
            envelope = json.dumps({"manifest_jws": token, "stream_keyset": keyset.getvalue()})
            z.writestr(
                _ENVELOPE_MEMBER,
                jwe.encrypt_compact(
                    {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": recipient.kid},
                    envelope.encode(),
                    recipient,
                ),
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return signed


def protocol_version(path: Path) -> str:
    """The version a sealed file declares (before anything is decrypted)."""
    try:
        with zipfile.ZipFile(path) as z:
            text = z.read(_PROTOCOL_MEMBER).decode("ascii", "replace").strip()
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise SealError("not_a_submission", f"{path}: not a sealed submission ({exc})") from None
    name, _, version = text.partition("/")
    if name != PROTOCOL:
        raise SealError("not_a_submission", f"{path}: not a sealed submission ({text!r})")
    return version


def envelope_kid(path: Path) -> str:
    """The hub key id a sealed file is encrypted to (from the JWE header, unverified)."""
    protocol_version(path)
    try:
        with zipfile.ZipFile(path) as z:
            header = z.read(_ENVELOPE_MEMBER).split(b".", 1)[0]
        value = json.loads(base64.urlsafe_b64decode(header + b"=" * (-len(header) % 4)))
        return str(value["kid"])
    except (KeyError, ValueError, zipfile.BadZipFile, TypeError) as exc:
        raise SealError("bad_envelope", f"the envelope's header cannot be read ({exc})") from None


def _envelope(z: zipfile.ZipFile, recipient: OKPKey) -> dict[str, Any]:
    info = z.getinfo(_ENVELOPE_MEMBER)
    if info.file_size > MAX_ENVELOPE:
        raise SealError("bad_envelope", "the envelope is larger than any valid one")
    registry = jwe.JWERegistry(algorithms=["ECDH-ES+A256KW", "A256GCM"])
    try:
        plain = jwe.decrypt_compact(z.read(_ENVELOPE_MEMBER), recipient, registry=registry)
        envelope = json.loads(plain.plaintext or b"")
    except (JoseError, ValueError, zipfile.BadZipFile) as exc:
        raise SealError(
            "bad_envelope",
            f"the envelope cannot be decrypted with this hub key ({type(exc).__name__}); it "
            "was altered, or sealed for another key",
        ) from None
    if not isinstance(envelope, dict):
        raise SealError("bad_envelope", "the envelope is not a JSON object")
    return envelope


def _verified_manifest(
    envelope: dict[str, Any], resolve_signer: Callable[[str, str], OKPKey]
) -> tuple[dict[str, Any], str, bytes]:
    token = str(envelope.get("manifest_jws", ""))
    try:
        header = jws.extract_compact(token.encode()).protected
        payload = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError) as exc:
        raise SealError("bad_manifest", f"the signed manifest cannot be read ({exc})") from None
    kid = str(header.get("kid", ""))
    origin = str(payload.get("origin_country", ""))
    key = resolve_signer(origin, kid)  # raises for unknown, revoked, expired, other country
    try:
        verified = jws.deserialize_compact(token, key, algorithms=["Ed25519"])
    except JoseError:
        raise SealError(
            "bad_signature", f"the manifest's signature does not verify with key {kid} of {origin}"
        ) from None
    return json.loads(verified.payload), kid, verified.payload


def open_sealed(
    path: Path,
    out_dir: Path,
    recipient: OKPKey,
    resolve_signer: Callable[[str, str], OKPKey],
) -> Opened:
    """Verify and decrypt a sealed submission into ``out_dir``.

    ``recipient`` is the hub's X25519 private JWK; ``resolve_signer(country, kid)`` returns
    the node's verified public key (it refuses unknown, revoked or expired keys and keys of
    another country). Nothing in ``out_dir`` is complete until this returns.
    """
    version = protocol_version(path)
    if version not in SUPPORTED_VERSIONS:
        raise SealError(
            "unsupported_version",
            f"protocol version {version} is not supported; accepted: "
            f"{', '.join(SUPPORTED_VERSIONS)}",
        )
    with zipfile.ZipFile(path) as z:
        envelope = _envelope(z, recipient)
        manifest, kid, signed_bytes = _verified_manifest(envelope, resolve_signer)
        if manifest.get("protocol_version") != version:
            raise SealError("unsupported_version", "the signed version differs from the declared")
        if manifest.get("recipient_kid") != recipient.kid:
            raise SealError("wrong_recipient", "the manifest was signed for another hub key")
        parts = manifest.get("parts") or []
        for entry in parts:
            _check_name(str(entry.get("name", "")))
        expected = {_PROTOCOL_MEMBER, _ENVELOPE_MEMBER} | {f"parts/{e['name']}.tink" for e in parts}
        if set(z.namelist()) != expected:
            raise SealError("member_mismatch", "the file's parts differ from the signed manifest")
        try:
            keys = stream_aead.keys_from_keyset(str(envelope.get("stream_keyset", "")))
        except stream_aead.StreamAeadError as exc:
            raise SealError("bad_envelope", f"the envelope's stream key: {exc.message}") from None
        out_dir.mkdir(parents=True, exist_ok=True)
        written = {
            e["name"]: _open_part(z, keys, manifest["submission_id"], e, out_dir) for e in parts
        }
    return Opened(manifest, kid, written, hashlib.sha256(signed_bytes).hexdigest())


def _open_part(
    z: zipfile.ZipFile,
    keys: list[stream_aead.StreamingKey],
    submission_id: str,
    entry: dict[str, Any],
    out_dir: Path,
) -> Path:
    name = str(entry["name"])
    final = out_dir / name
    tmp = out_dir / f"{name}.partial"
    try:
        with _StoredMember(z, f"parts/{name}.tink") as member, tmp.open("wb") as dst:
            plaintexts = stream_aead.decrypt(keys, _aad(submission_id, name), member.readinto)
            sha256, size = _pump(((p, p) for p in plaintexts), dst.write)
            member.check_crc()
        if sha256 != entry["sha256"] or size != entry["size"]:
            raise SealError("payload_mismatch", f"part {name} differs from the signed manifest")
        os.replace(tmp, final)
    except (stream_aead.StreamAeadError, zipfile.BadZipFile, OSError) as exc:
        raise SealError(
            "payload_mismatch", f"part {name} fails authentication ({type(exc).__name__})"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return final
