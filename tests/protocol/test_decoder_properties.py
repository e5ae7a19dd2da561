"""Every decoder and validator of untrusted input in ``protocol/`` turns any input into
a value or its package's documented error, never another exception (the frame codec
has its own properties in test_codec.py)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.crypto.attachment import AttachmentRef, plaintext_size
from protocol.crypto.errors import CryptoError
from protocol.crypto.keys import DeviceKeys, parse_bundle
from protocol.crypto.sender_keys import parse_message
from protocol.crypto.share import open_sealed, open_sender_key, parse_key_request
from protocol.errors import CloseCode, ErrorCode
from protocol.filetypes import CONTENT_TYPES, sniff
from protocol.frames import Error
from protocol.server_session import ServerSession, State

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=20,
)


def packed(value: Any) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError):
        return b"\xc1"


# Version byte first, then anything: reaches past the version check.
versioned = st.builds(lambda v, rest: bytes([v]) + rest, st.integers(0, 3), st.binary(max_size=160))
versioned_msgpack = st.builds(
    lambda v, value: bytes([v]) + packed(value), st.integers(0, 3), msgpack_values
)
crypto_inputs = st.binary(max_size=200) | versioned | versioned_msgpack


def only_crypto_errors(fn: Any, *args: Any) -> None:
    with contextlib.suppress(CryptoError):
        fn(*args)


@settings(max_examples=300, deadline=None)
@given(crypto_inputs)
def test_key_bundles_parse_or_raise_crypto_errors(data: bytes) -> None:
    only_crypto_errors(parse_bundle, data)


@settings(max_examples=300, deadline=None)
@given(crypto_inputs)
def test_sender_key_messages_parse_or_raise_crypto_errors(data: bytes) -> None:
    only_crypto_errors(parse_message, data)


@settings(max_examples=300, deadline=None)
@given(crypto_inputs)
def test_key_requests_parse_or_raise_crypto_errors(data: bytes) -> None:
    only_crypto_errors(parse_key_request, data)


@settings(max_examples=200, deadline=None)
@given(crypto_inputs)
def test_device_key_files_load_or_raise_crypto_errors(data: bytes) -> None:
    only_crypto_errors(DeviceKeys.from_bytes, data)


_ME = DeviceKeys.from_seed(b"\x01" * 32)
_PEER = DeviceKeys.from_seed(b"\x02" * 32)


@settings(max_examples=200, deadline=None)
@given(crypto_inputs)
def test_sealed_payloads_open_or_raise_crypto_errors(data: bytes) -> None:
    peer_bundle = _PEER.bundle("peer-user", "peer-device")
    only_crypto_errors(open_sealed, _ME, "my-device", peer_bundle, data)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["type", "room", "sid", "ck", "i", "spk", "x"]), msgpack_values)
)
def test_sender_key_payloads_open_or_raise_crypto_errors(payload: dict[str, Any]) -> None:
    peer_bundle = _PEER.bundle("peer-user", "peer-device")
    payload.setdefault("type", "sender_key")
    only_crypto_errors(open_sender_key, payload, peer_bundle)


@settings(max_examples=300, deadline=None)
@given(
    msgpack_values
    | st.dictionaries(st.sampled_from(["v", "id", "k", "h", "s", "t", "n"]), msgpack_values)
)
def test_attachment_references_parse_or_raise_crypto_errors(wire: Any) -> None:
    only_crypto_errors(AttachmentRef.from_wire, wire)


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**70), 2**70))
def test_plaintext_size_is_an_inverse_or_none(size: int) -> None:
    plain = plaintext_size(size)
    assert plain is None or plain >= 0


@given(st.binary(max_size=64))
def test_sniff_names_an_allowed_type_or_nothing(data: bytes) -> None:
    assert sniff(data) in (*CONTENT_TYPES, None)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=80) | msgpack_values.map(packed), max_size=30))
def test_the_session_answers_every_bad_input_and_closes_at_the_limit(inputs: list[bytes]) -> None:
    """Whatever arrives: no exception, an error for each refused message, and 4400 only
    after ``MAX_BAD_FRAMES`` refusals, after which nothing reaches the application."""
    session = ServerSession()
    for data in inputs:
        before = session.state
        outcome = session.receive(data)
        if before is State.CLOSED:
            assert outcome.frame is None and outcome.reply is None
            continue
        assert (outcome.frame is None) != (outcome.reply is None)
        if outcome.reply is not None:
            assert isinstance(outcome.reply, Error) and outcome.reply.code in ErrorCode
        if outcome.close is not None:
            assert outcome.close is CloseCode.BAD_REQUEST and session.state is State.CLOSED
