"""Attachments end to end, on each blob adapter: chat files encrypted by the SDK and
referenced by messages, documents checked and encrypted at rest by the server,
downloads, deletion by the uploader, and the orphan sweep."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import msgpack
import pytest
from attachment_kit import FAR_FUTURE, leftovers, sample
from blob_backends import BlobBackend
from verification_kit import email_code

from clients.python import ServerError
from clients.python.attachments import (
    attachment_meta,
    delete_attachment,
    download_document,
    download_file,
    upload_document,
    upload_file,
)
from clients.python.rest import confirm_email
from harness import ServerUnderTest, connected, practitioner, sealed
from protocol.crypto.attachment import AttachmentRef
from protocol.errors import ErrorCode
from protocol.limits import MAX_ATTACHMENT
from server.sweeper import sweep_orphans

MiB = 1024 * 1024


async def test_chat_file_travels_end_to_end_encrypted(
    blob_server: ServerUnderTest, blob_backend: BlobBackend, tmp_path: Path
) -> None:
    alice = await practitioner(blob_server.url, blob_server.store)
    bob = await practitioner(blob_server.url, blob_server.store)
    a = await connected(alice)
    try:
        room = await a.create_room("group", [bob.user_id])
        scan = tmp_path / "scan.png"
        scan.write_bytes(sample("image/png", 7 * MiB + 3))  # several S3 parts
        ref = await upload_file(alice, room.id, scan, name="scan.png")
        assert ref.size == 7 * MiB + 3 and ref.content_type == "image/png"
        assert ref.sha256 == hashlib.sha256(scan.read_bytes()).digest()
        # The server holds ciphertext only: neither the file nor its first bytes.
        stored = await blob_backend.raw(ref.id)
        assert stored[0] == 1 and b"\x89PNG" not in stored[:64]
        assert (
            hashlib.sha256(stored).hexdigest() == (await attachment_meta(alice, ref.id))["sha256"]
        )

        body = msgpack.packb({"type": "file", "att": ref.to_wire()})
        await a.send(room.id, sealed(body), att=[ref.id])
        meta = await attachment_meta(bob, ref.id)
        assert meta["referenced"] and meta["kind"] == "chat" and meta["room"] == room.id
        assert meta["content_type"] == "image/png" and meta["name"] is None  # name: inside

        got = AttachmentRef.from_wire(msgpack.unpackb(body)["att"])
        assert await download_file(bob, got) == scan.read_bytes()
        saved = await download_file(bob, got, tmp_path / "received.png")
        assert saved == tmp_path / "received.png" and saved.read_bytes() == scan.read_bytes()
        direct = await download_file(bob, got, direct=True)
        assert direct == scan.read_bytes()
        assert (meta["download_url"] is None) == (blob_backend.name == "local")
    finally:
        await a.close()


async def test_document_is_checked_and_encrypted_at_rest(
    blob_server: ServerUnderTest, blob_backend: BlobBackend
) -> None:
    alice = await practitioner(blob_server.url, blob_server.store)
    bob = await practitioner(blob_server.url, blob_server.store)
    a = await connected(alice)
    try:
        room = await a.create_room("patient_case", [bob.user_id])
        pdf = sample("application/pdf", 6 * MiB + 11)
        described = await upload_document(alice, pdf, room=room.id, name="Compte rendu é.pdf")
        assert described["content_type"] == "application/pdf" and described["size"] == len(pdf)
        assert described["sha256"] == hashlib.sha256(pdf).hexdigest()
        assert described["name"] == "Compte rendu é.pdf" and described["kind"] == "document"
        at_rest = await blob_backend.raw(described["id"])
        assert b"%PDF" not in at_rest and len(at_rest) > len(pdf)  # the server key's stream
        assert await download_document(bob, described["id"]) == pdf
        meta = await attachment_meta(bob, described["id"])
        assert meta["download_url"] is None  # the server decrypts: never a direct URL
        async with httpx.AsyncClient(base_url=blob_server.url) as http:
            response = await http.get(
                f"/v1/attachments/{described['id']}",
                headers={"Authorization": f"Bearer {bob.token}"},
            )
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"] == (
            "attachment; filename*=UTF-8''Compte%20rendu%20%C3%A9.pdf"
        )
        assert response.headers["x-content-type-options"] == "nosniff"
    finally:
        await a.close()


async def test_largest_file_is_accepted(
    blob_server: ServerUnderTest, blob_backend: BlobBackend
) -> None:
    """Exactly 50 MiB of plaintext: as a document, and encrypted as a chat file."""
    alice = await practitioner(blob_server.url, blob_server.store)
    a = await connected(alice)
    try:
        room = await a.create_room("group", [])
        data = sample("image/jpeg", MAX_ATTACHMENT)
        described = await upload_document(alice, data, room=room.id)
        assert described["size"] == MAX_ATTACHMENT
        ref = await upload_file(alice, room.id, data)
        assert (await download_file(alice, ref)) == data
    finally:
        await a.close()


async def test_identity_document_before_verification(
    blob_server: ServerUnderTest, blob_backend: BlobBackend
) -> None:
    """An unverified user may send identity documents (no room) once the e-mail address
    is confirmed, nothing else; only they can read them back."""
    newcomer = await practitioner(blob_server.url, None, verified=False)
    other = await practitioner(blob_server.url, blob_server.store)
    photo = sample("image/jpeg", 200_000)
    with pytest.raises(ServerError) as unconfirmed:
        await upload_document(newcomer, photo, name="cni-recto.jpg")
    assert unconfirmed.value.code == ErrorCode.FORBIDDEN
    assert (await leftovers(blob_server, blob_backend))[0] == 0
    await confirm_email(newcomer, await email_code(blob_server, newcomer.email))
    described = await upload_document(newcomer, photo, name="cni-recto.jpg")
    assert described["room"] is None
    assert await download_document(newcomer, described["id"]) == photo
    with pytest.raises(ServerError) as refused:
        await download_document(other, described["id"])
    assert refused.value.code == ErrorCode.FORBIDDEN
    with pytest.raises(ServerError) as unverified:
        await upload_file(newcomer, "some-room-id", sample("image/png", 100))
    assert unverified.value.code == ErrorCode.IDENTITY_UNVERIFIED


async def test_messages_reference_only_their_senders_attachments(
    blob_server: ServerUnderTest,
) -> None:
    alice = await practitioner(blob_server.url, blob_server.store)
    bob = await practitioner(blob_server.url, blob_server.store)
    a, b = await connected(alice), await connected(bob)
    try:
        room = await a.create_room("group", [bob.user_id])
        other = await a.create_room("group", [bob.user_id])
        alices = await upload_file(alice, room.id, sample("application/pdf", 1000))
        elsewhere = await upload_file(alice, other.id, sample("application/pdf", 1000))
        cases = [
            (b, room.id, [alices.id], ErrorCode.FORBIDDEN),  # not bob's
            (a, room.id, [elsewhere.id], ErrorCode.FORBIDDEN),  # another room's
            (a, room.id, ["no-such-attachment"], ErrorCode.NOT_FOUND),
            (a, room.id, [f"a{i}" for i in range(11)], ErrorCode.TOO_LARGE),  # over 10
        ]
        for client, room_id, att, code in cases:
            with pytest.raises(ServerError) as refused:
                await client.send(room_id, sealed(b"ciphertext"), att=att)
            assert refused.value.code == code, att
        seq = await a.send(room.id, sealed(b"ciphertext"), att=[alices.id])
        assert (await attachment_meta(bob, alices.id))["referenced"]
        assert not (await attachment_meta(alice, elsewhere.id))["referenced"]
        assert seq == room.last_seq + 1  # the refused sends took no seq
    finally:
        await a.close()
        await b.close()


async def test_only_the_uploader_deletes(
    blob_server: ServerUnderTest, blob_backend: BlobBackend
) -> None:
    alice = await practitioner(blob_server.url, blob_server.store)
    bob = await practitioner(blob_server.url, blob_server.store)
    a = await connected(alice)
    try:
        room = await a.create_room("group", [bob.user_id])
        ref = await upload_file(alice, room.id, sample("image/png", 5000))
        with pytest.raises(ServerError) as refused:
            await delete_attachment(bob, ref.id)
        assert refused.value.code == ErrorCode.FORBIDDEN
        assert await blob_backend.objects() == [ref.id]
        await delete_attachment(alice, ref.id)
        assert await leftovers(blob_server, blob_backend) == (0, [], [])
        for reader in (alice, bob):
            with pytest.raises(ServerError) as gone:
                await download_file(reader, ref)
            assert gone.value.code == ErrorCode.NOT_FOUND
        with pytest.raises(ServerError) as again:
            await delete_attachment(alice, ref.id)
        assert again.value.code == ErrorCode.NOT_FOUND
    finally:
        await a.close()


async def test_orphan_sweep_deletes_unreferenced_uploads_after_the_ttl(
    blob_server: ServerUnderTest, blob_backend: BlobBackend
) -> None:
    alice = await practitioner(blob_server.url, blob_server.store)
    a = await connected(alice)
    try:
        room = await a.create_room("group", [])
        kept = await upload_file(alice, room.id, sample("image/png", 3000))
        orphan = await upload_file(alice, room.id, sample("image/png", 3000))
        doc = await upload_document(alice, sample("application/pdf", 3000))
        await a.send(room.id, sealed(b"ciphertext"), att=[kept.id])
        svc = blob_server.services
        created = max(
            x.created_at for x in await svc.store.unreferenced_attachments(FAR_FUTURE, 10)
        )
        ttl = 3600.0

        early = await sweep_orphans(svc.store, svc.blobs, now=created + 1000, ttl_s=ttl)
        assert (early.deleted, early.failed) == (0, 0)
        assert len(await blob_backend.objects()) == 3

        late = await sweep_orphans(svc.store, svc.blobs, now=created + 3_600_001, ttl_s=ttl)
        assert (late.deleted, late.failed) == (2, 0)
        assert await blob_backend.objects() == [kept.id]
        assert await svc.store.attachment(orphan.id) is None
        assert await svc.store.attachment(doc["id"]) is None
        assert await download_file(alice, kept) is not None
        with pytest.raises(ServerError) as swept:
            await a.send(room.id, sealed(b"too late"), att=[orphan.id])
        assert swept.value.code == ErrorCode.NOT_FOUND
    finally:
        await a.close()
