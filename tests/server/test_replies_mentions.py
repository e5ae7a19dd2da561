"""Replies, mentions and forwarding with the Python SDK over real sockets (SPEC.md
§11.2): the quote and the mentioned members travel inside the ciphertext, a malformed
one makes the message unreadable rather than half-read, and a forwarded file is
encrypted anew for the target room."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
from attachment_kit import pdf_with_text
from test_e2ee import database_bytes, encrypted, next_decrypted, next_of

from clients.python import ServerError
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


async def test_forward_a_file_into_a_patient_case(server: ServerUnderTest, tmp_path: Path) -> None:
    """The client re-encrypts: the case's members read the text and the file, which the
    server holds as a new upload to the case under a new key."""
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    c = await encrypted(server, tmp_path)
    try:
        direct = await b.create_room("direct", [a.user_id])
        report = pdf_with_text("Compte rendu de Mme D.")
        await b.send_file(direct.id, report, filename="cr.pdf", text="Le compte rendu")
        got = await next_decrypted(a, direct.id)
        case = await a.create_room("patient_case", [c.user_id], name="Mme D.")
        seq = await a.forward(got, case.id)
        there = await next_decrypted(c, case.id)
        assert (there.seq, there.text, there.forwarded) == (seq, "Le compte rendu", True)
        [ref] = there.files
        assert ref.name == "cr.pdf" and ref.id != got.files[0].id and ref.key != got.files[0].key
        assert await c.fetch_file(ref) == report
        upload = await server.store.attachment(ref.id)
        assert upload is not None and upload.room_id == case.id and upload.uploader == a.user_id
        # c is not in the direct room: the original file stays out of its reach.
        with pytest.raises(ServerError):
            await c.fetch_file(got.files[0])
    finally:
        for client in (a, b, c):
            await client.close()
