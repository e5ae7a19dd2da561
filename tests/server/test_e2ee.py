"""End-to-end encryption over real sockets: the key directory, encrypted rooms of two
and three members, what the server stores, and key rotation on removal."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import msgpack
import pytest
from attachment_kit import pdf_with_text

from clients.python import Decrypted, EncryptedClient, ServerError, Undecryptable, log_in
from clients.python.e2ee import EncryptedIncoming, KeysChanged, _Outbound
from clients.python.errors import AttachmentCorrupt, AttachmentRefused
from harness import PASSWORD, ServerUnderTest, connected, practitioner, running_server, settings_for
from protocol.crypto.attachment import ciphertext_size
from protocol.crypto.identity import IdentityKeys, sign_device
from protocol.crypto.keys import DeviceKeys, parse_bundle
from protocol.crypto.sender_keys import OutboundSession
from protocol.errors import ErrorCode
from protocol.frames import Event, Msg
from storage.blobs.local import LocalBlobStore


async def encrypted(server: ServerUnderTest, tmp_path: Path, **options: object) -> EncryptedClient:
    account = await practitioner(server.url, server.store)
    client = EncryptedClient(account, tmp_path / f"{account.device_id}.key", **options)  # type: ignore[arg-type]
    await client.connect()
    return client


def database_bytes(folder: Path) -> bytes:
    """Every byte of the server's SQLite files: the database, its WAL and shm."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("confrere.db"))


def blob_files(folder: Path) -> list[Path]:
    """Every file under the server's local blob directory (blobs and partial uploads)."""
    return sorted(p for p in (folder / "blobs").rglob("*") if p.is_file())


async def next_of(client: EncryptedClient, kind: type, room: str) -> EncryptedIncoming:
    async with asyncio.timeout(10):
        while True:
            item = await client.recv()
            if isinstance(item, kind) and getattr(item, "room", None) == room:
                if isinstance(item, Decrypted | Undecryptable) and item.device == client.device_id:
                    continue  # our own message, decrypted too
                return item


async def next_decrypted(client: EncryptedClient, room: str) -> Decrypted:
    item = await next_of(client, Decrypted, room)
    assert isinstance(item, Decrypted)
    return item


async def next_text(client: EncryptedClient, room: str) -> str:
    return (await next_decrypted(client, room)).text


async def test_key_directory_checks_uploads_and_limits_queries(server: ServerUnderTest) -> None:
    a = await connected(await practitioner(server.url, server.store))
    b = await connected(await practitioner(server.url, server.store))
    c = await connected(await practitioner(server.url, server.store))
    try:
        keys = DeviceKeys.generate()
        for bad, code in [
            (b"\x01" + b"\x00" * 80, ErrorCode.BAD_FRAME),  # does not verify
            (b"\x09garbage", ErrorCode.BAD_FRAME),  # unknown version
            (keys.bundle(b.user_id, a.device_id).to_bytes(), ErrorCode.FORBIDDEN),
            (keys.bundle(a.user_id, b.device_id).to_bytes(), ErrorCode.FORBIDDEN),
        ]:
            with pytest.raises(ServerError) as err:
                await a.upload_keys(bad)
            assert err.value.code == code
        assert await server.store.device_keys([a.user_id]) == []

        bundle = keys.bundle(a.user_id, a.device_id).to_bytes()
        await a.upload_keys(bundle)
        assert await a.query_keys([a.user_id]) == (bundle,)
        assert await b.query_keys([a.user_id]) == ()  # no room in common yet
        await a.create_room("group", [b.user_id])
        assert await b.query_keys([a.user_id, c.user_id, "nobody"]) == (bundle,)
        assert await c.query_keys([a.user_id]) == ()
        assert parse_bundle((await b.query_keys([a.user_id]))[0]).sign_public == keys.sign_public
    finally:
        for client in (a, b, c):
            await client.close()


async def test_two_members_exchange_encrypted_messages(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    try:
        room = await a.create_room("direct", [b.user_id])
        await a.send_text(room.id, "Bonjour, pouvez-vous voir Mme D. demain ?")
        assert await next_text(b, room.id) == "Bonjour, pouvez-vous voir Mme D. demain ?"
        await b.send_text(room.id, "Oui, à 9 h.")
        assert await next_text(a, room.id) == "Oui, à 9 h."
        for n in range(5):
            await a.send_text(room.id, f"suite {n}")
        assert [await next_text(b, room.id) for _ in range(5)] == [f"suite {n}" for n in range(5)]
        assert (tmp_path / f"{a.device_id}.key").stat().st_mode & 0o777 == 0o600
    finally:
        await a.close()
        await b.close()


@pytest.fixture
async def node_on_redis(tmp_path: Path, redis_url: str) -> AsyncIterator[ServerUnderTest]:
    """A node on the Redis broker: it publishes what other nodes would read (on the
    in-process broker a node publishes nothing)."""
    async with running_server(settings_for(tmp_path, broker_url=redis_url)) as node:
        yield node


async def test_three_members_and_the_server_never_sees_plaintext(
    node_on_redis: ServerUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = node_on_redis
    broker = server.services.hub.broker
    published: list[bytes] = []
    publish, publish_many = broker.publish, broker.publish_many

    async def recording_publish(channel: str, data: bytes) -> None:
        published.append(data)
        await publish(channel, data)

    async def recording_publish_many(messages: Sequence[tuple[str, bytes]]) -> None:
        published.extend(data for _, data in messages)
        await publish_many(messages)

    monkeypatch.setattr(broker, "publish", recording_publish)
    monkeypatch.setattr(broker, "publish_many", recording_publish_many)
    a, b, c = [await encrypted(server, tmp_path) for _ in range(3)]
    marker = f"MARQUEUR-{secrets.token_hex(8)}"
    header_marker = f"PATIENT-{secrets.token_hex(8)}"
    file_marker = f"FICHIER-{secrets.token_hex(8)}"
    report = pdf_with_text(f"Compte rendu {file_marker}")
    assert file_marker.encode() in report
    try:
        room = await a.create_room(
            "patient_case",
            [b.user_id, c.user_id],
            name="Cas",
            header=f"Patient {header_marker}, né en 1950".encode(),
        )
        await a.send_text(room.id, f"a: {marker}")
        assert await next_text(b, room.id) == f"a: {marker}"
        assert await next_text(c, room.id) == f"a: {marker}"
        await b.send_text(room.id, f"b: {marker}")
        assert await next_text(a, room.id) == f"b: {marker}"
        assert await next_text(c, room.id) == f"b: {marker}"
        await c.send_text(room.id, f"c: {marker}")
        assert await next_text(a, room.id) == f"c: {marker}"
        assert await next_text(b, room.id) == f"c: {marker}"
        # A file whose content, name and caption all carry markers.
        path = tmp_path / f"cr-{file_marker}.pdf"
        path.write_bytes(report)
        await a.send_file(room.id, path, text=f"pdf: {marker}")
        for receiver in (b, c):
            item = await next_decrypted(receiver, room.id)
            assert item.text == f"pdf: {marker}" and len(item.files) == 1
            ref = item.files[0]
            assert (ref.name, ref.size, ref.content_type) == (
                path.name,
                len(report),
                "application/pdf",
            )
            assert await receiver.fetch_file(ref) == report
        path.unlink()
        attachment = await server.store.attachment(ref.id)
        assert attachment is not None and attachment.referenced_at is not None  # send.att

        info = await b.client.room(room.id)
        assert info.header is not None
        assert (
            b.decrypt_header(room.id, info.header).decode()
            == f"Patient {header_marker}, né en 1950"
        )

        stored = database_bytes(tmp_path)
        assert len(stored) > 0 and room.id.encode() in stored  # we read the right files
        assert ref.id.encode() in stored
        blobs = blob_files(tmp_path)
        assert [p.stat().st_size for p in blobs] == [ciphertext_size(len(report))]
        traffic = b"".join(published)
        assert room.id.encode() in traffic  # the messages did go through the broker
        for secret in (marker, header_marker, file_marker):
            for encoded in (secret.encode(), secret.encode("utf-16-le")):
                assert encoded not in stored
                assert encoded not in traffic
                for blob in blobs:
                    assert encoded not in blob.read_bytes(), blob
        timeline = await server.store.timeline(room.id, 0, 100)
        bodies = [i.body for i in timeline if i.kind == "msg" and i.body is not None]
        assert len(bodies) == 4 and all(marker.encode() not in body for body in bodies)
    finally:
        for client in (a, b, c):
            await client.close()


async def test_a_removed_member_cannot_read_what_follows(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a, b, c = [await encrypted(server, tmp_path) for _ in range(3)]
    try:
        room = await a.create_room("group", [b.user_id, c.user_id], name="Staff")
        await b.send_text(room.id, "before")
        assert await next_text(c, room.id) == "before"
        await a.send_text(room.id, "before, from a")
        assert await next_text(c, room.id) == "before, from a"

        await a.remove(room.id, c.user_id)
        left = await next_of(b, Event, room.id)
        while not (isinstance(left, Event) and left.kind == "member.left"):
            left = await next_of(b, Event, room.id)
        await a.send_text(room.id, "after, from a")
        await b.send_text(room.id, "after, from b")
        assert await next_text(b, room.id) == "after, from a"
        assert [await next_text(a, room.id) for _ in range(2)] == ["before", "after, from b"]

        batch = await a.client.sync(room.id, 0, 100)
        after = [m for m in batch.items if isinstance(m, Msg)][-2:]
        assert len(after) == 2
        for msg in after:
            result = c.try_decrypt(msg)
            assert isinstance(result, Undecryptable), result
            assert "UnknownSession" in result.reason
            # Nothing c's device holds opens it: not one of its inbound sessions.
            for session in c._inbound.values():
                with pytest.raises(Exception):  # noqa: B017 - any CryptoError
                    session.decrypt(msg.room, msg.device, msg.body)
    finally:
        for client in (a, b, c):
            await client.close()


async def test_tampered_and_keyless_messages_are_reported_not_shown(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path, key_wait=0.5)
    try:
        room = await a.create_room("group", [b.user_id], name="G")
        await a.send_text(room.id, "genuine")
        assert await next_text(b, room.id) == "genuine"
        batch = await a.client.sync(room.id, 0, 100)
        genuine = next(m for m in batch.items if isinstance(m, Msg))
        forged = bytearray(genuine.body)
        forged[60] ^= 1
        await a.client.send(room.id, bytes(forged))
        refused = await next_of(b, Undecryptable, room.id)
        assert isinstance(refused, Undecryptable) and "BadSignature" in refused.reason
        await a.client.send(room.id, genuine.body)  # a replay
        refused = await next_of(b, Undecryptable, room.id)
        assert isinstance(refused, Undecryptable) and "Replayed" in refused.reason
        # A sender key that was never shared: held, then reported.
        stray = OutboundSession(room.id, a.device_id, a.keys)
        await a.client.send(room.id, stray.encrypt(b"never shared"))
        refused = await next_of(b, Undecryptable, room.id)
        assert isinstance(refused, Undecryptable) and "never arrived" in refused.reason
        assert len(b.rejected) == 3
    finally:
        await a.close()
        await b.close()


async def test_safety_numbers_match_and_a_replaced_key_is_reported(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    try:
        await a.create_room("direct", [b.user_id])
        number = await a.safety_number(b.user_id)
        assert number == await b.safety_number(a.user_id) and len(number) == 60
        assert a.device_verified(b.user_id, b.device_id)
        # b's device key is replaced in the directory (a new install, or an attack): not
        # signed by b's identity, that device is unverified; the number is b's identity's.
        intruder = DeviceKeys.generate()
        await b.client.upload_keys(intruder.bundle(b.user_id, b.device_id).to_bytes())
        assert await a.safety_number(b.user_id) == number
        assert not a.device_verified(b.user_id, b.device_id)
        # b's identity key itself replaced: the number changes, and a is told.
        other = IdentityKeys.generate()
        bundle = intruder.bundle(b.user_id, b.device_id)
        await b.client.upload_keys(
            bundle.to_bytes(),
            identity=other.record(b.user_id).to_bytes(),
            signature=sign_device(other, bundle).to_bytes(),
            reset=True,
        )
        changed = await a.safety_number(b.user_id)
        assert changed != number
        async with asyncio.timeout(10):
            item = await a.recv()
            while not isinstance(item, KeysChanged):
                item = await a.recv()
        assert (item.user, item.previous, item.number) == (b.user_id, number, changed)
        assert item.replaced == ()  # its device key had changed before (seen then)
    finally:
        await a.close()
        await b.close()


async def test_a_missing_key_is_reported_and_shared_again(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path, key_wait=2.0)

    async def drain(client: EncryptedClient) -> None:
        while True:
            await client.recv()  # handles key requests as they come

    try:
        room = await a.create_room("group", [b.user_id], name="G")
        await a.send_text(room.id, "first")
        assert await next_text(b, room.id) == "first"
        draining = asyncio.ensure_future(drain(a))
        # a's next sender key is believed shared with b, but the share was lost.
        session = OutboundSession(room.id, a.device_id, a.keys)
        a._outbound[room.id] = _Outbound(
            session, session.sender_key(), recipients={(b.user_id, b.device_id)}
        )
        await a.send_text(room.id, "after a lost share")
        # b holds it, reports the missing key after 1 s, a shares again: decrypted.
        assert await next_text(b, room.id) == "after a lost share"
        failures = await server.store.decryption_failures(room.id)
        assert failures == {(a.device_id, "unknown_session"): 1}
        # A tampered message is counted too (and no key request follows).
        forged = bytearray(session.encrypt(b"x"))
        forged[-1] ^= 1
        await a.client.send(room.id, bytes(forged))
        assert isinstance(await next_of(b, Undecryptable, room.id), Undecryptable)
        for _ in range(250):  # the report is sent in the background
            failures = await server.store.decryption_failures(room.id)
            if (a.device_id, "bad_signature") in failures:
                break
            await asyncio.sleep(0.02)
        assert failures[a.device_id, "bad_signature"] == 1
        draining.cancel()
    finally:
        await a.close()
        await b.close()


async def test_every_device_of_every_member_gets_the_key(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    second = await log_in(server.url, b.client.account.email, PASSWORD, device_name="phone")
    b2 = EncryptedClient(second, tmp_path / "b2.key")
    await b2.connect()
    try:
        room = await a.create_room("group", [b.user_id], name="G")
        await a.send_text(room.id, "to both of b's devices")
        assert await next_text(b, room.id) == "to both of b's devices"
        assert await next_text(b2, room.id) == "to both of b's devices"
        await b.send_text(room.id, "from b's first device")
        assert await next_text(a, room.id) == "from b's first device"
        assert await next_text(b2, room.id) == "from b's first device"
    finally:
        for client in (a, b, b2):
            await client.close()


async def test_a_tampered_attachment_is_refused_never_returned(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)
    try:
        room = await a.create_room("direct", [b.user_id])
        with pytest.raises(AttachmentRefused):  # not a PDF, JPEG or PNG: nothing sent
            await a.send_file(room.id, b"just text", filename="notes.pdf")
        report = pdf_with_text("Radiographie du thorax") + bytes(70_000)  # two chunks
        await a.send_file(room.id, report, filename="radio.pdf")
        item = await next_decrypted(b, room.id)
        assert item.text == "" and len(item.files) == 1
        ref = item.files[0]
        assert ref.name == "radio.pdf" and await b.fetch_file(ref) == report
        # A reference that does not describe the file: refused after decrypting.
        for wrong in (
            dataclasses.replace(ref, sha256=bytes(32)),
            dataclasses.replace(ref, content_type="image/png"),
            dataclasses.replace(ref, size=ref.size - 1),
            dataclasses.replace(ref, key=bytes(32)),
        ):
            with pytest.raises(AttachmentCorrupt):
                await b.fetch_file(wrong)
        # One byte of the stored ciphertext flipped, in either chunk.
        blobs = server.services.blobs
        assert isinstance(blobs, LocalBlobStore)
        stored = blobs.path(ref.id)
        original = stored.read_bytes()
        for offset in (100, len(original) - 100):
            tampered = bytearray(original)
            tampered[offset] ^= 1
            stored.write_bytes(bytes(tampered))
            with pytest.raises(AttachmentCorrupt):
                await b.fetch_file(ref)
        stored.write_bytes(original)
        assert await b.fetch_file(ref) == report
    finally:
        await a.close()
        await b.close()


async def test_message_content_is_versioned_and_file_references_checked(
    server: ServerUnderTest, tmp_path: Path
) -> None:
    a = await encrypted(server, tmp_path)
    b = await encrypted(server, tmp_path)

    async def send_plain(room: str, content: object) -> None:
        async with a._lock(room):
            body = await a._encrypt(room, msgpack.packb(content, use_bin_type=True))
        await a.client.send(room, body)

    try:
        room = (await a.create_room("direct", [b.user_id])).id
        await send_plain(room, {"type": "text", "text": "written before v existed"})
        assert await next_text(b, room) == "written before v existed"
        await send_plain(room, {"v": 2, "type": "text", "text": "from the future"})
        refused = await next_of(b, Undecryptable, room)
        assert isinstance(refused, Undecryptable) and "BadVersion" in refused.reason
        bad_ref = {"v": 1, "id": "x", "key": b"short", "sha256": bytes(32), "size": 1}
        await send_plain(room, {"v": 1, "type": "text", "text": "", "files": [bad_ref]})
        refused = await next_of(b, Undecryptable, room)
        assert isinstance(refused, Undecryptable) and "Truncated" in refused.reason
        await a.send_text(room, "still readable")
        item = await next_decrypted(b, room)
        assert (item.text, item.files) == ("still readable", ())
    finally:
        await a.close()
        await b.close()
