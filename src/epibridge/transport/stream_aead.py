"""Tink's AES-GCM-HKDF streaming AEAD, framed here on top of ``cryptography``.

Sealed parts are Tink streaming AEAD ciphertexts (key template AES256_GCM_HKDF_1MB,
decision 0008). Tink's Python wrapper reaches that construction through file-object
adapters that move data in 128 KiB pieces with copies at every step, which made sealing
and opening several times slower than the AES-GCM underneath. This module writes the same
bytes with OpenSSL's AES-GCM and HKDF (``cryptography``) and whole segments at a time; only
the framing is written here, as Tink documents it and implements it in every language:

* **header**: 1 byte, the header length; a random salt as long as the derived key; a
  random 7-byte nonce prefix;
* **segment key**: HKDF(hash from the key's parameters, ikm = the key value, salt, info =
  the associated data), as long as the derived key size; the associated data is used there
  only (each segment is AES-GCM with no associated data of its own);
* **segment nonce** (12 bytes): nonce prefix || segment number (4 bytes, big-endian) ||
  1 if it is the last segment else 0;
* **segments**: each ciphertext segment is ``ciphertext_segment_size`` bytes including its
  16-byte tag, the first one shorter by the header; the last one may be shorter (down to
  a bare tag), and an empty plaintext is a header and one empty last segment.

Decryption authenticates every segment before handing it out, so truncation (the last-
segment flag), reordering and dropped segments (the segment number) fail; a caller must
still not trust plaintext until the stream has ended without error. Keys come from Tink's
JSON keyset (``AesGcmHkdfStreamingKey``), so a keyset written by Tink works here and the
other way round; ``tests/transport/test_stream_aead.py`` checks both directions.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from epibridge.model.errors import ReasonedError

TYPE_URL = "type.googleapis.com/google.crypto.tink.AesGcmHkdfStreamingKey"
NONCE_PREFIX_SIZE = 7
TAG_SIZE = 16
# Every buffer is a segment long: a bound keeps memory at a few of them whatever the
# keyset says (Tink's templates use 4 KiB and 1 MiB).
MAX_SEGMENT_SIZE = 1 << 26
_HASHES: dict[int, type[hashes.HashAlgorithm]] = {  # google.crypto.tink.HashType
    1: hashes.SHA1,
    3: hashes.SHA256,
    4: hashes.SHA512,
}


class StreamAeadError(ReasonedError):
    """A keyset this module cannot use, or a ciphertext that does not authenticate."""


@dataclass(frozen=True)
class StreamingKey:
    """One AesGcmHkdfStreamingKey: its key value and parameters, as in the Tink keyset.

    ``hkdf_hash`` is Tink's ``HashType`` number (3 = SHA256). The key value never appears
    in the repr (logs, tracebacks).
    """

    key_value: bytes = field(repr=False)
    derived_key_size: int
    hkdf_hash: int
    ciphertext_segment_size: int

    def __post_init__(self) -> None:
        if self.derived_key_size not in (16, 32):
            raise StreamAeadError("bad_keyset", "derived key size must be 16 or 32 bytes")
        if len(self.key_value) < self.derived_key_size:
            raise StreamAeadError("bad_keyset", "the key value is shorter than the derived key")
        if self.hkdf_hash not in _HASHES:
            raise StreamAeadError("bad_keyset", f"unsupported HKDF hash {self.hkdf_hash}")
        if not self.header_size + TAG_SIZE < self.ciphertext_segment_size <= MAX_SEGMENT_SIZE:
            raise StreamAeadError(
                "bad_keyset",
                f"ciphertext segment size {self.ciphertext_segment_size} is outside "
                f"{self.header_size + TAG_SIZE + 1}..{MAX_SEGMENT_SIZE}",
            )

    @property
    def header_size(self) -> int:
        return 1 + self.derived_key_size + NONCE_PREFIX_SIZE

    @property
    def plaintext_segment_size(self) -> int:
        return self.ciphertext_segment_size - TAG_SIZE

    @property
    def first_plaintext_segment_size(self) -> int:
        return self.plaintext_segment_size - self.header_size

    def _segment_cipher(self, salt: bytes, associated_data: bytes) -> AESGCM:
        hkdf = HKDF(
            algorithm=_HASHES[self.hkdf_hash](),
            length=self.derived_key_size,
            salt=salt,
            info=associated_data,
        )
        return AESGCM(hkdf.derive(self.key_value))


def keys_from_keyset(keyset_json: str) -> list[StreamingKey]:
    """The enabled AES-GCM-HKDF streaming keys of a cleartext Tink JSON keyset, primary first.

    Raises ``StreamAeadError("bad_keyset")`` for anything else (other key types, no
    enabled key, malformed JSON or protobuf).
    """
    from tink.proto import aes_gcm_hkdf_streaming_pb2  # generated protobuf classes

    try:
        keyset = json.loads(keyset_json)
        primary = keyset.get("primaryKeyId")
        entries = sorted(keyset["key"], key=lambda k: k.get("keyId") != primary)
        keys = []
        for entry in entries:
            if entry.get("status") != "ENABLED":
                continue
            data = entry["keyData"]
            if data.get("typeUrl") != TYPE_URL or entry.get("outputPrefixType") != "RAW":
                raise StreamAeadError(
                    "bad_keyset", "the keyset holds a key that is not an AES-GCM-HKDF streaming key"
                )
            proto = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey.FromString(
                base64.b64decode(data["value"], validate=True)
            )
            if proto.version != 0:
                raise StreamAeadError("bad_keyset", f"unknown key version {proto.version}")
            keys.append(
                StreamingKey(
                    key_value=bytes(proto.key_value),
                    derived_key_size=int(proto.params.derived_key_size),
                    hkdf_hash=int(proto.params.hkdf_hash_type),
                    ciphertext_segment_size=int(proto.params.ciphertext_segment_size),
                )
            )
    except StreamAeadError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise StreamAeadError(
            "bad_keyset", f"the stream keyset cannot be read ({type(exc).__name__})"
        ) from None
    except Exception as exc:  # protobuf's DecodeError
        raise StreamAeadError(
            "bad_keyset", f"the stream key cannot be parsed ({type(exc).__name__})"
        ) from None
    if not keys:
        raise StreamAeadError("bad_keyset", "the keyset has no enabled key")
    return keys


ReadInto = Callable[[memoryview], int]
"""Fills the start of a buffer with the stream's next bytes; returns how many (0 at the end),
like ``io.RawIOBase.readinto`` or ``io.BufferedIOBase.readinto``."""

# Buffers in rotation: a yielded segment stays intact while the caller's side threads
# still hash or write it (see ``encrypt`` and ``decrypt``).
_POOL = 3


def _fill(readinto: ReadInto, buffer: bytearray, size: int) -> memoryview:
    """The next ``size`` bytes of the stream (fewer only at its end), read into ``buffer``."""
    view = memoryview(buffer)[:size]
    got = 0
    while got < size and (n := readinto(view[got:])):
        got += n
    return view[:got]


def _nonce(prefix: bytes, number: int, last: bool) -> bytes:
    if number >= 1 << 32:
        raise StreamAeadError("stream_too_long", "a stream has at most 2**32 segments")
    return prefix + number.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def encrypt(
    key: StreamingKey, associated_data: bytes, readinto: ReadInto
) -> Iterator[tuple[memoryview, memoryview]]:
    """Encrypt the stream ``readinto`` reads; yields ``(plaintext, ciphertext)`` per segment.

    The first ciphertext starts with the header, so writing every ciphertext in order
    gives the whole stream (one write per segment). Buffers are reused: a yielded pair
    stays intact while the next pair is made and yielded, and is overwritten once the
    generator is resumed after that (time enough for one segment to be hashed and written
    beside the next one's encryption). Memory: three plaintext and three ciphertext
    segments.
    """
    salt = os.urandom(key.derived_key_size)
    prefix = os.urandom(NONCE_PREFIX_SIZE)
    cipher = key._segment_cipher(salt, associated_data)
    header = bytes([key.header_size]) + salt + prefix
    plain = [bytearray(key.plaintext_segment_size) for _ in range(_POOL)]
    sealed = [bytearray(key.ciphertext_segment_size) for _ in range(_POOL)]
    current = _fill(readinto, plain[0], key.first_plaintext_segment_size)
    number = 0
    while True:
        slot = (number + 1) % _POOL
        following = (
            _fill(readinto, plain[slot], key.plaintext_segment_size) if current else memoryview(b"")
        )
        last = not following
        out = memoryview(sealed[number % _POOL])
        start = 0
        if number == 0:
            out[: len(header)] = header
            start = len(header)
        end = start + len(current) + TAG_SIZE
        cipher.encrypt_into(_nonce(prefix, number, last), current, None, out[start:end])
        yield current, out[:end]
        if last:
            return
        current, number = following, number + 1


def decrypt(
    keys: list[StreamingKey], associated_data: bytes, readinto: ReadInto
) -> Iterator[memoryview]:
    """Decrypt a stream; yields each plaintext segment once it has been authenticated.

    Raises ``StreamAeadError`` (reason ``stream_auth_failed`` or ``stream_truncated``) on
    the first segment that fails: a wrong key or associated data, any altered byte, a
    missing, reordered or appended segment, or a stream cut short. Only a generator run to
    its end means the whole stream is authentic. With several keys, each is tried on the
    first segment (as Tink does) and the first that authenticates it decrypts the rest;
    keys framed differently from the primary (another derived key or segment size) are
    not tried. A yielded segment stays intact while the next one is made and yielded
    (buffers are reused); memory: two ciphertext and three plaintext segments.
    """
    if not keys:
        raise StreamAeadError("bad_keyset", "no key to decrypt with")
    key = keys[0]
    size = key.header_size
    framing = (size, key.ciphertext_segment_size)
    keys = [k for k in keys if (k.header_size, k.ciphertext_segment_size) == framing]
    header = _fill(readinto, bytearray(size), size).tobytes()
    if len(header) < size or header[0] != size:
        raise StreamAeadError("stream_auth_failed", "the stream header is missing or malformed")
    salt, prefix = header[1 : 1 + key.derived_key_size], header[1 + key.derived_key_size :]
    sealed = [bytearray(key.ciphertext_segment_size) for _ in range(2)]
    plain = [bytearray(key.plaintext_segment_size) for _ in range(_POOL)]
    current = _fill(readinto, sealed[0], key.ciphertext_segment_size - size)
    number = 0
    cipher: AESGCM | None = None
    while True:
        if len(current) < TAG_SIZE:
            raise StreamAeadError("stream_truncated", "the stream ends inside a segment")
        following = _fill(readinto, sealed[(number + 1) % 2], key.ciphertext_segment_size)
        last = not following
        nonce = _nonce(prefix, number, last)
        out = memoryview(plain[number % _POOL])[: len(current) - TAG_SIZE]
        if cipher is None:
            for candidate in keys:
                attempt = candidate._segment_cipher(salt, associated_data)
                try:
                    attempt.decrypt_into(nonce, current, None, out)
                except InvalidTag:
                    continue
                cipher = attempt
                break
            else:
                raise StreamAeadError(
                    "stream_auth_failed",
                    "the first segment does not authenticate: wrong key or associated data, "
                    "or the stream was altered",
                )
        else:
            try:
                cipher.decrypt_into(nonce, current, None, out)
            except InvalidTag:
                raise StreamAeadError(
                    "stream_auth_failed",
                    f"segment {number} does not authenticate: the stream was altered, "
                    "reordered or cut",
                ) from None
        yield out
        if last:
            return
        current, number = following, number + 1
