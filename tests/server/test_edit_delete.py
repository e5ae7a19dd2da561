"""Edit and delete for everyone, end to end with the Python SDK over real sockets
(SPEC.md §4.2 ``edits``, §4.20): seen live by the other member and by the author's
other device, seen after a resync by a device that was offline, refused to whoever may
not, and gone from the server's database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_e2ee import database_bytes, encrypted, next_decrypted, next_of

from clients.python import EncryptedClient, ServerError, log_in
from clients.python.e2ee import Decrypted, Deleted, Undecryptable, encode_content
from harness import PASSWORD, ServerUnderTest
from protocol.errors import ErrorCode
from protocol.frames import Event, Msg


async def next_deletion(client: EncryptedClient, room: str) -> Event:
    async with asyncio.timeout(10):
        while True:
            item = await client.recv()
            if isinstance(item, Event) and item.room == room and item.kind == "msg.deleted":
                return item


async def test_an_edit_and_a_deletion_reach_members_live_and_offline_devices_later(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path, max_backoff=0.5)
    phone = await log_in(server.url, b.client.account.email, PASSWORD, device_name="phone")
    b2 = EncryptedClient(phone, tmp_path / "b2.key", max_backoff=0.5)
    await b2.connect()
    try:
        room = await a.create_room("group", [b.user_id], name="Staff")
        seq = await a.send_text(room.id, "RDV à 9 h")
        assert (await next_decrypted(b, room.id)).text == "RDV à 9 h"
        assert (await next_decrypted(b2, room.id)).text == "RDV à 9 h"

        # Live: the edit names the original, in the frame and in its plaintext.
        edit = await a.edit_text(room.id, seq, "RDV à 10 h")
        got = await next_decrypted(b, room.id)
        assert (got.seq, got.text, got.edits) == (edit, "RDV à 10 h", seq)
        mine = await next_decrypted(b2, room.id)  # and its other device
        assert (mine.seq, mine.text, mine.edits) == (edit, "RDV à 10 h", seq)

        # b's phone goes offline: it hears nothing of what follows until it is back.
        b2.client.endpoints = ["http://127.0.0.1:9"]
        b2.client.drop_connection()
        edit3 = await a.edit_text(room.id, seq, "RDV à 11 h")
        assert (await next_decrypted(b, room.id)).seq == edit3
        second = await a.send_text(room.id, "Dossier de Mme D.")
        assert (await next_decrypted(b, room.id)).seq == second
        edit2 = await a.edit_text(room.id, second, "Dossier de Mme D. (corrigé)")
        assert (await next_decrypted(b, room.id)).edits == second
        deleted = await a.delete(room.id, second)
        event = await next_deletion(b, room.id)
        assert (event.seq, event.target, event.by) == (deleted, second, a.user_id)

        # Back online: the resync brings, in seq order, the new edit of the first
        # message, the second message and its edit (tombstones by now) and the deletion.
        b2.client.endpoints = [server.url]
        late = await next_decrypted(b2, room.id)
        assert (late.seq, late.text, late.edits) == (edit3, "RDV à 11 h", seq)
        got2 = await next_of(b2, Deleted, room.id)
        assert isinstance(got2, Deleted) and (got2.seq, got2.by) == (second, a.user_id)
        got3 = await next_of(b2, Deleted, room.id)
        assert isinstance(got3, Deleted) and (got3.seq, got3.edits) == (edit2, second)
        assert (await next_deletion(b2, room.id)).target == second

        # A device reading the whole timeline sees tombstones, and the live edit.
        batch = await b.client.sync(room.id, 0, 100)
        messages = {i.seq: i for i in batch.items if isinstance(i, Msg)}
        assert messages[seq].body is not None and messages[edit].edits == seq
        for gone in (second, edit2):
            assert messages[gone].body is None and messages[gone].deleted_by == a.user_id
    finally:
        for client in (a, b, b2):
            await client.close()


async def test_who_may_edit_and_delete(server: ServerUnderTest, tmp_path: Path) -> None:
    owner = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    c = await encrypted(server, tmp_path)
    try:
        room = await owner.create_room("group", [b.user_id, c.user_id])
        by_b = await b.send_text(room.id, "de b")
        for client in (owner, c):
            assert (await next_decrypted(client, room.id)).seq == by_b

        async def refused(call: object, code: ErrorCode) -> None:
            with pytest.raises(ServerError) as err:
                await call  # type: ignore[misc]
            assert err.value.code == code

        await refused(c.edit_text(room.id, by_b, "pas à moi"), ErrorCode.FORBIDDEN)
        await refused(c.delete(room.id, by_b), ErrorCode.FORBIDDEN)  # a plain member
        await refused(b.delete(room.id, 1), ErrorCode.NOT_FOUND)  # an event
        await refused(b.delete(room.id, 999), ErrorCode.NOT_FOUND)
        edit = await b.edit_text(room.id, by_b, "de b, corrigé")
        await refused(b.edit_text(room.id, edit, "edit of an edit"), ErrorCode.NOT_FOUND)
        await refused(b.delete(room.id, edit), ErrorCode.NOT_FOUND)  # delete the original
        # The owner moderates: deletes b's message (and its edit).
        await owner.delete(room.id, by_b)
        await refused(b.delete(room.id, by_b), ErrorCode.NOT_FOUND)  # already deleted
        await refused(b.edit_text(room.id, by_b, "trop tard"), ErrorCode.NOT_FOUND)
        # Someone outside the room.
        stranger = await encrypted(server, tmp_path)
        try:
            await refused(stranger.client.delete_message(room.id, by_b), ErrorCode.FORBIDDEN)
        finally:
            await stranger.close()
    finally:
        for client in (owner, b, c):
            await client.close()


async def test_an_edit_moved_by_the_server_is_refused(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    """The signed plaintext names the edited message too: an edit whose ``send.edits``
    says another message (what a server rewriting the reference would deliver) is
    not shown as an edit of either."""
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    try:
        room = await a.create_room("direct", [b.user_id])
        first = await a.send_text(room.id, "un")
        second = await a.send_text(room.id, "deux")
        for _ in range(2):
            await next_decrypted(b, room.id)
        async with a._lock(room.id):
            body = await a._encrypt(room.id, encode_content("un, corrigé", edits=first))
        await a.client.send(room.id, body, edits=second)
        refused = await next_of(b, Undecryptable, room.id)
        assert isinstance(refused, Undecryptable) and "Tampered" in refused.reason
        plain = await a.send_text(room.id, "trois")
        assert (await next_decrypted(b, room.id)).seq == plain
    finally:
        await a.close()
        await b.close()


async def test_a_deleted_message_leaves_no_ciphertext_in_the_database_files(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    try:
        room = await a.create_room("direct", [b.user_id])
        seq = await a.send_text(room.id, "Mme D., née le 3 mars 1950")
        batch = await a.client.sync(room.id, seq - 1, 1)
        [stored] = batch.items
        assert isinstance(stored, Msg) and stored.body is not None
        await a.delete(room.id, seq)
        assert isinstance(await next_of(b, Decrypted, room.id), Decrypted)  # the original
        await next_deletion(b, room.id)
        store = server.store
        [item] = await store.timeline(room.id, seq - 1, 1)
        assert item.body is None and item.deleted_by == a.user_id
        # The database file, its WAL and shm (secure_delete zeroed the old cell; the
        # deletion checkpointed and truncated the WAL that held the page before).
        files = database_bytes(tmp_path)
        assert room.id.encode() in files  # the right files
        assert stored.body[-48:] not in files
    finally:
        await a.close()
        await b.close()
