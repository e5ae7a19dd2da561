"""Room settings end to end (SPEC.md §4.21): set from one device, the user's other
devices told at once and the next welcome carrying them; and offline pushes obey them
("none": never; "mentions": only for a message that mentions the member)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from attachment_kit import wait_until
from test_e2ee import encrypted, next_decrypted

from clients.python import Client, ServerError, log_in
from harness import PASSWORD, ServerUnderTest, running_server, settings_for
from protocol.errors import ErrorCode
from protocol.frames import Event


async def next_settings(client: Client, room: str) -> Event:
    async with asyncio.timeout(10):
        while True:
            item = await client.recv()
            if isinstance(item, Event) and item.kind == "room.settings" and item.room == room:
                return item


async def test_settings_sync_across_devices(server: ServerUnderTest, tmp_path: Path) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    phone = await log_in(server.url, a.client.account.email, PASSWORD, device_name="phone")
    a2 = Client(phone)
    await a2.connect()
    try:
        room = await a.create_room("group", [b.user_id], name="Staff")
        info = await a.client.room_settings(room.id, notify="mentions", pinned=True)
        assert (info.notify, info.pinned, info.archived, info.unread) == (
            "mentions",
            True,
            False,
            False,
        )
        told = await next_settings(a2, room.id)
        assert (told.notify, told.pinned, told.archived, told.unread, told.seq) == (
            "mentions",
            True,
            False,
            False,
            0,
        )
        await a2.room_settings(room.id, archived=True, unread=True)
        back = await next_settings(a.client, room.id)
        assert (back.notify, back.archived, back.unread) == ("mentions", True, True)
        # The other member sees nothing of it, and a later welcome carries it.
        await a.send_text(room.id, "ping")
        assert (await next_decrypted(b, room.id)).text == "ping"
        third = Client(await log_in(server.url, a.client.account.email, PASSWORD))
        await third.connect()
        try:
            welcomed = third.rooms[room.id]
            assert (welcomed.notify, welcomed.pinned, welcomed.archived, welcomed.unread) == (
                "mentions",
                True,
                True,
                True,
            )
            assert (await b.client.room(room.id)).notify == "all"
        finally:
            await third.close()
        with pytest.raises(ServerError) as err:
            await b.client.room_settings("not-a-room", pinned=True)
        assert err.value.code == ErrorCode.FORBIDDEN
    finally:
        for client in (a, b):
            await client.close()
        await a2.close()


async def test_offline_pushes_follow_the_members_settings(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, push_interval_s=0.05)
    async with running_server(settings) as server:
        a = await encrypted(server, tmp_path)
        quiet, muted, loud = [await encrypted(server, tmp_path) for _ in range(3)]
        try:
            room = await a.create_room("group", [quiet.user_id, muted.user_id, loud.user_id])
            await quiet.client.room_settings(room.id, notify="none")
            await muted.client.room_settings(room.id, notify="mentions")
            for client in (quiet, muted, loud):  # all three go offline
                await client.close()
            store = server.store

            async def pushed_to() -> set[str]:
                rows = await store.notifications(channel="push")
                return {n.recipient for n in rows if n.data.get("room") == room.id}

            async def pushed_is(users: set[str]) -> bool:
                return await pushed_to() == users

            await a.send_text(room.id, "sans mention")
            await wait_until(lambda: pushed_is({loud.user_id}))
            # A message mentioning the muted member (and the quiet one) reaches the
            # muted one only; "none" means none.
            await a.send_text(room.id, "@muted @quiet", mentions=[muted.user_id, quiet.user_id])
            await wait_until(lambda: pushed_is({loud.user_id, muted.user_id}))
            # The quiet member would have been in the same flush (one room, one
            # outbox transaction): it was left out.
        finally:
            await a.close()
