"""stream_aead writes and reads exactly Tink's AES-GCM-HKDF streaming ciphertexts.

Interop both ways with the ``tink`` library around every segment boundary, and rejection
of every kind of tampering: wrong associated data, flipped bytes, truncation, dropped,
swapped or appended segments.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import tink
from tink import JsonKeysetReader, JsonKeysetWriter, cleartext_keyset_handle, streaming_aead

from epibridge.transport import stream_aead
from epibridge.transport.stream_aead import StreamAeadError, StreamingKey

streaming_aead.register()

AAD = b"epibridge-sealed-submission/1|sub-1|counts.parquet"
SEGMENT = 1 << 20
FIRST = SEGMENT - 16 - 40  # first plaintext segment: the header (40) and a tag (16) less
LATER = SEGMENT - 16


def _keyset() -> str:
    handle = tink.new_keyset_handle(streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
    out = io.StringIO()
    cleartext_keyset_handle.write(JsonKeysetWriter(out), handle)
    return out.getvalue()


def _tink(keyset: str) -> streaming_aead.StreamingAead:
    handle = cleartext_keyset_handle.read(JsonKeysetReader(keyset))
    return handle.primitive(streaming_aead.StreamingAead)


def tink_encrypt(keyset: str, data: bytes, tmp_path: Path, aad: bytes = AAD) -> bytes:
    path = tmp_path / "tink.ct"
    with path.open("wb") as dst, _tink(keyset).new_encrypting_stream(dst, aad) as enc:
        enc.write(data)
    return path.read_bytes()


def tink_decrypt(keyset: str, ciphertext: bytes, aad: bytes = AAD) -> bytes:
    with _tink(keyset).new_decrypting_stream(io.BytesIO(ciphertext), aad) as dec:
        return bytes(dec.read())


def ours_encrypt(key: StreamingKey, data: bytes, aad: bytes = AAD) -> bytes:
    segments = stream_aead.encrypt(key, aad, io.BytesIO(data).readinto)
    return b"".join(bytes(ciphertext) for _, ciphertext in segments)


def ours_decrypt(keys: list[StreamingKey], ciphertext: bytes, aad: bytes = AAD) -> bytes:
    return b"".join(
        bytes(p) for p in stream_aead.decrypt(keys, aad, io.BytesIO(ciphertext).readinto)
    )


@pytest.fixture(scope="module")
def keyset() -> str:
    return _keyset()


@pytest.fixture(scope="module")
def keys(keyset: str) -> list[StreamingKey]:
    return stream_aead.keys_from_keyset(keyset)


def test_keyset_parameters_are_read(keys: list[StreamingKey]) -> None:
    (key,) = keys
    assert len(key.key_value) == 32 and key.derived_key_size == 32
    assert key.ciphertext_segment_size == SEGMENT and key.header_size == 40
    assert (key.first_plaintext_segment_size, key.plaintext_segment_size) == (FIRST, LATER)


SIZES = [
    0,
    1,
    FIRST - 1,
    FIRST,
    FIRST + 1,
    FIRST + LATER - 1,
    FIRST + LATER,
    FIRST + LATER + 1,
    FIRST + 2 * LATER,
    5_000_000,
]


@pytest.mark.parametrize("size", SIZES)
def test_interop_both_ways(
    size: int, keyset: str, keys: list[StreamingKey], tmp_path: Path
) -> None:
    data = os.urandom(size)
    ours = ours_encrypt(keys[0], data)
    segments = max(1, -(-(size + 40) // LATER))  # header + plaintext over full segments
    assert len(ours) == 40 + size + 16 * segments
    assert tink_decrypt(keyset, ours) == data
    theirs = tink_encrypt(keyset, data, tmp_path)
    assert ours_decrypt(keys, theirs) == data


def test_interop_with_a_keyset_of_several_keys(tmp_path: Path) -> None:
    """Tink tries each key on the first segment; so does stream_aead."""
    first, second = json.loads(_keyset()), json.loads(_keyset())
    merged = json.dumps(
        {"primaryKeyId": second["primaryKeyId"], "key": first["key"] + second["key"]}
    )
    keys = stream_aead.keys_from_keyset(merged)
    assert keys[0].key_value != keys[1].key_value and len(keys) == 2
    data = os.urandom(FIRST + 10)
    assert ours_decrypt(keys, tink_encrypt(merged, data, tmp_path)) == data
    assert tink_decrypt(merged, ours_encrypt(keys[1], data)) == data  # not the primary
    assert ours_decrypt(keys[1:], ours_encrypt(keys[1], data)) == data
    with pytest.raises(StreamAeadError):
        ours_decrypt(keys[:1], ours_encrypt(keys[1], data))


def _segments(ciphertext: bytes) -> list[bytes]:
    """Header and first segment together, then each later segment."""
    return [ciphertext[:SEGMENT]] + [
        ciphertext[i : i + SEGMENT] for i in range(SEGMENT, len(ciphertext), SEGMENT)
    ]


@pytest.fixture(scope="module")
def stream(keys: list[StreamingKey]) -> tuple[bytes, bytes]:
    """Four segments: three full ones and a short last one."""
    data = os.urandom(FIRST + 2 * LATER + 1000)
    ciphertext = ours_encrypt(keys[0], data)
    assert len(_segments(ciphertext)) == 4
    return data, ciphertext


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def test_the_reference_stream_opens(stream: tuple[bytes, bytes], keys: list[StreamingKey]) -> None:
    data, ciphertext = stream
    assert ours_decrypt(keys, ciphertext) == data


def test_wrong_associated_data_is_rejected(
    stream: tuple[bytes, bytes], keys: list[StreamingKey]
) -> None:
    with pytest.raises(StreamAeadError) as err:
        ours_decrypt(keys, stream[1], aad=AAD + b"x")
    assert err.value.reason == "stream_auth_failed"


def _tampered(ciphertext: bytes) -> dict[str, bytes]:
    s = _segments(ciphertext)
    return {
        "header length byte": _flip(ciphertext, 0),
        "salt": _flip(ciphertext, 5),
        "nonce prefix": _flip(ciphertext, 37),
        "first segment": _flip(ciphertext, 1000),
        "middle segment": _flip(ciphertext, SEGMENT + 12345),
        "a middle tag": _flip(ciphertext, 2 * SEGMENT - 1),
        "last tag": _flip(ciphertext, len(ciphertext) - 1),
        "last segment cut short": ciphertext[:-1],
        "last segment cut inside its tag": ciphertext[: -(len(s[3]) - 10)],
        "last segment dropped": b"".join(s[:3]),
        "middle segment dropped": b"".join([s[0], s[2], s[3]]),
        "middle segments swapped": b"".join([s[0], s[2], s[1], s[3]]),
        "garbage appended": ciphertext + os.urandom(100),
        "one byte appended": ciphertext + b"\x00",
        "only the header": ciphertext[:40],
        "header cut": ciphertext[:20],
        "empty": b"",
    }


@pytest.mark.parametrize(
    "case",
    sorted(_tampered(b"\x00" * (4 * SEGMENT - 100)).keys()),
)
def test_tampering_is_rejected(
    case: str, stream: tuple[bytes, bytes], keys: list[StreamingKey], keyset: str
) -> None:
    data, ciphertext = stream
    bad = _tampered(ciphertext)[case]
    yielded: list[bytes] = []

    def drain() -> None:
        for plaintext in stream_aead.decrypt(keys, AAD, io.BytesIO(bad).readinto):
            yielded.append(bytes(plaintext))

    with pytest.raises(StreamAeadError) as err:
        drain()
    assert err.value.reason in {"stream_auth_failed", "stream_truncated"}
    # What was handed out before the failure is authentic plaintext, and never all of it.
    assert data.startswith(b"".join(yielded)) and len(b"".join(yielded)) < len(data)
    with pytest.raises(tink.TinkError):
        tink_decrypt(keyset, bad)  # Tink agrees: the case really is an invalid stream


def test_keysets_that_are_not_streaming_keys_are_refused() -> None:
    for text in ("not json", "{}", '{"key": []}', json.dumps({"key": [{"status": "ENABLED"}]})):
        with pytest.raises(StreamAeadError) as err:
            stream_aead.keys_from_keyset(text)
        assert err.value.reason == "bad_keyset"
    other = json.loads(_keyset())
    other["key"][0]["keyData"]["typeUrl"] = "type.googleapis.com/google.crypto.tink.AesGcmKey"
    with pytest.raises(StreamAeadError, match="not an AES-GCM-HKDF streaming key"):
        stream_aead.keys_from_keyset(json.dumps(other))
    disabled = json.loads(_keyset())
    disabled["key"][0]["status"] = "DISABLED"
    with pytest.raises(StreamAeadError, match="no enabled key"):
        stream_aead.keys_from_keyset(json.dumps(disabled))
