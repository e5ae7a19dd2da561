"""The SDK's cross-signing and device revocation (SPEC.md §11.1, §9 devices), as a
practitioner lives them: the first device creates the identity, a second device is
unverified to everyone until the first signs it, safety numbers do not move when a
device is added, and a revoked device is cut off at once and reads nothing sent after.
The decryption-failure count (``stats decryption``) stays at zero throughout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from clients.python import Decrypted, EncryptedClient, Undecryptable, log_in
from clients.python.client import KeyDirectory
from clients.python.e2ee import LinkRequest
from clients.python.errors import ConfrereError
from clients.python.rest import Account, request
from harness import PASSWORD, ServerUnderTest, practitioner
from protocol.crypto.errors import UnknownSession
from protocol.frames import Event, Msg


async def encrypted(account: Account, folder: Path) -> EncryptedClient:
    client = EncryptedClient(account, folder / f"{account.device_id}.key")
    await client.connect()
    return client


async def next_event(client: EncryptedClient, kind: str) -> Event:
    async with asyncio.timeout(10):
        while True:
            item = await client.recv()
            if isinstance(item, Event) and item.kind == kind:
                return item


async def next_text(client: EncryptedClient, room: str) -> str:
    async with asyncio.timeout(10):
        while True:
            item = await client.recv()
            if isinstance(item, Decrypted) and item.room == room:
                return item.text
            assert not isinstance(item, Undecryptable), item


async def no_failures(server: ServerUnderTest) -> None:
    health = await server.store.decryption_health(since=0)
    assert health.failures == 0, health  # what `python -m server stats decryption` says


async def test_a_second_device_is_unverified_until_signed_and_numbers_stay(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    laptop = await encrypted(alice, tmp_path)
    b = await encrypted(bob, tmp_path)
    phone: EncryptedClient | None = None
    try:
        # The first device of each user created the identity and signed itself.
        assert laptop.identity is not None and laptop.identity_file.exists()
        assert oct(laptop.identity_file.stat().st_mode & 0o777) == "0o600"
        room = await laptop.create_room("direct", [bob.user_id])
        number = await b.safety_number(alice.user_id)
        assert number == await laptop.safety_number(bob.user_id)
        assert b.device_verified(alice.user_id, alice.device_id)

        # A second device of alice: no identity secret there, so unverified, to bob and
        # to alice's own devices alike; the safety number does not change.
        second = await log_in(server.url, alice.email, PASSWORD, device_name="phone")
        phone = await encrypted(second, tmp_path)
        assert phone.identity is None
        assert await b.safety_number(alice.user_id) == number
        assert not b.device_verified(alice.user_id, second.device_id)
        await laptop.devices([alice.user_id], refresh=True)
        assert not laptop.device_verified(alice.user_id, second.device_id)
        listed = await request(server.url, "GET", "/v1/devices", token=alice.token)
        assert [d["verified"] for d in listed["devices"]] == [True, False]

        # The laptop approves it (what the device approval calls): verified everywhere.
        await laptop.sign_device(second.device_id)
        await b.devices([alice.user_id], refresh=True)
        assert b.device_verified(alice.user_id, second.device_id)
        assert await b.safety_number(alice.user_id) == number
        assert await phone.safety_number(bob.user_id) == number
        listed = await request(server.url, "GET", "/v1/devices", token=alice.token)
        assert [d["verified"] for d in listed["devices"]] == [True, True]
        # Nobody was told of a key change: nothing changed that matters.
        await b.send_text(room.id, "bonjour")
        assert await next_text(laptop, room.id) == "bonjour"
        assert b.key_changes == []
        await no_failures(server)
    finally:
        for client in (laptop, b, phone):
            if client is not None:
                await client.close()


async def test_a_device_without_the_identity_cannot_sign(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    alice = await practitioner(server.url, server.store)
    laptop = await encrypted(alice, tmp_path)
    second = await log_in(server.url, alice.email, PASSWORD, device_name="phone")
    phone = await encrypted(second, tmp_path)
    try:
        with pytest.raises(UnknownSession):
            await phone.sign_device(alice.device_id)
        # Given the secret (what an approval may hand over), it signs itself.
        assert laptop.identity is not None
        await phone.adopt_identity(laptop.identity)
        await laptop.devices([alice.user_id], refresh=True)
        assert laptop.device_verified(alice.user_id, second.device_id)
    finally:
        await laptop.close()
        await phone.close()


async def test_a_revoked_device_is_closed_at_once_and_reads_nothing_after(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    laptop = await encrypted(alice, tmp_path)
    b = await encrypted(bob, tmp_path)
    second = await log_in(server.url, alice.email, PASSWORD, device_name="phone")
    phone = await encrypted(second, tmp_path)
    try:
        room = await b.create_room("group", [alice.user_id], name="RCP")
        await b.send_text(room.id, "avant")
        assert await next_text(phone, room.id) == "avant"  # the phone reads, for now
        assert await next_text(laptop, room.id) == "avant"

        await request(server.url, "DELETE", f"/v1/devices/{second.device_id}", token=alice.token)
        # Its connection closes within a second: the SDK stops (4401 is final).
        with pytest.raises(ConfrereError):
            async with asyncio.timeout(1.0):
                while True:
                    await phone.recv()
        # Bob's client sees the revocation and moves the room to a new sender key.
        revoked = await next_event(b, "device.revoked")
        assert (revoked.user, revoked.device) == (alice.user_id, second.device_id)
        assert second.device_id not in await b.devices([alice.user_id], refresh=True)
        seq = await b.send_text(room.id, "après")
        assert await next_text(laptop, room.id) == "après"
        # The message as stored: the revoked phone's keys cannot decrypt it.
        [item] = await server.store.timeline(room.id, seq - 1, 1)
        assert item.sender and item.device and item.cid and item.body
        msg = Msg(room.id, seq, item.sender, item.device, item.cid, item.ts, item.body)
        refused = phone.try_decrypt(msg)
        assert isinstance(refused, Undecryptable) and "UnknownSession" in refused.reason
        await no_failures(server)
    finally:
        for client in (laptop, b, phone):
            await client.close()


async def test_approving_a_new_device_signs_it(server: ServerUnderTest, tmp_path: Path) -> None:
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    laptop = await encrypted(alice, tmp_path)
    b = await encrypted(bob, tmp_path)
    second = await log_in(server.url, alice.email, PASSWORD, device_name="Cabinet")
    phone = await encrypted(second, tmp_path)
    try:
        await laptop.create_room("direct", [bob.user_id])
        number = await b.safety_number(alice.user_id)
        await phone.request_link()
        async with asyncio.timeout(10):
            asked = await laptop.recv()
            while not isinstance(asked, LinkRequest):
                asked = await laptop.recv()
        await laptop.approve(asked)  # the device approval (SPEC.md §11.7)
        await b.devices([alice.user_id], refresh=True)
        assert b.device_verified(alice.user_id, second.device_id)
        assert await b.safety_number(alice.user_id) == number
        await no_failures(server)
    finally:
        for client in (laptop, b, phone):
            await client.close()


async def test_two_first_devices_at_once_keep_one_identity(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    """Two devices of a user without an identity key connect at the same moment: the
    second one's upload finds the first one's key (conflict), drops its own and waits
    to be approved, unverified."""
    alice = await practitioner(server.url, server.store)
    second = await log_in(server.url, alice.email, PASSWORD, device_name="phone")
    laptop = await encrypted(alice, tmp_path)
    phone = EncryptedClient(second, tmp_path / "phone.key")
    query = phone.client.query_key_directory

    async def before_the_laptop(users: list[str]) -> KeyDirectory:
        found = await query(users)
        return KeyDirectory(found.keys, (), found.signatures)  # as read a moment earlier

    phone.client.query_key_directory = before_the_laptop  # type: ignore[method-assign]
    try:
        await phone.connect()
        assert phone.identity is None and not phone.identity_file.exists()
        assert laptop.identity is not None
        await laptop.devices([alice.user_id], refresh=True)
        assert laptop.device_verified(alice.user_id, alice.device_id)
        assert not laptop.device_verified(alice.user_id, second.device_id)
        assert len(await server.store.identities([alice.user_id])) == 1
    finally:
        await laptop.close()
        await phone.close()
