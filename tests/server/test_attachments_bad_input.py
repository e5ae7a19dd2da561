"""Every bad upload and download, on each blob adapter: each gets a 4xx JSON error that
names the problem (or, for chat files the server cannot read, a refusal by the SDK),
and nothing partial is left: no attachment row, no blob, no temporary file or pending
multipart upload."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from attachment_kit import files_in, leftovers, raw_request, sample, send_raw, wait_until
from blob_backends import BlobBackend

from clients.python import Account, ServerError
from clients.python.attachments import (
    download_file,
    upload_document,
    upload_file,
)
from clients.python.errors import AttachmentCorrupt, AttachmentRefused
from harness import ServerUnderTest, connected, practitioner
from protocol.crypto.attachment import AttachmentRef, ciphertext_size, encrypt, new_key
from protocol.errors import ErrorCode
from protocol.limits import MAX_ATTACHMENT

MiB = 1024 * 1024
EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(4000)


@dataclass
class Scene:
    server: ServerUnderTest
    backend: BlobBackend
    alice: Account  # member of ``room``
    mallory: Account  # verified, but not a member
    room: str

    async def clean(self) -> bool:
        return await leftovers(self.server, self.backend) == (0, [], [])

    def target(self, kind: str, content_type: str, **extra: str) -> str:
        params = {"kind": kind, "content_type": content_type, **extra}
        if kind == "chat" or "room" in extra:
            params.setdefault("room", self.room)
        return "/v1/attachments?" + urlencode(params)

    def auth(self, who: Account | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {(who or self.alice).token}"}


@pytest.fixture
async def scene(blob_server: ServerUnderTest, blob_backend: BlobBackend) -> AsyncIterator[Scene]:
    alice = await practitioner(blob_server.url, blob_server.store)
    mallory = await practitioner(blob_server.url, blob_server.store)
    client = await connected(alice)
    try:
        room = await client.create_room("group", [])
    finally:
        await client.close()
    yield Scene(blob_server, blob_backend, alice, mallory, room.id)


def refused(response: httpx.Response, status: int, code: str, words: str) -> None:
    """A JSON error with this status and code, whose message names the problem."""
    check(response.status_code, response.json(), status, code, words)


def check(got: int, body: dict[str, Any], status: int, code: str, words: str) -> None:
    assert (got, body["code"]) == (status, code), body
    assert words in body["message"], body


# -- too large


@pytest.mark.parametrize(
    ("kind", "length"),
    [
        ("document", 51 * MiB),
        ("document", MAX_ATTACHMENT + 1),
        ("chat", ciphertext_size(51 * MiB)),
        ("chat", ciphertext_size(MAX_ATTACHMENT) + 1),
    ],
)
async def test_declared_size_over_the_limit_is_refused_before_the_body(
    scene: Scene, kind: str, length: int
) -> None:
    """With ``Expect: 100-continue`` the client waits for leave to send the body: a 413
    coming first (no ``100 Continue``) proves that no byte of the body was read."""
    headers = {**scene.auth(), "Content-Length": str(length), "Expect": "100-continue"}
    raw = await raw_request(scene.server.url, "POST", scene.target(kind, "image/png"), headers)
    check(
        raw.status, json.loads(raw.body), 413, "too_large", f"file exceeds {MAX_ATTACHMENT} bytes"
    )
    assert await scene.clean()


@pytest.mark.parametrize(
    "data",
    [
        sample("application/pdf", 51 * MiB),
        EXECUTABLE,
        b"\x89PNX\r\n\x1a\n" + bytes(1000),
        b"",
    ],
    ids=["51MiB", "exe", "bad-png-header", "empty"],
)
async def test_sdk_refuses_bad_chat_files_before_sending(scene: Scene, data: bytes) -> None:
    with pytest.raises(AttachmentRefused):
        await upload_file(scene.alice, scene.room, data)
    assert await scene.clean()


async def test_body_longer_than_declared_is_cut_off(scene: Scene) -> None:
    """An HTTP server frames bodies by Content-Length, so this cannot come over a
    socket; the app checks anyway (behind a proxy that does not), driven here through
    ASGI directly."""
    sent: list[dict[str, Any]] = []
    parts = [sample("application/pdf", 800), bytes(800)]

    async def receive() -> dict[str, Any]:
        body = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    target = scene.target("document", "application/pdf").encode()
    path, _, query = target.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path.decode(),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"content-length", b"1000"),
            (b"authorization", scene.auth()["Authorization"].encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await scene.server.app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert status == 413
    assert json.loads(body) == {
        "code": "too_large",
        "message": "request body is longer than its Content-Length",
    }
    assert await scene.clean()


# -- wrong content


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("rapport.pdf", EXECUTABLE, "not a PDF, JPEG or PNG"),
        ("rapport.pdf", b"\x7fELF\x02\x01\x01" + bytes(3000), "not a PDF, JPEG or PNG"),
        ("radio.png", b"\x89PNX\r\n\x1a\n" + bytes(3000), "not a PDF, JPEG or PNG"),
        ("radio.png", b"\x89PNG\n\r\x1a\n" + bytes(3000), "not a PDF, JPEG or PNG"),
        ("photo.jpg", sample("image/png", 3000), "is a PNG image, not a JPEG image as declared"),
        ("tiny.pdf", b"%PD", "not a PDF, JPEG or PNG"),
        ("big-exe.pdf", EXECUTABLE + bytes(7 * MiB), "not a PDF, JPEG or PNG"),
    ],
)
async def test_documents_are_typed_by_their_bytes(
    scene: Scene, name: str, data: bytes, words: str
) -> None:
    with pytest.raises(ServerError) as error:
        await upload_document(scene.alice, data, room=scene.room, name=name)
    assert error.value.code == ErrorCode.BAD_FRAME and words in error.value.message
    assert await scene.clean()


@pytest.mark.parametrize("kind", ["chat", "document"])
async def test_empty_file(scene: Scene, kind: str) -> None:
    async with httpx.AsyncClient(base_url=scene.server.url) as http:
        response = await http.post(
            scene.target(kind, "application/pdf"), content=b"", headers=scene.auth()
        )
        refused(response, 400, "bad_frame", "empty file")
        if kind == "chat":  # the ciphertext of nothing is refused as well
            empty = encrypt(new_key(), b"")
            response = await http.post(
                scene.target(kind, "application/pdf"), content=empty, headers=scene.auth()
            )
            refused(response, 400, "bad_frame", "empty file")
    assert await scene.clean()


@pytest.mark.parametrize(
    ("query", "body", "words"),
    [
        ({"content_type": "application/x-msdownload"}, b"MZ", "field 'content_type'"),
        ({"content_type": "image/png", "name": "x.png"}, b"\x01" * 60, "inside the encrypted"),
        ({"content_type": "image/png", "ext": "1"}, b"\x01" * 60, "unknown parameter(s): ext"),
        ({"content_type": "image/png"}, b"\x01" * (25 + 65553 + 5), "not the size of"),
        ({"content_type": "image/png"}, b"\x02" + bytes(59), "unknown format version"),
        ({"content_type": "image/png", "kind": "video"}, b"\x01" * 60, "field 'kind'"),
    ],
)
async def test_chat_upload_checks_the_server_can_make(
    scene: Scene, query: dict[str, str], body: bytes, words: str
) -> None:
    """The server cannot read a chat file, but it checks the declared type, the
    ciphertext's size and its format version."""
    params = {"kind": "chat", "room": scene.room, **query}
    async with httpx.AsyncClient(base_url=scene.server.url) as http:
        response = await http.post(
            "/v1/attachments", params=params, content=body, headers=scene.auth()
        )
    refused(response, 400, "bad_frame", words)
    assert await scene.clean()


async def test_content_length_is_required(scene: Scene) -> None:
    async def chunked() -> AsyncIterator[bytes]:
        yield sample("application/pdf", 1000)

    async with httpx.AsyncClient(base_url=scene.server.url) as http:
        response = await http.post(
            scene.target("document", "application/pdf"), content=chunked(), headers=scene.auth()
        )
    refused(response, 411, "bad_frame", "Content-Length")
    assert await scene.clean()


# -- truncated


@pytest.mark.parametrize("kind", ["chat", "document"])
async def test_truncated_upload_leaves_nothing(scene: Scene, kind: str) -> None:
    """The client sends 7 of 12 MiB, then disconnects: the blob write in progress (a
    temporary file, or a multipart upload with a part already sent) is abandoned."""
    plain = sample("image/png", 12 * MiB)
    body = encrypt(new_key(), plain) if kind == "chat" else plain
    head = (
        f"POST {scene.target(kind, 'image/png')} HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {scene.alice.token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    _, writer = await send_raw(scene.server.url, head, [body[: 7 * MiB]])

    async def writing() -> bool:
        rows, _, pending = await leftovers(scene.server, scene.backend)
        return rows == 1 and pending != []

    await wait_until(writing)
    writer.transport.abort()  # the client goes away mid-body
    await wait_until(scene.clean)


# -- who


@pytest.mark.parametrize("kind", ["chat", "document"])
async def test_upload_by_a_non_member(scene: Scene, kind: str) -> None:
    async with httpx.AsyncClient(base_url=scene.server.url) as http:
        for room in (scene.room, "no-such-room"):
            target = scene.target(kind, "application/pdf", room=room)
            response = await http.post(
                target, content=sample("application/pdf", 500), headers=scene.auth(scene.mallory)
            )
            refused(response, 403, "forbidden", "not a member of this room")
        anonymous = await http.post(
            scene.target(kind, "application/pdf"), content=sample("application/pdf", 500)
        )
        refused(anonymous, 401, "unauthenticated", "Authorization")
    assert await scene.clean()


async def test_download_by_a_non_member(scene: Scene) -> None:
    pdf = sample("application/pdf", 5000)
    chat = await upload_file(scene.alice, scene.room, pdf)
    doc = await upload_document(scene.alice, pdf, room=scene.room)
    private = await upload_document(scene.alice, pdf)  # no room: the uploader's only
    async with httpx.AsyncClient(base_url=scene.server.url) as http:
        for attachment_id, words in [
            (chat.id, "not a member of this attachment's room"),
            (doc["id"], "not a member of this attachment's room"),
            (private["id"], "only its uploader may read this document"),
        ]:
            for path in (
                f"/v1/attachments/{attachment_id}",
                f"/v1/attachments/{attachment_id}/meta",
            ):
                response = await http.get(path, headers=scene.auth(scene.mallory))
                refused(response, 403, "forbidden", words)
            response = await http.delete(
                f"/v1/attachments/{attachment_id}", headers=scene.auth(scene.mallory)
            )
            refused(response, 403, "forbidden", "only its uploader may delete")
            anonymous = await http.get(f"/v1/attachments/{attachment_id}")
            refused(anonymous, 401, "unauthenticated", "Authorization")
    with pytest.raises(ServerError):
        await download_file(scene.mallory, chat)
    assert len(await scene.backend.objects()) == 3  # nothing was deleted either


async def test_a_removed_member_can_no_longer_download(scene: Scene) -> None:
    bob = await practitioner(scene.server.url, scene.server.store)
    client = await connected(scene.alice)
    try:
        await client.invite(scene.room, [bob.user_id])
        ref = await upload_file(scene.alice, scene.room, sample("image/jpeg", 4000))
        assert await download_file(bob, ref)
        await client.remove(scene.room, bob.user_id)
    finally:
        await client.close()
    with pytest.raises(ServerError) as error:
        await download_file(bob, ref)
    assert error.value.code == ErrorCode.FORBIDDEN


# -- path tricks


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "..\\..\\boot.ini", "scans/cr.pdf", "..", "nul\x00.pdf", "\x1b[2J.pdf"],
)
async def test_path_tricks_in_file_names(scene: Scene, name: str, tmp_path: Path) -> None:
    before = files_in(tmp_path.parent)
    async with httpx.AsyncClient(base_url=scene.server.url) as http:
        response = await http.post(
            scene.target("document", "application/pdf", name=name),
            content=sample("application/pdf", 2000),
            headers=scene.auth(),
        )
    refused(response, 400, "bad_frame", "field 'name'")
    assert await scene.clean()
    assert files_in(tmp_path.parent) == before


@pytest.mark.parametrize(
    "target",
    [
        "/v1/attachments/..%2F..%2Fetc%2Fpasswd",
        "/v1/attachments/%2e%2e",
        "/v1/attachments/..%5C..%5Cboot.ini",
        "/v1/attachments/" + "a" * 65,
        "/v1/attachments/..%2F..%2Fetc%2Fpasswd/meta",
    ],
)
async def test_path_tricks_in_attachment_ids(scene: Scene, target: str) -> None:
    await upload_document(scene.alice, sample("application/pdf", 100))
    for method in ("GET", "DELETE"):
        raw = await raw_request(scene.server.url, method, target, scene.auth())
        assert raw.status == 404 and json.loads(raw.body)["code"] == "not_found", raw
    assert len(await scene.backend.objects()) == 1


# -- what the SDK checks after decrypting


async def test_sdk_refuses_downloads_that_are_not_what_the_message_says(
    scene: Scene, tmp_path: Path
) -> None:
    """A sender who bypasses the SDK cannot make a recipient accept an executable as a
    PNG; a reference with a wrong hash or key is refused too, and no file is kept."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    key = new_key()
    body = encrypt(key, EXECUTABLE)
    async with httpx.AsyncClient(base_url=scene.server.url) as http:
        response = await http.post(
            scene.target("chat", "image/png"), content=body, headers=scene.auth()
        )
    assert response.status_code == 201
    attachment_id = response.json()["attachment"]["id"]
    sha = hashlib.sha256(EXECUTABLE).digest()
    lying = AttachmentRef(attachment_id, key, sha, len(EXECUTABLE), "image/png")
    with pytest.raises(AttachmentCorrupt, match="neither a PDF, JPEG nor PNG"):
        await download_file(scene.alice, lying, downloads / "photo.png")
    assert files_in(downloads) == []

    png = sample("image/png", 70_000)
    good = await upload_file(scene.alice, scene.room, png)
    for ref, words in [
        (AttachmentRef(good.id, good.key, bytes(32), good.size, "image/png"), "SHA-256"),
        (AttachmentRef(good.id, new_key(), good.sha256, good.size, "image/png"), "decrypt"),
        (AttachmentRef(good.id, good.key, good.sha256, good.size, "image/jpeg"), "not a JPEG"),
        (AttachmentRef(good.id, good.key, good.sha256, good.size - 1, "image/png"), "longer"),
    ]:
        with pytest.raises(AttachmentCorrupt, match=words):
            await download_file(scene.alice, ref, downloads / "x.png")
    assert files_in(downloads) == []
