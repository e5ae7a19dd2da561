"""A practitioner's new device reads the whole history (SPEC.md §11.7), over a real
server: approved from another device (the same code on both), or restored from the key
backup with the recovery phrase once no other device is left. Files included, and no
decryption failure reported on the way."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from attachment_kit import pdf_with_text, wait_until

from clients.python import Decrypted, EncryptedClient, ServerError, Undecryptable, log_in, request
from clients.python.backup import WrongPhrase, create_backup
from clients.python.e2ee import EncryptedIncoming, LinkAnswered, LinkRequest
from harness import PASSWORD, ServerUnderTest, practitioner
from protocol.errors import ErrorCode
from protocol.frames import Event


async def until(client: EncryptedClient, kind: type) -> EncryptedIncoming:
    async with asyncio.timeout(10):
        while True:
            item = await client.recv()
            if isinstance(item, kind):
                return item


async def read_history(client: EncryptedClient, room: str, count: int) -> list[Decrypted]:
    """The first ``count`` messages of ``room``, decrypted, in seq order."""
    found: dict[int, Decrypted] = {}
    async with asyncio.timeout(10):
        while len(found) < count:
            item = await client.recv()
            assert not isinstance(item, (LinkRequest,)), item
            if isinstance(item, Decrypted) and item.room == room:
                found[item.seq] = item
            elif not isinstance(item, Event | LinkAnswered):
                raise AssertionError(f"unexpected {item!r}")
    return [found[s] for s in sorted(found)]


async def test_new_device_approved_then_backup_restores_history(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    first = EncryptedClient(alice, tmp_path / "a.key", sessions_file=tmp_path / "a.sessions")
    other = EncryptedClient(bob, tmp_path / "b.key")
    await first.connect()
    await other.connect()
    clients = [first, other]
    try:
        room = (await first.create_room("group", [bob.user_id], name="RCP cardiologie")).id
        pdf = pdf_with_text("Compte rendu Mme Durand")
        await first.send_text(room, "Bonjour, un avis ?")
        await other.send_text(room, "Oui, envoyez le dossier")
        await first.send_file(room, pdf, filename="cr-durand.pdf", text="Le compte rendu")
        history = await read_history(other, room, 3)
        assert [m.text for m in history] == [
            "Bonjour, un avis ?",
            "Oui, envoyez le dossier",
            "Le compte rendu",
        ]
        await read_history(first, room, 3)

        # A second computer: approved from the first, the same code on both screens.
        second_account = await log_in(server.url, alice.email, PASSWORD, device_name="Cabinet")
        assert second_account.device_id != alice.device_id
        second = EncryptedClient(second_account, tmp_path / "s.key")
        clients.append(second)
        await second.connect()
        code = await second.request_link()
        asked = await until(first, LinkRequest)
        assert isinstance(asked, LinkRequest)
        assert asked.device == second.device_id and asked.code == code
        assert len(code) == 14
        assert await first.approve(asked) >= 2  # first's own key and bob's
        answered = await until(second, LinkAnswered)
        assert answered == LinkAnswered(alice.device_id, True)
        # Cross-signed: the approval signed it with the user's identity, which it holds now.
        await other.devices([alice.user_id], refresh=True)
        assert other.device_verified(alice.user_id, second.device_id)
        assert second.identity is not None and first.identity is not None
        assert second.identity.public == first.identity.public
        seen = await read_history(second, room, 3)
        assert [m.text for m in seen] == [m.text for m in history]
        assert await second.fetch_file(seen[2].files[0]) == pdf
        assert second.decrypt_name(room, (await second.client.room(room)).name or b"") == (
            "RCP cardiologie"
        )

        # From then on the keys this device gets reach the approved one too, and the
        # new device is a member device for everyone.
        await other.send_text(room, "Reçu, merci")
        assert [m.text for m in await read_history(second, room, 1)] == ["Reçu, merci"]

        # Backup: set up on the first device (the phrase is shown once), kept up to
        # date as keys arrive, restored on a third device once the others are gone.
        phrase = await first.set_up_backup()
        info = await request(server.url, "GET", "/v1/keys/backup", token=alice.token)
        # first's key, bob's, and the identity secret
        assert info["entries"] == 3 and info["opslimit"] == 3
        # The first device is gone: the second, which got the backup key from it, keeps
        # the backup up to date with a new sender key it alone receives.
        await first.close()
        other.rotate(room)
        await other.send_text(room, "Nouvelle clé, toujours lisible")
        await read_history(second, room, 1)
        await wait_for_entries(server, alice.token, info["entries"] + 1)
        await second.close()
        third_account = await log_in(server.url, alice.email, PASSWORD, device_name="Domicile")
        third = EncryptedClient(third_account, tmp_path / "t.key")
        clients.append(third)
        await third.connect()
        with pytest.raises(WrongPhrase):
            await third.restore_backup("abcd-efgh-ijkm-npqr-stuv-wxyz")
        with pytest.raises(WrongPhrase):
            await third.restore_backup("pas une phrase")
        assert third.identity is None  # not approved by anyone: unverified so far
        assert await third.restore_backup(phrase.upper().replace("-", " ")) == 3
        assert third.identity is not None and third.identity.public == second.identity.public
        await other.devices([alice.user_id], refresh=True)
        assert other.device_verified(alice.user_id, third.device_id)
        restored = await read_history(third, room, 5)
        assert [m.text for m in restored] == [
            "Bonjour, un avis ?",
            "Oui, envoyez le dossier",
            "Le compte rendu",
            "Reçu, merci",
            "Nouvelle clé, toujours lisible",
        ]
        assert await third.fetch_file(restored[2].files[0]) == pdf
        health = await server.store.decryption_health(0)
        assert health.failures == 0, health
        # The server holds ciphertext only: no chain key, no text.
        entries = await server.store.backup_entries(alice.user_id, info["version"], "", 1000)
        chain_keys = {k.chain_key for k in third.export_keys()}
        for _, data in entries:
            assert not any(ck in data for ck in chain_keys)
    finally:
        for client in clients:
            await client.close()


async def wait_for_entries(server: ServerUnderTest, token: str, count: int) -> None:
    """The backup holds ``count`` entries (it is written in the background)."""

    async def enough() -> bool:
        info = await request(server.url, "GET", "/v1/keys/backup", token=token)
        return bool(info["entries"] >= count)

    await wait_until(enough)


async def test_sessions_file_keeps_history_across_restarts(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    sender = EncryptedClient(bob, tmp_path / "b.key")
    reader = EncryptedClient(alice, tmp_path / "a.key", sessions_file=tmp_path / "a.sessions")
    await sender.connect()
    await reader.connect()
    try:
        room = (await sender.create_room("group", [alice.user_id])).id
        await sender.send_text(room, "Avant le redémarrage")
        await read_history(reader, room, 1)
        await reader.close()
        await sender.close()  # the sender is gone: nobody could share the key again
        again = EncryptedClient(alice, tmp_path / "a.key", sessions_file=tmp_path / "a.sessions")
        await again.connect()
        try:
            assert [m.text for m in await read_history(again, room, 1)] == ["Avant le redémarrage"]
        finally:
            await again.close()
        assert (tmp_path / "a.sessions").stat().st_mode & 0o777 == 0o600
    finally:
        await sender.close()


async def test_backup_routes_refuse_bad_input_and_other_accounts(server: ServerUnderTest) -> None:
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)

    async def call(method: str, path: str, body: object = None, token: str = alice.token) -> object:
        return await request(server.url, method, path, json=body, token=token)  # type: ignore[arg-type]

    with pytest.raises(ServerError) as err:
        await call("GET", "/v1/keys/backup")
    assert err.value.code == ErrorCode.NOT_FOUND
    good = {
        "salt": base64.b64encode(bytes(16)).decode(),
        "opslimit": 3,
        "memlimit": 64 << 20,
        "check": base64.b64encode(bytes(32)).decode(),
    }
    for bad in (
        {**good, "salt": "pas du base64!"},
        {**good, "salt": base64.b64encode(bytes(15)).decode()},
        {**good, "opslimit": 0},
        {**good, "opslimit": True},
        {**good, "memlimit": 1 << 30},
        {k: v for k, v in good.items() if k != "check"},
    ):
        with pytest.raises(ServerError) as err:
            await call("PUT", "/v1/keys/backup", bad)
        assert err.value.code == ErrorCode.BAD_FRAME
    created = await call("PUT", "/v1/keys/backup", good)
    assert isinstance(created, dict)
    version = created["version"]
    entry = {"id": "ab" * 16, "data": base64.b64encode(b"\x01" + bytes(60)).decode()}
    for bad_entries in (
        [],
        [{"id": "AB" * 16, "data": entry["data"]}],
        [{"id": "ab" * 16, "data": base64.b64encode(bytes(600)).decode()}],
        [entry] * 501,
        "x",
    ):
        with pytest.raises(ServerError) as err:
            await call(
                "POST", "/v1/keys/backup/entries", {"version": version, "entries": bad_entries}
            )
        assert err.value.code in (ErrorCode.BAD_FRAME, ErrorCode.TOO_LARGE)
    with pytest.raises(ServerError) as err:
        await call("POST", "/v1/keys/backup/entries", {"version": "autre", "entries": [entry]})
    assert err.value.code == ErrorCode.CONFLICT
    assert await call(
        "POST", "/v1/keys/backup/entries", {"version": version, "entries": [entry]}
    ) == {"entries": 1}
    # Owner only: bob sees no backup, and cannot write into alice's version.
    with pytest.raises(ServerError) as err:
        await call("GET", "/v1/keys/backup", token=bob.token)
    assert err.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(ServerError) as err:
        await call("GET", f"/v1/keys/backup/entries?version={version}", token=bob.token)
    assert err.value.code == ErrorCode.NOT_FOUND
    for query in ("version=", f"version={version}&limit=0", f"version={version}&after=zz"):
        with pytest.raises(ServerError) as err:
            await call("GET", f"/v1/keys/backup/entries?{query}")
        assert err.value.code == ErrorCode.BAD_FRAME
    page = await call("GET", f"/v1/keys/backup/entries?version={version}")
    assert page == {"entries": [entry], "next": None}
    # A full request: 500 entries of the largest size (beyond the usual 64 KiB body).
    big = [{"id": f"{n:032x}", "data": base64.b64encode(bytes(512)).decode()} for n in range(500)]
    assert await call("POST", "/v1/keys/backup/entries", {"version": version, "entries": big}) == {
        "entries": 501
    }
    first = await call("GET", f"/v1/keys/backup/entries?version={version}&limit=300")
    assert isinstance(first, dict) and len(first["entries"]) == 300
    rest = await call("GET", f"/v1/keys/backup/entries?version={version}&after={first['next']}")
    assert isinstance(rest, dict) and len(rest["entries"]) == 201 and rest["next"] is None
    with pytest.raises(ServerError):
        await call("GET", "/v1/keys/backup", token="not-a-token")
    assert await call("DELETE", "/v1/keys/backup") is None
    with pytest.raises(ServerError) as err:
        await call("GET", "/v1/keys/backup")
    assert err.value.code == ErrorCode.NOT_FOUND


async def test_refused_device_gets_nothing_and_keys_need_a_link(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    """Refusing answers the new device and sends no key; keys from an own device that is
    not linked are ignored, and the held message is then given up as usual."""
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    first = EncryptedClient(alice, tmp_path / "a.key")
    other = EncryptedClient(bob, tmp_path / "b.key")
    clients = [first, other]
    for client in clients:
        await client.connect()
    try:
        room = (await other.create_room("group", [alice.user_id])).id
        await other.send_text(room, "Secret médical")
        await read_history(first, room, 1)
        # Logged in after the message: only an approval would give it its key.
        second_account = await log_in(server.url, alice.email, PASSWORD, device_name="Inconnu")
        second = EncryptedClient(second_account, tmp_path / "s.key", key_wait=0.4)
        clients.append(second)
        await second.connect()
        await second.request_link()
        asked = await until(first, LinkRequest)
        assert isinstance(asked, LinkRequest)
        await first.refuse(asked)
        answered = await until(second, LinkAnswered)
        assert answered == LinkAnswered(alice.device_id, False)
        assert second.export_keys() == []
        # An own device that is not linked cannot push keys into this one.
        bundle = (await first.devices([alice.user_id], refresh=True))[second.device_id]
        await first._send_keys(second.device_id, bundle, first.export_keys())
        item = await until(second, Undecryptable)  # the message's key never came
        assert isinstance(item, Undecryptable) and "UnknownSession" in item.reason
        assert second.export_keys() == []
    finally:
        for client in clients:
            await client.close()


async def test_a_device_stops_writing_a_replaced_backup(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    """Another phrase made elsewhere replaces the backup: a device holding the old key
    gets 409 backup_replaced on its next upload and stops writing (nothing unreadable
    is stored)."""
    alice = await practitioner(server.url, server.store)
    bob = await practitioner(server.url, server.store)
    first = EncryptedClient(alice, tmp_path / "a.key")
    other = EncryptedClient(bob, tmp_path / "b.key")
    for client in (first, other):
        await client.connect()
    try:
        room = (await other.create_room("group", [alice.user_id])).id
        await first.set_up_backup()
        _, replaced = await create_backup(alice)  # a new phrase, on an unlinked device
        await other.send_text(room, "Après la nouvelle phrase")
        await read_history(first, room, 1)

        async def stopped() -> bool:
            return first._backup is None

        await wait_until(stopped)
        entries = await server.store.backup_entries(alice.user_id, replaced.version, "", 10)
        assert entries == []
    finally:
        for client in (first, other):
            await client.close()
