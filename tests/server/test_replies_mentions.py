"""Replies and mentions with the Python SDK over real sockets (SPEC.md §11.2): the
quote and the mentioned members travel inside the ciphertext only, and a malformed
one makes the message unreadable rather than half-read."""

from __future__ import annotations

from pathlib import Path

import msgpack
from test_e2ee import database_bytes, encrypted, next_decrypted, next_of

from clients.python.e2ee import Reply, Undecryptable
from harness import ServerUnderTest


async def test_a_reply_quotes_and_mentions_inside_the_ciphertext(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    c = await encrypted(server, tmp_path)
    try:
        room = await a.create_room("group", [b.user_id, c.user_id], name="RCP")
        question = "Qui peut voir Mme Zéphyrine B. jeudi ? " + "détails " * 40
        await a.send_text(room.id, question)
        original = await next_decrypted(b, room.id)
        assert (await next_decrypted(c, room.id)).text == question
        seq = await b.send_text(
            room.id, "@Jeanne Nom d'accord, je la vois.", reply_to=original, mentions=[a.user_id]
        )
        for reader in (a, c):
            got = await next_decrypted(reader, room.id)
            assert got.seq == seq and got.mentions == (a.user_id,)
            assert got.reply == Reply(original.seq, a.user_id, question[:200])
        # Neither the quote nor who is mentioned is visible to the server.
        stored = database_bytes(tmp_path)
        assert room.id.encode() in stored
        for secret in (b"Zephyrine", "Zéphyrine".encode(), b"je la vois"):
            assert secret not in stored
        [item] = await server.store.timeline(room.id, seq - 1, 1)
        assert item.body is not None and a.user_id.encode() not in item.body
    finally:
        for client in (a, b, c):
            await client.close()


async def test_a_malformed_reply_or_mention_is_refused(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    try:
        room = await a.create_room("direct", [b.user_id])
        for bad in (
            {"reply": {"seq": 0, "sender": a.user_id, "text": "x"}},
            {"reply": "seq 3"},
            {"mentions": "everyone"},
            {"mentions": [""]},
            {"mentions": ["u"] * 51},
        ):
            plaintext = msgpack.packb({"v": 1, "type": "text", "text": "hello", **bad})
            async with a._lock(room.id):
                body = await a._encrypt(room.id, plaintext)
            await a.client.send(room.id, body)
            refused = await next_of(b, Undecryptable, room.id)
            assert isinstance(refused, Undecryptable) and "Truncated" in refused.reason, bad
    finally:
        await a.close()
        await b.close()
