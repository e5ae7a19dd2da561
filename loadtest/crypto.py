"""``python -m loadtest crypto``: the client-side cost of end-to-end encryption.

- Per message, in rooms of 2, 50 and 500 members: encrypt + sign once with the sender
  key (what a sender pays: flat in the room's size), verify + decrypt (what each
  receiver pays), and the key share a sender pays when it creates or rotates its
  sender key (one Box per other member device: linear, but once per rotation).
- Attachments (if ``protocol.crypto.attachment`` is present): secretstream encrypt and
  decrypt throughput on a 50 MB file, fed in 1 MiB pieces.

Pure CPU, no server: the figures are per core.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from protocol.crypto.keys import DeviceKeys
from protocol.crypto.sender_keys import InboundSession, OutboundSession
from protocol.crypto.share import share_sender_key

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--messages", type=int, default=5000, help="per room size")
    parser.add_argument("--payload", type=int, default=500, help="bytes of plaintext")
    parser.add_argument("--sizes", default="2,50,500", help="room sizes, comma-separated")
    parser.add_argument("--attachment-mb", type=int, default=50)
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")


def _room(size: int, messages: int, payload: bytes) -> dict[str, Any]:
    sender = DeviceKeys.generate()
    members = [DeviceKeys.generate() for _ in range(size - 1)]
    out = OutboundSession("room", "sender-device", sender)
    key = out.sender_key()
    start = time.perf_counter()
    for n, member in enumerate(members):
        share_sender_key(sender, key, f"device-{n}", member.box_public)
    share_s = time.perf_counter() - start
    inbound = InboundSession(key)
    start = time.perf_counter()
    sealed = [out.encrypt(payload) for _ in range(messages)]
    encrypt_s = time.perf_counter() - start
    start = time.perf_counter()
    for message in sealed:
        inbound.decrypt("room", "sender-device", message)
    decrypt_s = time.perf_counter() - start
    return {
        "room_size": size,
        "encrypt_sign_us_per_message": round(encrypt_s / messages * 1e6, 1),
        "verify_decrypt_us_per_message": round(decrypt_s / messages * 1e6, 1),
        "ciphertext_overhead_bytes": len(sealed[0]) - len(payload),
        "key_share_ms_per_rotation": round(share_s * 1000, 2),
    }


def _attachment(megabytes: int) -> dict[str, Any] | None:
    try:
        from protocol.crypto.attachment import Decryptor, Encryptor, new_key
    except ImportError:
        return None
    piece = os.urandom(1024 * 1024)
    key = new_key()
    encryptor = Encryptor(key)
    parts = []
    start = time.perf_counter()
    for _ in range(megabytes):
        parts.append(encryptor.update(piece))
    parts.append(encryptor.finish())
    encrypt_s = time.perf_counter() - start
    decryptor = Decryptor(key)
    start = time.perf_counter()
    size = 0
    for part in parts:
        size += len(decryptor.update(part))
    size += len(decryptor.finish())
    decrypt_s = time.perf_counter() - start
    assert size == megabytes * len(piece)
    return {
        "megabytes": megabytes,
        "encrypt_mb_per_s": round(megabytes / encrypt_s, 1),
        "decrypt_mb_per_s": round(megabytes / decrypt_s, 1),
    }


def run(args: argparse.Namespace) -> int:
    payload = os.urandom(args.payload)
    rooms = [_room(int(s), args.messages, payload) for s in args.sizes.split(",")]
    print(f"sender keys, {args.payload} B messages, {args.messages} per room size (one core):")
    for r in rooms:
        print(
            f"  room of {r['room_size']:>4}: encrypt+sign {r['encrypt_sign_us_per_message']:>6} us"
            f"/message, verify+decrypt {r['verify_decrypt_us_per_message']:>6} us/message,"
            f" key share on rotation {r['key_share_ms_per_rotation']:>7} ms"
            f" (+{r['ciphertext_overhead_bytes']} B/message)"
        )
    attachment = _attachment(args.attachment_mb)
    if attachment is None:
        print("attachments: protocol.crypto.attachment not available")
    else:
        print(
            f"attachment secretstream, {attachment['megabytes']} MB:"
            f" encrypt {attachment['encrypt_mb_per_s']} MB/s,"
            f" decrypt {attachment['decrypt_mb_per_s']} MB/s"
        )
    if args.report:
        args.report.write_text(json.dumps({"rooms": rooms, "attachment": attachment}, indent=2))
    return 0
