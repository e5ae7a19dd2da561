"""Key backup and device linking formats (SPEC.md §11.7): the vectors re-derived with
raw PyNaCl calls, and every refusal of a damaged or foreign input."""

from __future__ import annotations

from typing import Any

import msgpack
import nacl.bindings
import nacl.hash
import nacl.pwhash.argon2id
import pytest
from nacl.encoding import RawEncoder

from protocol.crypto.backup import (
    PHRASE_ALPHABET,
    BackupParams,
    backup_check,
    derive_backup_key,
    entry_id,
    identity_entry_id,
    new_phrase,
    normalize_phrase,
    open_entry,
    open_identity_entry,
    seal_entry,
    seal_identity_entry,
)
from protocol.crypto.errors import BadKey, BadVersion, CryptoError, Tampered, Truncated
from protocol.crypto.keys import DeviceKeys, parse_bundle
from protocol.crypto.linking import (
    MAX_KEYS_PLAINTEXT,
    link_code,
    room_keys_from_payload,
    room_keys_payloads,
)
from protocol.crypto.sender_keys import OutboundSession, SenderKey
from protocol.crypto.share import open_sealed, seal
from protocol.limits import MAX_BODY
from protocol.vectors import load

H = bytes.fromhex
V = load("backup")


def _lp(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


@pytest.mark.parametrize("d", V["derivations"])
def test_argon2id_derivation_vectors(d: dict[str, Any]) -> None:
    phrase = "".join(c for c in str(d["phrase"]).lower() if c.isalnum())
    raw = nacl.pwhash.argon2id.kdf(
        32, phrase.encode(), H(str(d["salt"])), opslimit=d["opslimit"], memlimit=d["memlimit"]
    )
    assert raw.hex() == d["key"]
    check = nacl.hash.blake2b(
        b"check", digest_size=32, key=raw, person=b"confrere-backup", encoder=RawEncoder
    )
    assert check.hex() == d["check"]
    params = BackupParams(H(d["salt"]), d["opslimit"], d["memlimit"])
    assert derive_backup_key(str(d["phrase"]), params) == raw


def test_entry_vector_by_hand() -> None:
    e = V["entry"]
    key = H(e["backup_key"])
    data = _lp(e["room"]) + _lp(e["device"]) + H(e["session_id"])
    eid = nacl.hash.blake2b(
        data, digest_size=16, key=key, person=b"confrere-bkp-id", encoder=RawEncoder
    ).hex()
    assert eid == e["id"]
    blob = H(e["data"])
    assert blob[0] == 1 and blob[1:25] == H(e["nonce"])
    plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        blob[25:], b"confrere/backup\x01" + eid.encode(), blob[1:25], key
    )
    assert msgpack.unpackb(plain) == {
        "room": e["room"],
        "device": e["device"],
        "sid": H(e["session_id"]),
        "ck": H(e["chain_key"]),
        "i": e["index"],
        "spk": H(e["sign_public"]),
    }
    opened = open_entry(key, eid, blob)
    assert opened.chain_key == H(e["chain_key"]) and opened.room_id == e["room"]


def test_identity_entry_vector_by_hand() -> None:
    e, ie = V["entry"], V["identity_entry"]
    key = H(e["backup_key"])
    eid = nacl.hash.blake2b(
        b"identity", digest_size=16, key=key, person=b"confrere-bkp-id", encoder=RawEncoder
    ).hex()
    assert eid == ie["id"] == identity_entry_id(key)
    blob = H(ie["data"])
    plain = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        blob[25:], b"confrere/backup\x01" + eid.encode(), blob[1:25], key
    )
    assert msgpack.unpackb(plain) == {"identity": H(ie["identity_file"])}
    assert open_identity_entry(key, blob) == H(ie["identity_file"])
    assert seal_identity_entry(key, H(ie["identity_file"]), nonce=H(ie["nonce"])) == (eid, blob)
    with pytest.raises(Tampered):  # the identity entry is no sender key's, and back
        open_entry(key, eid, blob)
    with pytest.raises(CryptoError):
        open_identity_entry(key, H(e["data"]))


def test_link_code_vectors() -> None:
    for item in V["link_codes"]:
        bundle = parse_bundle(H(item["bundle"]))
        digest = nacl.hash.blake2b(
            b"confrere/link\x01" + bundle.payload(),
            digest_size=32,
            person=b"confrere-link",
            encoder=RawEncoder,
        )
        digits = str(int.from_bytes(digest[:8], "big") % 10**12).zfill(12)
        assert item["code"] == f"{digits[:4]} {digits[4:8]} {digits[8:]}" == link_code(bundle)
    assert len({item["code"] for item in V["link_codes"]}) == len(V["link_codes"])


def test_phrases_are_random_and_normalized() -> None:
    phrases = {new_phrase() for _ in range(50)}
    assert len(phrases) == 50
    for phrase in phrases:
        groups = phrase.split("-")
        assert [len(g) for g in groups] == [4] * 6
        assert set("".join(groups)) <= set(PHRASE_ALPHABET)
        assert normalize_phrase(f"  {phrase.upper().replace('-', ' ')} ") == "".join(groups)
    for bad in ("", "abcd", "abcd-efgh-ijkm-npqr-stuv-wxy0", "abcd-efgh-ijkm-npqr-stuv-wxyz-2"):
        with pytest.raises(BadKey):
            normalize_phrase(bad)


def test_backup_params_bounds() -> None:
    with pytest.raises(BadKey):
        BackupParams(b"short")
    with pytest.raises(BadKey):
        BackupParams(bytes(16), 0)
    with pytest.raises(BadKey):
        BackupParams(bytes(16), 3, 1024 * 1024 * 1024)
    assert len(BackupParams.generate().salt) == 16


def _key(room: str = "room-1", device: str = "dev-1") -> SenderKey:
    return OutboundSession(room, device, DeviceKeys.generate()).sender_key()


def test_entries_refuse_another_key_id_or_damage() -> None:
    backup_key, other = bytes(range(32)), bytes(range(1, 33))
    key = _key()
    eid, blob = seal_entry(backup_key, key)
    assert open_entry(backup_key, eid, blob) == key
    assert eid == entry_id(backup_key, key.room_id, key.device_id, key.session_id)
    assert entry_id(other, key.room_id, key.device_id, key.session_id) != eid
    other_id, other_blob = seal_entry(backup_key, _key("room-2"))
    cases: list[tuple[bytes, str, bytes, type[CryptoError]]] = [
        (other, eid, blob, Tampered),  # a wrong phrase
        (backup_key, other_id, blob, Tampered),  # swapped by the server
        (backup_key, eid, blob[:-1] + bytes([blob[-1] ^ 1]), Tampered),
        (backup_key, eid, b"\x02" + blob[1:], BadVersion),
        (backup_key, eid, b"", Truncated),
        (backup_key, eid, blob[:30], Truncated),
    ]
    for k, i, b, error in cases:
        with pytest.raises(error):
            open_entry(k, i, b)
    assert open_entry(backup_key, other_id, other_blob).room_id == "room-2"
    with pytest.raises(BadKey):
        backup_check(b"short")


def test_room_keys_payloads_fit_a_to_device_body() -> None:
    sender, recipient = DeviceKeys.generate(), DeviceKeys.generate()
    keys = [_key(f"room-{n:058d}", f"device-{n:057d}") for n in range(900)]  # longest ids
    payloads = room_keys_payloads(keys, "dev-A", "dev-B")
    assert len(payloads) > 1
    back: list[SenderKey] = []
    bundle = sender.bundle("user", "dev-A")
    for payload in payloads:
        body = seal(sender, recipient.box_public, payload)
        assert len(body) <= MAX_BODY
        assert len(msgpack.packb(payload["keys"])) <= MAX_KEYS_PLAINTEXT + 5
        back += room_keys_from_payload(open_sealed(recipient, "dev-B", bundle, body))
    assert back == keys
    assert room_keys_payloads([], "a", "b") == []
    for bad in (
        {"type": "sender_key", "keys": []},
        {"type": "room_keys", "keys": "x"},
        {"type": "room_keys", "keys": [{"room": "r"}]},
        {"type": "room_keys", "keys": [{"room": "r", "device": "d", "i": True}]},
    ):
        with pytest.raises(CryptoError):
            room_keys_from_payload(bad)
    with pytest.raises(BadKey):
        room_keys_from_payload(
            {"type": "room_keys", "keys": [{"room": "r", "device": "d", "i": 0, "sid": b"x"}]}
        )
