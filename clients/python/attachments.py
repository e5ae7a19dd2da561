"""Attachments in the SDK: end-to-end encrypted chat files, and server-visible documents.

Chat files (:func:`upload_file`, :func:`download_file`): the file is checked here
(1 byte to 50 MiB, a PDF, JPEG or PNG by its first bytes), encrypted with a fresh key
in the stream format of :mod:`protocol.crypto.attachment` while it is read, and
streamed to ``POST /v1/attachments``: memory does not grow with the file. The returned
:class:`~protocol.crypto.attachment.AttachmentRef` (id, key, SHA-256, size, type) goes
inside the message's encrypted body, and its id in ``send(..., att=[id])``. A reader
downloads, decrypts as bytes arrive, and checks the type by the first bytes, the size
and the SHA-256 before handing anything over; a file that fails any check raises
:class:`~clients.python.errors.AttachmentCorrupt` and nothing of it is kept.

Documents (:func:`upload_document`, :func:`download_document`): referral and identity
documents the server reads; it checks their type by magic bytes and encrypts them at
rest under its own key.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from protocol.crypto.attachment import AttachmentRef, Decryptor, Encryptor, ciphertext_size
from protocol.crypto.errors import CryptoError
from protocol.filetypes import CONTENT_TYPES, SNIFF_BYTES, describe, sniff
from protocol.limits import MAX_ATTACHMENT

from .errors import AttachmentCorrupt, AttachmentRefused
from .rest import Account, server_error

__all__ = [
    "Source",
    "check_file",
    "attachment_meta",
    "delete_attachment",
    "download_document",
    "download_file",
    "upload_document",
    "upload_file",
]

Source = bytes | str | os.PathLike[str]
READ_UNIT = 256 * 1024
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)  # per read/write, not for the whole file
_EXTENSIONS = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}


class _Reader:
    """A file or bytes, read in pieces (files in a worker thread)."""

    def __init__(self, source: Source) -> None:
        self._data: memoryview | None = None
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._pos = 0
        if isinstance(source, bytes):
            self._data = memoryview(source)
            self.size = len(source)
        else:
            self._path = Path(source)
            self.size = self._path.stat().st_size

    async def __aenter__(self) -> _Reader:
        if self._path is not None:
            self._file = await asyncio.to_thread(self._path.open, "rb")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    async def read(self, n: int) -> bytes:
        if self._data is not None:
            piece = bytes(self._data[self._pos : self._pos + n])
            self._pos += len(piece)
            return piece
        assert self._file is not None
        return await asyncio.to_thread(self._file.read, n)


def _checked_type(size: int, head: bytes, content_type: str | None) -> str:
    """The file's type by its first bytes; raise :class:`AttachmentRefused` if the file
    may not be attached."""
    if size == 0:
        raise AttachmentRefused("empty file")
    if size > MAX_ATTACHMENT:
        raise AttachmentRefused(f"file exceeds {MAX_ATTACHMENT} bytes ({size})")
    found = sniff(head)
    if found is None:
        raise AttachmentRefused("file is not a PDF, JPEG or PNG (checked by its first bytes)")
    if content_type is not None and found != content_type:
        raise AttachmentRefused(f"file is {describe(found)}, not {describe(content_type)}")
    return found


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


async def _raise_for(response: httpx.Response) -> None:
    if response.status_code >= 400:
        await response.aread()
        raise server_error(response)


async def check_file(source: Source) -> str:
    """The type of a file that may be attached (by its size and first bytes); raise
    :class:`AttachmentRefused` otherwise. Nothing is sent."""
    async with _Reader(source) as reader:
        return _checked_type(reader.size, await reader.read(SNIFF_BYTES), None)


async def upload_file(
    account: Account,
    room: str,
    source: Source,
    *,
    content_type: str | None = None,
    name: str | None = None,
) -> AttachmentRef:
    """Encrypt and upload a chat file for ``room``; return what the message carries.

    ``name`` is only put in the returned reference (it travels encrypted, never to the
    server). Raises :class:`AttachmentRefused` before sending anything if the file is
    empty, too large or not a PDF/JPEG/PNG, and ``ServerError`` if the server refuses.
    """
    key = os.urandom(32)
    sha = hashlib.sha256()
    async with _Reader(source) as reader:
        head = await reader.read(SNIFF_BYTES)
        found = _checked_type(reader.size, head, content_type)

        async def ciphertext() -> AsyncIterator[bytes]:
            encryptor = Encryptor(key)
            piece, total = head, 0
            while piece:
                total += len(piece)
                if total > reader.size:
                    raise AttachmentRefused("the file grew while it was being uploaded")
                sha.update(piece)
                yield encryptor.update(piece)
                piece = await reader.read(READ_UNIT)
            if total != reader.size:
                raise AttachmentRefused("the file shrank while it was being uploaded")
            yield encryptor.finish()

        headers = {
            **_auth(account),
            "Content-Length": str(ciphertext_size(reader.size)),
            "Content-Type": "application/octet-stream",
        }
        params = {"kind": "chat", "room": room, "content_type": found}
        async with httpx.AsyncClient(base_url=account.base_url, timeout=_TIMEOUT) as http:
            response = await http.post(
                "/v1/attachments", params=params, headers=headers, content=ciphertext()
            )
        await _raise_for(response)
        attachment_id = response.json()["attachment"]["id"]
        return AttachmentRef(attachment_id, key, sha.digest(), reader.size, found, name)


class _Checked:
    """Decrypts (if ``key``) and checks a download as it arrives."""

    def __init__(self, key: bytes | None, content_type: str, size: int, sha256: bytes) -> None:
        self._decryptor = Decryptor(key) if key is not None else None
        self._expected = (content_type, size, sha256)
        self._sha = hashlib.sha256()
        self._size = 0
        self._head = b""

    def _plain(self, data: bytes) -> bytes:
        self._size += len(data)
        if self._size > self._expected[1]:
            raise AttachmentCorrupt("file is longer than announced")
        self._sha.update(data)
        if len(self._head) < SNIFF_BYTES:
            self._head += data[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                self._check_type()
        return data

    def _check_type(self) -> None:
        found = sniff(self._head)
        if found != self._expected[0]:
            what = "neither a PDF, JPEG nor PNG" if found is None else describe(found)
            raise AttachmentCorrupt(f"file is {what}, not {describe(self._expected[0])}")

    def update(self, data: bytes) -> bytes:
        try:
            plain = self._decryptor.update(data) if self._decryptor else data
        except CryptoError as exc:
            raise AttachmentCorrupt(f"file does not decrypt: {exc}") from None
        return self._plain(plain)

    def finish(self) -> bytes:
        try:
            plain = self._plain(self._decryptor.finish()) if self._decryptor else b""
        except CryptoError as exc:
            raise AttachmentCorrupt(f"file does not decrypt: {exc}") from None
        if self._size != self._expected[1]:
            raise AttachmentCorrupt("file is shorter than announced")
        if len(self._head) < SNIFF_BYTES:
            self._check_type()
        if self._sha.digest() != self._expected[2]:
            raise AttachmentCorrupt("file's SHA-256 is not the one announced")
        return plain


async def _fetch(
    response_cm: AbstractAsyncContextManager[httpx.Response], checked: _Checked, dest: Path | None
) -> bytes | Path:
    """Stream a response through ``checked`` into memory or ``dest`` (via a ``.part``
    file renamed at the end; removed on any failure)."""
    async with response_cm as response:
        await _raise_for(response)
        if dest is None:
            out = bytearray()
            async for data in response.aiter_bytes():
                out += checked.update(data)
            out += checked.finish()
            return bytes(out)
        part = dest.with_name(dest.name + ".part")
        file = await asyncio.to_thread(part.open, "wb")
        try:
            async for data in response.aiter_bytes():
                await asyncio.to_thread(file.write, checked.update(data))
            await asyncio.to_thread(file.write, checked.finish())
            file.close()
            await asyncio.to_thread(part.replace, dest)
        except BaseException:
            file.close()
            part.unlink(missing_ok=True)
            raise
        return dest


async def download_file(
    account: Account, ref: AttachmentRef, dest: Path | None = None, *, direct: bool = False
) -> bytes | Path:
    """Download, decrypt and check a chat file; its bytes, or ``dest`` once written.

    ``direct``: fetch from the blob store's short-lived URL when the server offers one
    (S3), instead of through the server. Raises :class:`AttachmentCorrupt` if the file
    does not decrypt or is not the one the reference announces."""
    checked = _Checked(ref.key, ref.content_type, ref.size, ref.sha256)
    async with httpx.AsyncClient(base_url=account.base_url, timeout=_TIMEOUT) as http:
        url: str | None = None
        if direct:
            url = (await attachment_meta(account, ref.id)).get("download_url")
        if url is not None:
            async with httpx.AsyncClient(timeout=_TIMEOUT) as plain:  # no bearer token
                return await _fetch(plain.stream("GET", url), checked, dest)
        request = http.stream("GET", f"/v1/attachments/{ref.id}", headers=_auth(account))
        return await _fetch(request, checked, dest)


async def attachment_meta(account: Account, attachment_id: str) -> dict[str, Any]:
    """``GET /v1/attachments/{id}/meta``: the attachment's description, and for a chat
    file on S3 a short-lived ``download_url``."""
    async with httpx.AsyncClient(base_url=account.base_url, timeout=_TIMEOUT) as http:
        response = await http.get(f"/v1/attachments/{attachment_id}/meta", headers=_auth(account))
    await _raise_for(response)
    body: dict[str, Any] = response.json()
    return {**body["attachment"], "download_url": body["download_url"]}


async def delete_attachment(account: Account, attachment_id: str) -> None:
    """Delete an attachment this user uploaded."""
    async with httpx.AsyncClient(base_url=account.base_url, timeout=_TIMEOUT) as http:
        response = await http.delete(f"/v1/attachments/{attachment_id}", headers=_auth(account))
    await _raise_for(response)


async def upload_document(
    account: Account,
    source: Source,
    *,
    room: str | None = None,
    name: str | None = None,
    content_type: str | None = None,
) -> dict[str, Any]:
    """Upload a referral or identity document in clear (the server checks its type by
    its bytes and encrypts it at rest); return its description. The declared type is
    ``content_type``, else the one ``name``'s extension suggests, else the sniffed one:
    the server, not this function, decides whether the bytes match."""
    async with _Reader(source) as reader:
        head = await reader.read(SNIFF_BYTES)
        if content_type is None and name is not None:
            content_type = _EXTENSIONS.get(Path(name).suffix.lower())
        declared = content_type or sniff(head) or CONTENT_TYPES[0]

        async def body() -> AsyncIterator[bytes]:
            piece = head
            while piece:
                yield piece
                piece = await reader.read(READ_UNIT)

        params = {"kind": "document", "content_type": declared}
        if room is not None:
            params["room"] = room
        if name is not None:
            params["name"] = name
        headers = {**_auth(account), "Content-Length": str(reader.size)}
        async with httpx.AsyncClient(base_url=account.base_url, timeout=_TIMEOUT) as http:
            response = await http.post(
                "/v1/attachments", params=params, headers=headers, content=body()
            )
    await _raise_for(response)
    described: dict[str, Any] = response.json()["attachment"]
    return described


async def download_document(
    account: Account, attachment_id: str, dest: Path | None = None
) -> bytes | Path:
    """Download a document and check it against its description (size, SHA-256, type
    by its first bytes)."""
    meta = await attachment_meta(account, attachment_id)
    checked = _Checked(None, meta["content_type"], meta["size"], bytes.fromhex(meta["sha256"]))
    async with httpx.AsyncClient(base_url=account.base_url, timeout=_TIMEOUT) as http:
        request = http.stream("GET", f"/v1/attachments/{attachment_id}", headers=_auth(account))
        return await _fetch(request, checked, dest)
