"""protocol.crypto.attachment and protocol.filetypes: the attachment stream round-trips
at every chunk boundary, and any damage (tampering, truncation, trailing bytes, chunks
swapped, another key, an unknown version) is an error, never wrong plaintext."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.crypto.attachment import (
    CHUNK,
    MAX_CIPHERTEXT,
    STREAM_HEADER_SIZE,
    AttachmentRef,
    Decryptor,
    Encryptor,
    ciphertext_size,
    decrypt,
    encrypt,
    new_key,
    plaintext_size,
)
from protocol.crypto.errors import BadKey, BadVersion, Tampered, Truncated
from protocol.filetypes import sniff
from protocol.limits import MAX_ATTACHMENT

KEY = bytes(range(32))
# Decrypts to PLAIN under KEY: a client in another language must read it byte for byte.
VECTOR = bytes.fromhex(
    "0182c690c2d9fd6023a293124bb7a8cc465a3d580fef4293bd7d75b19cbe5ab47183429b6c6caa93"
    "edbc811b542aeed47df6854b8b79499d607c0da5bf81823544c4630af26c4694"
)
PLAIN = b"%PDF-1.7 Confr\xc3\xa8re test vector"
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17]


def test_vector() -> None:
    assert decrypt(KEY, VECTOR) == PLAIN
    assert len(VECTOR) == ciphertext_size(len(PLAIN)) == STREAM_HEADER_SIZE + len(PLAIN) + 17


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_and_exact_sizes(size: int) -> None:
    key, data = new_key(), os.urandom(size)
    stream = encrypt(key, data)
    assert len(stream) == ciphertext_size(size)
    assert plaintext_size(len(stream)) == size
    assert decrypt(key, stream) == data
    assert encrypt(key, data) != stream  # a fresh header every time


@settings(max_examples=50, deadline=None)
@given(
    data=st.binary(max_size=3 * CHUNK + 100),
    cuts=st.lists(st.integers(min_value=0, max_value=4 * CHUNK), max_size=6),
)
def test_any_split_of_input_and_output(data: bytes, cuts: list[int]) -> None:
    """Fed in arbitrary pieces, both sides give the same bytes as in one piece."""
    key = new_key()
    encryptor = Encryptor(key)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    stream = b"".join(encryptor.update(data[a:b]) for a, b in itertools.pairwise(bounds))
    stream += encryptor.finish()
    assert len(stream) == ciphertext_size(len(data))
    decryptor = Decryptor(key)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    plain = b"".join(decryptor.update(stream[a:b]) for a, b in itertools.pairwise(bounds))
    assert plain + decryptor.finish() == data


def test_plaintext_size_rejects_impossible_lengths() -> None:
    valid = {ciphertext_size(n) for n in range(0, 2 * CHUNK + 50)}
    for length in range(0, ciphertext_size(2 * CHUNK + 50)):
        assert (plaintext_size(length) is not None) == (length in valid), length
    assert MAX_CIPHERTEXT == ciphertext_size(MAX_ATTACHMENT) == 52_442_425
    assert plaintext_size(MAX_CIPHERTEXT) == MAX_ATTACHMENT


@pytest.mark.parametrize("position", [1, STREAM_HEADER_SIZE, STREAM_HEADER_SIZE + CHUNK, -1])
def test_tampering_is_detected(position: int) -> None:
    stream = bytearray(encrypt(KEY, os.urandom(2 * CHUNK + 5)))
    stream[position] ^= 0x01
    with pytest.raises(Tampered):
        decrypt(KEY, bytes(stream))


def test_another_key_fails() -> None:
    with pytest.raises(Tampered):
        decrypt(new_key(), VECTOR)


@pytest.mark.parametrize(
    "keep",
    [0, 10, STREAM_HEADER_SIZE, STREAM_HEADER_SIZE + 16, STREAM_HEADER_SIZE + CHUNK + 17, -1],
)
def test_truncation_is_detected(keep: int) -> None:
    """Cut anywhere, including exactly after a whole non-final chunk."""
    stream = encrypt(KEY, os.urandom(2 * CHUNK + 5))
    with pytest.raises(Truncated if keep != -1 else Tampered):
        decrypt(KEY, stream[:keep])


def test_a_missing_final_chunk_is_truncation() -> None:
    stream = encrypt(KEY, os.urandom(2 * CHUNK))  # two full chunks, the second FINAL
    with pytest.raises(Truncated):
        decrypt(KEY, stream[: STREAM_HEADER_SIZE + CHUNK + 17])


def test_trailing_bytes_and_swapped_chunks_are_refused() -> None:
    stream = encrypt(KEY, os.urandom(2 * CHUNK + 5))
    with pytest.raises(Tampered):
        decrypt(KEY, stream + b"\x00")
    with pytest.raises(Tampered):
        decrypt(KEY, encrypt(KEY, b"x") + encrypt(KEY, b"y")[STREAM_HEADER_SIZE:])
    body = stream[STREAM_HEADER_SIZE:]
    first, second = body[: CHUNK + 17], body[CHUNK + 17 : 2 * (CHUNK + 17)]
    swapped = stream[:STREAM_HEADER_SIZE] + second + first + body[2 * (CHUNK + 17) :]
    with pytest.raises(Tampered):
        decrypt(KEY, swapped)


def test_unknown_version_and_bad_keys() -> None:
    with pytest.raises(BadVersion):
        decrypt(KEY, b"\x02" + VECTOR[1:])
    for key in (b"", b"k" * 31, "k" * 32):
        with pytest.raises(BadKey):
            Encryptor(key)  # type: ignore[arg-type]
        with pytest.raises(BadKey):
            Decryptor(key)  # type: ignore[arg-type]


def test_encryptor_is_single_use() -> None:
    encryptor = Encryptor(KEY)
    encryptor.finish()
    with pytest.raises(ValueError):
        encryptor.update(b"x")
    with pytest.raises(ValueError):
        encryptor.finish()


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (b"%PDF-1.4\n", "application/pdf"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\x89PNG\n\r\x1a\n", None),  # line endings swapped: a mangled PNG
        (b"\x89PNX\r\n\x1a\n", None),
        (b"MZ\x90\x00", None),  # a Windows executable named .pdf
        (b"\x7fELF\x02", None),
        (b"GIF89a", None),
        (b"%PD", None),
        (b"", None),
    ],
)
def test_sniff(first: bytes, expected: str | None) -> None:
    assert sniff(first) == expected


def test_attachment_ref_round_trip_and_validation() -> None:
    ref = AttachmentRef("AbCdEfGh12345678", KEY, b"s" * 32, 1234, "image/png", "scan.png")
    assert AttachmentRef.from_wire(ref.to_wire()) == ref
    wire = ref.to_wire()
    for change, error in [
        ({"v": 2}, BadVersion),
        ({"key": b"short"}, BadKey),
        ({"sha256": b"x"}, Truncated),
        ({"size": 0}, Truncated),
        ({"size": MAX_ATTACHMENT + 1}, Truncated),
        ({"size": True}, Truncated),
        ({"type": "application/x-msdownload"}, Truncated),
        ({"name": ""}, Truncated),
        ({"id": ""}, Truncated),
    ]:
        with pytest.raises(error):
            AttachmentRef.from_wire({**wire, **change})
    with pytest.raises(Truncated):
        AttachmentRef.from_wire([1, 2])
