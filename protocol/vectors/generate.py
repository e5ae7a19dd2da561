"""``python -m protocol.vectors.generate [DIR]``: write the test vectors (deterministic).

Every input derives from fixed seeds, so running it twice writes the same bytes; the
tests (``tests/protocol/test_crypto_vectors.py``) re-derive each output from the
inputs in the files and compare.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgpack

from protocol.crypto.backup import (
    BackupParams,
    backup_check,
    derive_backup_key,
    seal_entry,
    seal_identity_entry,
)
from protocol.crypto.envelope import wrap_header
from protocol.crypto.identity import IdentityKeys, sign_device
from protocol.crypto.keys import DeviceKeys, parse_bundle
from protocol.crypto.linking import link_code, room_keys_payloads
from protocol.crypto.safety import safety_number
from protocol.crypto.sender_keys import OutboundSession, SenderKey, message_key
from protocol.crypto.share import key_request, sender_key_payload, share_sender_key

__all__ = ["build", "main"]


def _seed(n: int) -> bytes:
    return bytes((n * 7 + i) % 256 for i in range(32))


def _device(n: int, user: str, device: str) -> dict[str, Any]:
    keys = DeviceKeys.from_seed(_seed(n))
    return {
        "seed": _seed(n).hex(),
        "user": user,
        "device": device,
        "box_secret": bytes(keys.box).hex(),
        "box_public": keys.box_public.hex(),
        "sign_seed": bytes(keys.signing).hex(),
        "sign_public": keys.sign_public.hex(),
        "bundle": keys.bundle(user, device).to_bytes().hex(),
        "key_file": keys.to_bytes().hex(),
    }


def _identity(n: int, user: str, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """A user's identity key (SPEC.md §11.1, cross-signing) and its signatures of the
    bundles of ``devices`` (that user's)."""
    identity = IdentityKeys.from_seed(_seed(n))
    signed = []
    for d in devices:
        bundle = DeviceKeys.from_seed(bytes.fromhex(d["seed"])).bundle(user, d["device"])
        signed.append(
            {
                "device": d["device"],
                "bundle": bundle.to_bytes().hex(),
                "bundle_payload": bundle.payload().hex(),
                "signature": sign_device(identity, bundle).to_bytes().hex(),
            }
        )
    return {
        "seed": _seed(n).hex(),
        "user": user,
        "identity_seed": bytes(identity.signing).hex(),
        "identity_public": identity.public.hex(),
        "identity_file": identity.to_bytes().hex(),
        "record": identity.record(user).to_bytes().hex(),
        "devices": signed,
    }


def build() -> dict[str, Any]:
    """Every vector file's content, by name."""
    alice = _device(1, "alice-user-0001", "alice-dev-A")
    bob = _device(2, "bob-user-0002", "bob-dev-B")
    carol = _device(3, "carol-user-0003", "carol-dev-C")
    sender = DeviceKeys.from_seed(bytes.fromhex(alice["seed"]))
    room = "room-rcp-0001"
    session_id = bytes(range(16))
    chain_key = bytes(range(32, 64))
    out = OutboundSession(
        room, alice["device"], sender, session_id=session_id, chain_key=chain_key, index=0
    )
    shared = out.sender_key()
    plaintexts = ["Bonjour", "", "Patient: J. Dupont, né le 01/02/1950 — RCP jeudi 14 h", "é" * 300]
    messages = []
    for n, text in enumerate(plaintexts):
        nonce = bytes((n * 31 + i) % 256 for i in range(24))
        before = out.chain_key
        messages.append(
            {
                "index": out.index,
                "chain_key": before.hex(),
                "message_key": message_key(before).hex(),
                "nonce": nonce.hex(),
                "plaintext": text,
                "message": out.encrypt(text.encode("utf-8"), nonce=nonce).hex(),
            }
        )
    share_nonce = bytes(range(100, 124))
    share = {
        "sender": alice,
        "recipient": bob,
        "room": room,
        "session_id": session_id.hex(),
        "chain_key": chain_key.hex(),
        "index": shared.index,
        "nonce": share_nonce.hex(),
        "plaintext": msgpack.packb(
            sender_key_payload(shared, bob["device"]), use_bin_type=True
        ).hex(),
        "body": share_sender_key(
            sender, shared, bob["device"], bytes.fromhex(bob["box_public"]), nonce=share_nonce
        ).hex(),
        "key_request": key_request(room, session_id).hex(),
    }
    # Message plaintexts (SPEC.md 11.2): a plain message, an edit of seq 5, a reply to
    # it that mentions a member and a forwarded message, packed
    # with the keys in this order (what both reference clients produce).
    contents: list[dict[str, Any]] = [
        {"text": "Bonjour", "packed": {"v": 1, "type": "text", "text": "Bonjour"}},
        {
            "text": "RDV à 10 h",
            "edits": 5,
            "packed": {"v": 1, "type": "text", "text": "RDV à 10 h", "edits": 5},
        },
        {
            "text": "@Paul Durand d'accord",
            "reply": {"seq": 5, "sender": "alice-user-0001", "text": "RDV à 10 h"},
            "mentions": ["bob-user-0002"],
            "packed": {
                "v": 1,
                "type": "text",
                "text": "@Paul Durand d'accord",
                "reply": {"seq": 5, "sender": "alice-user-0001", "text": "RDV à 10 h"},
                "mentions": ["bob-user-0002"],
            },
        },
        {
            "text": "Compte rendu",
            "forwarded": True,
            "packed": {"v": 1, "type": "text", "text": "Compte rendu", "forwarded": True},
        },
    ]
    for c in contents:
        c["packed"] = msgpack.packb(c["packed"], use_bin_type=True).hex()
    # A patient-case header or room name (SPEC.md 11.4): the first message, wrapped
    # with its device.
    header = wrap_header(alice["device"], bytes.fromhex(str(messages[0]["message"])))
    safety = []
    for a, b in ((alice, bob), (bob, carol), (alice, carol)):
        safety.append(
            {
                "user_a": a["user"],
                "keys_a": [a["sign_public"]],
                "user_b": b["user"],
                "keys_b": [b["sign_public"]],
                "number": safety_number(
                    a["user"],
                    [bytes.fromhex(a["sign_public"])],
                    b["user"],
                    [bytes.fromhex(b["sign_public"])],
                ),
            }
        )
    two_devices = [alice["sign_public"], carol["sign_public"]]
    safety.append(
        {
            "user_a": alice["user"],
            "keys_a": two_devices,
            "user_b": bob["user"],
            "keys_b": [bob["sign_public"]],
            "number": safety_number(
                alice["user"],
                [bytes.fromhex(k) for k in two_devices],
                bob["user"],
                [bytes.fromhex(bob["sign_public"])],
            ),
        }
    )
    # Cross-signing: alice has two devices (A, and A2 added later), bob one. The safety
    # number is computed over the identity keys: adding A2 does not change it.
    alice_a2 = _device(4, "alice-user-0001", "alice-dev-A2")
    alice_id = _identity(11, alice["user"], [alice, alice_a2])
    bob_id = _identity(12, bob["user"], [bob])
    identity = {
        "version": 1,
        "users": [alice_id, bob_id],
        "extra_devices": [alice_a2],
        "safety": {
            "user_a": alice["user"],
            "keys_a": [alice_id["identity_public"]],
            "user_b": bob["user"],
            "keys_b": [bob_id["identity_public"]],
            "number": safety_number(
                alice["user"],
                [bytes.fromhex(alice_id["identity_public"])],
                bob["user"],
                [bytes.fromhex(bob_id["identity_public"])],
            ),
        },
    }
    return {
        "keys": {"version": 1, "devices": [alice, bob, carol]},
        "identity": identity,
        "sender_keys": {
            "version": 1,
            "room": room,
            "sender": alice,
            "session_id": session_id.hex(),
            "messages": messages,
            "header_of_first_message": header.hex(),
            "contents": contents,
        },
        "share": {"version": 1, **share},
        "safety": {"version": 1, "vectors": safety},
        "backup": _backup(shared, [alice, bob, carol]),
    }


def _backup(key: SenderKey, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """Key backup and device linking (SPEC.md 11.7): the Argon2id derivation with the
    default parameters and cheaper ones, an entry, link codes, a room_keys payload."""
    derivations = []
    for phrase, params in (
        ("abcd-efgh-ijkm-npqr-stuv-wxyz", BackupParams(bytes(range(16)))),
        ("2345 6789 ABCD EFGH ijkm npqr", BackupParams(bytes(range(16, 32)), 2, 8 * 1024 * 1024)),
    ):
        backup_key = derive_backup_key(phrase, params)
        derivations.append(
            {
                "phrase": phrase,
                "salt": params.salt.hex(),
                "opslimit": params.opslimit,
                "memlimit": params.memlimit,
                "key": backup_key.hex(),
                "check": backup_check(backup_key).hex(),
            }
        )
    backup_key = bytes.fromhex(str(derivations[0]["key"]))
    nonce = bytes(range(200, 224))
    entry_id, entry = seal_entry(backup_key, key, nonce=nonce)
    identity_file = IdentityKeys.from_seed(_seed(9)).to_bytes()
    identity_id, identity_entry = seal_identity_entry(backup_key, identity_file, nonce=nonce)
    payloads = room_keys_payloads([key], key.device_id, devices[1]["device"])
    return {
        "version": 1,
        "derivations": derivations,
        "entry": {
            "backup_key": backup_key.hex(),
            "room": key.room_id,
            "device": key.device_id,
            "session_id": key.session_id.hex(),
            "chain_key": key.chain_key.hex(),
            "index": key.index,
            "sign_public": key.sign_public.hex(),
            "nonce": nonce.hex(),
            "id": entry_id,
            "data": entry.hex(),
        },
        "identity_entry": {
            "identity_file": identity_file.hex(),
            "nonce": nonce.hex(),
            "id": identity_id,
            "data": identity_entry.hex(),
        },
        "link_codes": [
            {"bundle": d["bundle"], "code": link_code(parse_bundle(bytes.fromhex(d["bundle"])))}
            for d in devices
        ],
        "room_keys_plaintext": msgpack.packb(payloads[0], use_bin_type=True).hex(),
    }


def render(content: Any) -> str:
    return json.dumps(content, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).resolve().parent
    for name, content in build().items():
        (folder / f"{name}.json").write_text(render(content), encoding="utf-8")
        print(f"wrote {folder / f'{name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
