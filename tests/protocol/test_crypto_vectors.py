"""The test vectors of ``protocol/vectors``, re-derived byte for byte from their inputs.

The checks recompute with raw PyNaCl calls where they can (not through
``protocol.crypto``), as a client in another language would, and also run the inputs
through ``protocol.crypto`` to show the library reads what it writes.
"""

from __future__ import annotations

from typing import Any

import msgpack
import nacl.bindings
import nacl.hash
import pytest
from nacl.encoding import RawEncoder
from nacl.public import Box, PrivateKey, PublicKey
from nacl.signing import SigningKey

from clients.python.e2ee import Content, Reply, decode_content, encode_content
from protocol.crypto.envelope import header_problem, message_problem, parse_header, wrap_header
from protocol.crypto.identity import (
    IdentityKeys,
    parse_device_signature,
    parse_identity,
    sign_device,
    verify_device,
)
from protocol.crypto.keys import DeviceKeys, parse_bundle
from protocol.crypto.safety import safety_number
from protocol.crypto.sender_keys import InboundSession, SenderKey
from protocol.crypto.share import open_sealed, open_sender_key
from protocol.vectors import NAMES, load
from protocol.vectors.generate import build, render

H = bytes.fromhex


def _b2b(data: bytes, key: bytes, person: bytes, size: int = 32) -> bytes:
    out: bytes = nacl.hash.blake2b(
        data, digest_size=size, key=key, person=person, encoder=RawEncoder
    )
    return out


def _lp(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


@pytest.mark.parametrize("name", NAMES)
def test_files_are_what_the_generator_writes(name: str) -> None:
    from importlib import resources

    text = resources.files("protocol.vectors").joinpath(f"{name}.json").read_text("utf-8")
    assert text == render(build()[name])


@pytest.mark.parametrize("device", load("keys")["devices"], ids=lambda d: d["device"])
def test_device_keys_and_bundles(device: dict[str, Any]) -> None:
    seed = H(device["seed"])
    assert _b2b(b"x25519", seed, b"confrere-seed") == H(device["box_secret"])
    assert _b2b(b"ed25519", seed, b"confrere-seed") == H(device["sign_seed"])
    assert bytes(PrivateKey(H(device["box_secret"])).public_key) == H(device["box_public"])
    signing = SigningKey(H(device["sign_seed"]))
    assert bytes(signing.verify_key) == H(device["sign_public"])
    payload = msgpack.packb(
        [device["user"], device["device"], H(device["box_public"]), H(device["sign_public"])],
        use_bin_type=True,
    )
    signature = signing.sign(b"confrere/bundle\x01" + payload).signature
    assert b"\x01" + signature + payload == H(device["bundle"])
    assert H(device["key_file"]) == b"\x01" + H(device["box_secret"]) + H(device["sign_seed"])
    # and through the library
    keys = DeviceKeys.from_seed(seed)
    assert keys.bundle(device["user"], device["device"]).to_bytes() == H(device["bundle"])
    bundle = parse_bundle(H(device["bundle"]))
    assert (bundle.user_id, bundle.device_id) == (device["user"], device["device"])
    assert DeviceKeys.from_bytes(H(device["key_file"])).to_bytes() == H(device["key_file"])


def test_sender_key_messages() -> None:
    v = load("sender_keys")
    sender = v["sender"]
    signing = SigningKey(H(sender["sign_seed"]))
    chain = H(v["messages"][0]["chain_key"])
    for m in v["messages"]:
        assert chain == H(m["chain_key"])
        key = _b2b(b"\x01", chain, b"confrere-ratchet")
        assert key == H(m["message_key"])
        header = b"\x01" + H(v["session_id"]) + m["index"].to_bytes(4, "big") + H(m["nonce"])
        context = b"confrere/msg" + _lp(v["room"]) + _lp(sender["device"]) + header
        ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            m["plaintext"].encode(), context, H(m["nonce"]), key
        )
        signature = signing.sign(context + ct).signature
        assert header + ct + signature == H(m["message"])
        chain = _b2b(b"\x02", chain, b"confrere-ratchet")
    device = sender["device"].encode()
    assert H(v["header_of_first_message"]) == (
        b"\x01" + len(device).to_bytes(2, "big") + device + H(v["messages"][0]["message"])
    )
    # The library decrypts them, in any order.
    first = v["messages"][0]
    inbound = InboundSession(
        SenderKey(
            v["room"],
            sender["device"],
            H(v["session_id"]),
            H(first["chain_key"]),
            first["index"],
            H(sender["sign_public"]),
        )
    )
    for m in reversed(v["messages"]):
        index, plaintext = inbound.decrypt(v["room"], sender["device"], H(m["message"]))
        assert (index, plaintext) == (m["index"], m["plaintext"].encode())


def test_message_contents() -> None:
    """The plaintext map of a message and of an edit (SPEC.md §11.2), as the Python
    SDK packs and reads it (the web client: tests/web/vectors_check.js)."""
    for c in load("sender_keys")["contents"]:
        reply = Reply(**c["reply"]) if "reply" in c else None
        mentions = tuple(c.get("mentions", ()))
        forwarded = c.get("forwarded", False)
        packed = encode_content(
            c["text"], edits=c.get("edits"), reply=reply, mentions=mentions, forwarded=forwarded
        )
        assert packed == H(c["packed"])
        read = decode_content(H(c["packed"]))
        assert read == Content(c["text"], (), c.get("edits"), reply, mentions, forwarded)


def test_the_server_accepts_the_vectors_shapes_and_refuses_clear_text() -> None:
    """What the server checks of a body, case header or room name (SPEC.md §11): every
    vector message and the vector header pass; clear text and cut ciphertext do not."""
    v = load("sender_keys")
    for m in v["messages"]:
        assert message_problem(H(m["message"])) is None
    header = H(v["header_of_first_message"])
    assert header_problem(header) is None
    assert parse_header(header) == (v["sender"]["device"], H(v["messages"][0]["message"]))
    message = H(v["messages"][0]["message"])
    clear = b"Mme Durand, FA paroxystique"
    for bad in (clear, b"\x01" + clear, message[:-1][:124], b"", b"\x02" + message[1:]):
        assert message_problem(bad) is not None, bad
    for bad in (
        clear,
        b"\x01\x00\x00" + message,  # no device
        b"\x01\x00\x05de",  # cut inside the device id
        b"\x01\x00\x02\xff\xfe" + message,  # not UTF-8
        wrap_header("dev", clear),
        b"\x02" + header[1:],
    ):
        assert header_problem(bad) is not None, bad


def test_sender_key_share() -> None:
    v = load("share")
    sender, recipient = v["sender"], v["recipient"]
    plaintext = H(v["plaintext"])
    assert msgpack.unpackb(plaintext) == {
        "type": "sender_key",
        "from": sender["device"],
        "to": recipient["device"],
        "room": v["room"],
        "sid": H(v["session_id"]),
        "ck": H(v["chain_key"]),
        "i": v["index"],
        "spk": H(sender["sign_public"]),
    }
    box = Box(PrivateKey(H(sender["box_secret"])), PublicKey(H(recipient["box_public"])))
    body = b"\x01" + H(v["nonce"]) + box.encrypt(plaintext, H(v["nonce"])).ciphertext
    assert body == H(v["body"])
    request = b"\x00" + msgpack.packb(
        {"type": "key_request", "room": v["room"], "sid": H(v["session_id"])}
    )
    assert H(v["key_request"]) == request
    keys = DeviceKeys.from_seed(H(recipient["seed"]))
    payload = open_sealed(keys, recipient["device"], parse_bundle(H(sender["bundle"])), body)
    key = open_sender_key(payload, parse_bundle(H(sender["bundle"])))
    assert (key.room_id, key.session_id, key.chain_key) == (
        v["room"],
        H(v["session_id"]),
        H(v["chain_key"]),
    )


@pytest.mark.parametrize("vector", load("safety")["vectors"] + [load("identity")["safety"]])
def test_safety_numbers(vector: dict[str, Any]) -> None:
    def half(user: str, keys: list[str]) -> str:
        material = b"".join(sorted(H(k) for k in keys))
        digest = b"\x01" + _lp(user) + material
        for _ in range(1024):
            digest = _b2b(digest + material, b"", b"confrere-safety", 64)
        return "".join(
            f"{int.from_bytes(digest[5 * k : 5 * k + 5], 'big') % 100_000:05d}" for k in range(6)
        )

    expected = "".join(
        sorted((half(vector["user_a"], vector["keys_a"]), half(vector["user_b"], vector["keys_b"])))
    )
    assert expected == vector["number"] and len(expected) == 60
    keys_a = [H(k) for k in vector["keys_a"]]
    keys_b = [H(k) for k in vector["keys_b"]]
    assert safety_number(vector["user_a"], keys_a, vector["user_b"], keys_b) == vector["number"]
    assert safety_number(vector["user_b"], keys_b, vector["user_a"], keys_a) == vector["number"]


@pytest.mark.parametrize("user", load("identity")["users"], ids=lambda u: u["user"])
def test_identity_keys_and_device_signatures(user: dict[str, Any]) -> None:
    """Cross-signing (SPEC.md §11.1), recomputed with raw PyNaCl, then the library."""
    seed = H(user["seed"])
    assert _b2b(b"identity", seed, b"confrere-seed") == H(user["identity_seed"])
    signing = SigningKey(H(user["identity_seed"]))
    public = bytes(signing.verify_key)
    assert public == H(user["identity_public"])
    assert H(user["identity_file"]) == b"\x01" + H(user["identity_seed"])
    payload = msgpack.packb([user["user"], public], use_bin_type=True)
    record = b"\x01" + signing.sign(b"confrere/identity\x01" + payload).signature + payload
    assert record == H(user["record"])
    for d in user["devices"]:
        assert H(d["bundle"])[65:] == H(d["bundle_payload"])
        message = b"confrere/device\x01" + public + H(d["bundle_payload"])
        tail = msgpack.packb([user["user"], d["device"]], use_bin_type=True)
        assert b"\x01" + signing.sign(message).signature + tail == H(d["signature"])
        # and through the library, both ways
        identity = IdentityKeys.from_bytes(H(user["identity_file"]))
        bundle = parse_bundle(H(d["bundle"]))
        assert sign_device(identity, bundle).to_bytes() == H(d["signature"])
        verify_device(parse_identity(record), bundle, parse_device_signature(H(d["signature"])))
    assert IdentityKeys.from_seed(seed).record(user["user"]).to_bytes() == record
