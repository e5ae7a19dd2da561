"""protocol.crypto: round trips and every error of the exception tree."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.crypto.errors import (
    BadKey,
    BadSignature,
    BadVersion,
    CryptoError,
    Replayed,
    Tampered,
    TooFarAhead,
    Truncated,
    UnknownSession,
)
from protocol.crypto.identity import (
    IdentityKeys,
    device_verified,
    parse_device_signature,
    parse_identity,
    sign_device,
    verify_device,
)
from protocol.crypto.keys import DeviceKeys, parse_bundle
from protocol.crypto.safety import format_safety_number, safety_number
from protocol.crypto.sender_keys import InboundSession, OutboundSession, SenderKey, parse_message
from protocol.crypto.share import open_sealed, open_sender_key, share_sender_key

ROOM = "room-1"


@pytest.fixture
def alice() -> DeviceKeys:
    return DeviceKeys.from_seed(b"a" * 32)


@pytest.fixture
def bob() -> DeviceKeys:
    return DeviceKeys.from_seed(b"b" * 32)


def pair(keys: DeviceKeys, window: int = 2000) -> tuple[OutboundSession, InboundSession]:
    out = OutboundSession(ROOM, "dev-a", keys)
    return out, InboundSession(out.sender_key(), window)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def test_every_error_is_a_crypto_error() -> None:
    for cls in (BadKey, BadVersion, Tampered, Truncated, BadSignature, Replayed):
        assert issubclass(cls, CryptoError)
    assert issubclass(UnknownSession, CryptoError) and issubclass(TooFarAhead, CryptoError)
    assert issubclass(Truncated, Tampered)


# -- keys and bundles


def test_wrong_key_sizes_are_bad_keys() -> None:
    with pytest.raises(BadKey, match="32 bytes, got 31"):
        DeviceKeys(b"x" * 31, b"y" * 32)
    with pytest.raises(BadKey, match="must be bytes"):
        DeviceKeys("x" * 32, b"y" * 32)  # type: ignore[arg-type]
    with pytest.raises(BadKey):
        DeviceKeys.from_seed(b"short")
    with pytest.raises(BadKey):
        OutboundSession(ROOM, "d", DeviceKeys.generate(), chain_key=b"k" * 16)
    with pytest.raises(BadKey):
        SenderKey(ROOM, "d", b"s" * 15, b"c" * 32, 0, b"p" * 32)


def test_bundle_round_trip_and_key_file(alice: DeviceKeys) -> None:
    bundle = alice.bundle("user-a", "dev-a")
    parsed = parse_bundle(bundle.to_bytes())
    assert parsed == bundle and parsed.sign_public == alice.sign_public
    again = DeviceKeys.from_bytes(alice.to_bytes())
    assert again.bundle("user-a", "dev-a").to_bytes() == bundle.to_bytes()
    with pytest.raises(BadVersion):
        DeviceKeys.from_bytes(b"\x02" + alice.to_bytes()[1:])
    with pytest.raises(Truncated):
        DeviceKeys.from_bytes(alice.to_bytes()[:-1])


def test_bundle_errors(alice: DeviceKeys, bob: DeviceKeys) -> None:
    data = alice.bundle("user-a", "dev-a").to_bytes()
    with pytest.raises(BadVersion, match="version 2"):
        parse_bundle(b"\x02" + data[1:])
    with pytest.raises(Truncated):
        parse_bundle(data[:40])
    with pytest.raises(Truncated):
        parse_bundle(b"")
    with pytest.raises(Truncated):
        parse_bundle(data[:65] + b"\xc1")  # not msgpack
    with pytest.raises(BadSignature):
        parse_bundle(flip(data, 10))  # signature byte
    with pytest.raises(BadSignature):
        parse_bundle(data.replace(b"user-a", b"user-b"))  # payload changed
    # A bundle re-signed by another device's key is not valid for alice's key.
    forged = bob.bundle("user-a", "dev-a")
    mixed = forged.to_bytes()[:65] + alice.bundle("user-a", "dev-a").payload()
    with pytest.raises(BadSignature):
        parse_bundle(mixed)


# -- sender keys


def test_messages_round_trip_in_any_order(alice: DeviceKeys) -> None:
    out, inbound = pair(alice)
    messages = [out.encrypt(f"m{i}".encode()) for i in range(5)]
    for i in (3, 0, 4, 1, 2):
        assert inbound.decrypt(ROOM, "dev-a", messages[i]) == (i, f"m{i}".encode())
    header = parse_message(messages[2])
    assert header.index == 2 and header.session_id == out.session_id


def test_replays_are_refused(alice: DeviceKeys) -> None:
    out, inbound = pair(alice)
    m0, m1 = out.encrypt(b"zero"), out.encrypt(b"one")
    inbound.decrypt(ROOM, "dev-a", m1)
    inbound.decrypt(ROOM, "dev-a", m0)  # late, within the window: fine once
    with pytest.raises(Replayed):
        inbound.decrypt(ROOM, "dev-a", m0)
    with pytest.raises(Replayed):
        inbound.decrypt(ROOM, "dev-a", m1)


def test_too_far_ahead(alice: DeviceKeys) -> None:
    out, inbound = pair(alice, window=10)
    for _ in range(11):
        out.encrypt(b"lost")
    with pytest.raises(TooFarAhead):
        inbound.decrypt(ROOM, "dev-a", out.encrypt(b"index 11"))
    ok = OutboundSession(ROOM, "dev-a", alice)
    fresh = InboundSession(ok.sender_key(), window=10)
    for _ in range(10):
        ok.encrypt(b"lost")
    assert fresh.decrypt(ROOM, "dev-a", ok.encrypt(b"index 10")) == (10, b"index 10")


def test_tampering_is_detected_and_changes_nothing(alice: DeviceKeys) -> None:
    out, inbound = pair(alice)
    message = out.encrypt(b"secret")
    for at in (1, 20, 30, len(message) - 70, len(message) - 1):  # sid, index, nonce, ct, sig
        with pytest.raises((BadSignature, UnknownSession, TooFarAhead)):
            inbound.decrypt(ROOM, "dev-a", flip(message, at))
    with pytest.raises(Truncated):
        inbound.decrypt(ROOM, "dev-a", message[:60])
    with pytest.raises(BadVersion):
        inbound.decrypt(ROOM, "dev-a", b"\x07" + message[1:])
    assert inbound.decrypt(ROOM, "dev-a", message) == (0, b"secret")


def test_wrong_key_with_valid_signature_is_tampered(alice: DeviceKeys) -> None:
    out = OutboundSession(ROOM, "dev-a", alice)
    wrong = SenderKey(ROOM, "dev-a", out.session_id, b"w" * 32, 0, alice.sign_public)
    with pytest.raises(Tampered):
        InboundSession(wrong).decrypt(ROOM, "dev-a", out.encrypt(b"x"))


def test_signature_by_another_device(alice: DeviceKeys, bob: DeviceKeys) -> None:
    out = OutboundSession(ROOM, "dev-a", alice)
    key = out.sender_key()
    # The receiver was told dev-a signs with bob's key (or bob forges dev-a's messages).
    claimed = SenderKey(ROOM, "dev-a", key.session_id, key.chain_key, 0, bob.sign_public)
    with pytest.raises(BadSignature):
        InboundSession(claimed).decrypt(ROOM, "dev-a", out.encrypt(b"x"))
    forger = OutboundSession(ROOM, "dev-a", bob, session_id=key.session_id, chain_key=key.chain_key)
    with pytest.raises(BadSignature):
        InboundSession(key).decrypt(ROOM, "dev-a", forger.encrypt(b"forged"))


def test_other_room_device_or_session(alice: DeviceKeys) -> None:
    out, inbound = pair(alice)
    message = out.encrypt(b"x")
    with pytest.raises(UnknownSession):
        inbound.decrypt("room-2", "dev-a", message)
    with pytest.raises(UnknownSession):
        inbound.decrypt(ROOM, "dev-b", message)
    other, _ = pair(alice)
    with pytest.raises(UnknownSession):
        inbound.decrypt(ROOM, "dev-a", other.encrypt(b"y"))


def test_keys_shared_late_do_not_open_earlier_messages(alice: DeviceKeys) -> None:
    out = OutboundSession(ROOM, "dev-a", alice)
    early = out.encrypt(b"before you joined")
    late = InboundSession(out.sender_key())
    with pytest.raises(UnknownSession, match="precedes"):
        late.decrypt(ROOM, "dev-a", early)
    assert late.decrypt(ROOM, "dev-a", out.encrypt(b"after")) == (1, b"after")


# -- sharing


def test_share_round_trip_and_errors(alice: DeviceKeys, bob: DeviceKeys) -> None:
    out = OutboundSession(ROOM, "dev-a", alice)
    a_bundle = alice.bundle("user-a", "dev-a")
    body = share_sender_key(alice, out.sender_key(), "dev-b", bob.box_public)
    key = open_sender_key(open_sealed(bob, "dev-b", a_bundle, body), a_bundle)
    assert key == out.sender_key()
    with pytest.raises(Tampered):
        open_sealed(bob, "dev-b", a_bundle, flip(body, 40))
    with pytest.raises(Truncated):
        open_sealed(bob, "dev-b", a_bundle, body[:30])
    with pytest.raises(BadVersion):
        open_sealed(bob, "dev-b", a_bundle, b"\x09" + body[1:])
    # Meant for another device of bob's: refused.
    with pytest.raises(BadSignature):
        open_sealed(bob, "dev-b2", a_bundle, body)
    # Sealed by someone else than the bundle's device: the box does not open.
    with pytest.raises(Tampered):
        open_sealed(bob, "dev-b", DeviceKeys.generate().bundle("user-a", "dev-a"), body)


def test_share_naming_another_signing_key(alice: DeviceKeys, bob: DeviceKeys) -> None:
    out = OutboundSession(ROOM, "dev-a", alice)
    key = out.sender_key()
    lying = SenderKey(ROOM, "dev-a", key.session_id, key.chain_key, 0, bob.sign_public)
    a_bundle = alice.bundle("user-a", "dev-a")
    body = share_sender_key(alice, lying, "dev-b", bob.box_public)
    with pytest.raises(BadSignature):
        open_sender_key(open_sealed(bob, "dev-b", a_bundle, body), a_bundle)


# -- safety numbers


def test_safety_numbers_are_symmetric_and_change_with_keys(
    alice: DeviceKeys, bob: DeviceKeys
) -> None:
    ab = safety_number("a", [alice.sign_public], "b", [bob.sign_public])
    assert ab == safety_number("b", [bob.sign_public], "a", [alice.sign_public])
    assert len(ab) == 60 and ab.isdigit()
    assert len(format_safety_number(ab).split()) == 12
    new = DeviceKeys.generate()
    assert safety_number("a", [new.sign_public], "b", [bob.sign_public]) != ab
    with pytest.raises(BadKey):
        safety_number("a", [b"short"], "b", [bob.sign_public])


# -- cross-signing (protocol/crypto/identity.py)


def test_identity_signs_its_users_devices_and_nothing_else() -> None:
    identity = IdentityKeys.generate()
    record = parse_identity(identity.record("u1").to_bytes())
    assert (record.user_id, record.public) == ("u1", identity.public)
    bundle = DeviceKeys.generate().bundle("u1", "d1")
    signature = parse_device_signature(sign_device(identity, bundle).to_bytes())
    verify_device(record, bundle, signature)
    assert device_verified(record, bundle, signature)
    # A new bundle of the same device (new keys) is not covered by the old signature.
    replaced = DeviceKeys.generate().bundle("u1", "d1")
    assert not device_verified(record, replaced, signature)
    # Another identity's signature, another user's bundle, a missing one: unverified.
    other = IdentityKeys.generate()
    assert not device_verified(record, bundle, sign_device(other, bundle))
    assert not device_verified(record, DeviceKeys.generate().bundle("u2", "d1"), signature)
    assert not device_verified(None, bundle, signature)
    assert not device_verified(record, bundle, None)
    with pytest.raises(BadSignature):
        verify_device(record, DeviceKeys.generate().bundle("u1", "d2"), signature)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # payload changed: self-signature fails
        lambda b: b"\x02" + b[1:],  # unknown version
        lambda b: b[:40],  # truncated
        lambda b: b"",
        lambda b: b[:65] + b"\xc1",  # not msgpack
        lambda b: b + b"\x00" * 600,  # too long
    ],
)
def test_malformed_identity_records_are_refused(mangle: Any) -> None:
    with pytest.raises(CryptoError):
        parse_identity(mangle(IdentityKeys.generate().record("u1").to_bytes()))


def test_malformed_device_signatures_are_refused() -> None:
    good = sign_device(IdentityKeys.generate(), DeviceKeys.generate().bundle("u", "d")).to_bytes()
    for bad in (b"", b"\x01" * 10, b"\x02" + good[1:], good[:65] + b"\x92\xa1u\xa0", good[:65]):
        with pytest.raises(CryptoError):
            parse_device_signature(bad)
