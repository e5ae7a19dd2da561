"""Attachments in and out: the checks made before an upload's body is read, the stream
from the request into the blob store, and the stream from the blob store to a reader.

Upload (``receive``): the metadata row is written first, in state "uploading", so a
node that dies mid-upload leaves a row the orphan sweep finds. The body then flows
chunk by chunk through :class:`Intake` (counts against ``Content-Length``, hashes,
checks the first bytes) and, for a document, the server-key encryption, into
:meth:`BlobStore.put`. Memory stays at one chunk plus the blob store's write unit,
whatever the file's size. Any failure (a limit, a client that disconnects, the store)
aborts the blob write, which leaves nothing, and deletes the row; success marks the
row "ready" with the size and SHA-256 of the bytes received.

Limits (``protocol.limits.MAX_ATTACHMENT``, 50 MiB of plaintext):

- chat files arrive encrypted by the client (:mod:`protocol.crypto.attachment`): their
  ``Content-Length`` must be exactly the ciphertext size of 1 byte to 50 MiB of
  plaintext, and their first byte the stream's version;
- documents arrive in clear: 1 byte to 50 MiB, and their first bytes must be the
  signature of the declared type (:func:`protocol.filetypes.sniff`). They are stored
  encrypted under the server key (same stream format) and decrypted when read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

from starlette.datastructures import QueryParams

from protocol.crypto.attachment import (
    ATTACHMENT_VERSION,
    MAX_CIPHERTEXT,
    MAX_FILE_NAME,
    plaintext_size,
)
from protocol.errors import ErrorCode
from protocol.filetypes import CONTENT_TYPES, SNIFF_BYTES, describe, sniff
from protocol.limits import MAX_ATTACHMENT, MAX_ID
from storage.base import AttachmentStore
from storage.types import Attachment, NewAttachment

from .clock import now_ms
from .errors import ApiError, bad_request
from .handlers import Services
from .server_key import FIELD_PREFIX

__all__ = [
    "Intake",
    "UploadRequest",
    "content_disposition",
    "document_name",
    "open_content",
    "receive",
    "upload_request",
]


_DOCUMENT_NAME = "attachment.name"  # the purpose a document's name is sealed for

log = logging.getLogger("confrere.attachments")

KINDS = ("chat", "document")
_PARAMS = {"kind", "room", "content_type", "name"}


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """An upload's parameters, checked; ``length`` is the declared body size."""

    kind: str
    room: str | None
    content_type: str
    name: str | None
    length: int


def check_file_name(name: str) -> str:
    """A display name, never a path: no separators, no control characters, not a dot
    name. Raise a 400 naming the problem."""
    name = name.strip()
    if not 0 < len(name) <= MAX_FILE_NAME:
        raise bad_request(f"field 'name' must have 1 to {MAX_FILE_NAME} characters")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise bad_request("field 'name' must be a file name, not a path")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise bad_request("field 'name' must not contain control characters")
    return name


def _length(headers: dict[str, str]) -> int:
    declared = headers.get("content-length")
    if declared is None:
        raise ApiError(
            ErrorCode.BAD_FRAME,
            "uploads need a Content-Length header (chunked bodies are not accepted)",
            status=411,
        )
    if not (declared.isascii() and declared.isdigit()) or len(declared) > 18:
        raise bad_request("Content-Length must be a number of bytes")
    return int(declared)


def upload_request(query: QueryParams, headers: dict[str, str]) -> UploadRequest:
    """Check an upload's query and ``Content-Length`` before any byte of the body is
    read: 411 without a length, 413 for a size over the limit, 400 for the rest."""
    unknown = set(query) - _PARAMS
    if unknown:
        raise bad_request(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    kind = query.get("kind", "chat")
    if kind not in KINDS:
        raise bad_request("field 'kind' must be one of chat, document")
    room = query.get("room") or None
    if room is not None and len(room) > MAX_ID:
        raise bad_request(f"field 'room' is longer than {MAX_ID} characters")
    if kind == "chat" and room is None:
        raise bad_request("field 'room' is required for chat files")
    content_type = query.get("content_type")
    if content_type not in CONTENT_TYPES:
        raise bad_request(f"field 'content_type' must be one of {', '.join(CONTENT_TYPES)}")
    name = query.get("name")
    if name is not None:
        if kind == "chat":
            raise bad_request("the name of a chat file travels inside the encrypted message")
        name = check_file_name(name)
    length = _length(headers)
    if length == 0:
        raise bad_request("empty file")
    if kind == "chat":
        if length > MAX_CIPHERTEXT:
            raise ApiError(
                ErrorCode.TOO_LARGE,
                f"file exceeds {MAX_ATTACHMENT} bytes (ciphertext of {length} bytes)",
            )
        plain = plaintext_size(length)
        if plain is None:
            raise bad_request(
                f"Content-Length {length} is not the size of an attachment ciphertext"
            )
        if plain == 0:
            raise bad_request("empty file")
    elif length > MAX_ATTACHMENT:
        raise ApiError(ErrorCode.TOO_LARGE, f"file exceeds {MAX_ATTACHMENT} bytes")
    return UploadRequest(kind, room, content_type, name, length)


class Intake:
    """Counts, hashes and checks an upload's body as it streams through
    :meth:`body`; raises :class:`ApiError` as soon as the bytes break a rule."""

    def __init__(self, upload: UploadRequest) -> None:
        self.upload = upload
        self.size = 0
        self._sha = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def _check_start(self, first: bytes) -> None:
        if self.upload.kind == "chat":
            if first[0] != ATTACHMENT_VERSION:
                raise bad_request("body is not an encrypted attachment (unknown format version)")
            return
        found = sniff(first)
        if found is None:
            raise bad_request(
                "file content is not a PDF, JPEG or PNG"
                " (checked by its first bytes, not by its name or declared type)"
            )
        if found != self.upload.content_type:
            raise bad_request(
                f"file content is {describe(found)}, not {describe(self.upload.content_type)}"
                " as declared"
            )

    async def body(self, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``source``'s chunks, once they pass the checks. The first bytes are held
        until :data:`SNIFF_BYTES` of them arrived (or the whole body, if shorter)."""
        declared = self.upload.length
        head: bytearray | None = bytearray()
        async for chunk in source:
            if not chunk:
                continue
            self.size += len(chunk)
            if self.size > declared:
                raise ApiError(
                    ErrorCode.TOO_LARGE, "request body is longer than its Content-Length"
                )
            self._sha.update(chunk)
            if head is not None:
                head += chunk
                if len(head) < SNIFF_BYTES and self.size < declared:
                    continue
                self._check_start(bytes(head))
                chunk, head = bytes(head), None
            yield chunk
        if self.size < declared:
            raise bad_request("request body ended before its Content-Length")


async def _forget(svc: Services[AttachmentStore], attachment_id: str) -> None:
    """Remove the row of an upload that did not complete; runs to its end even while
    the request is being cancelled."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(svc.store.delete_attachment(attachment_id))


async def receive(
    svc: Services[AttachmentStore],
    upload: UploadRequest,
    uploader: str,
    source: AsyncIterator[bytes],
) -> Attachment:
    """Store an upload whose parameters were checked; return its "ready" metadata."""
    document = upload.kind == "document"
    attachment = await svc.store.create_attachment(
        NewAttachment(
            uploader,
            upload.kind,
            upload.content_type,
            now_ms(),
            room_id=upload.room,
            # Only documents have a name here (a chat file's travels encrypted in its
            # message); it is sealed under the server key like the document.
            name=None
            if upload.name is None
            else svc.server_key.seal_field(upload.name.encode(), _DOCUMENT_NAME),
            key_id=svc.server_key.id if document else None,
        )
    )
    intake = Intake(upload)
    body = intake.body(source)
    if document:
        body = svc.server_key.seal(body)
    try:
        await svc.blobs.put(attachment.id, body)
    except BaseException:
        await _forget(svc, attachment.id)
        raise
    done = await svc.store.complete_attachment(attachment.id, intake.size, intake.sha256)
    if done is None:  # deleted by its uploader, or swept, while it was arriving
        await svc.blobs.delete(attachment.id)
        await _forget(svc, attachment.id)
        raise ApiError(ErrorCode.CONFLICT, "the attachment was deleted during its upload")
    log.info("attachment %s stored: %s, %d bytes", done.id, done.kind, done.size)
    return done


def document_name(svc: Services[AttachmentStore], attachment: Attachment) -> str | None:
    """A document's file name, opened (stored sealed under the server key; a name
    stored in clear before that is returned as it is)."""
    name = attachment.name
    if name is None or not name.startswith(FIELD_PREFIX):
        return name
    key = svc.server_key.for_id(attachment.key_id)
    if key is None:
        return None  # reported by open_content, which refuses the bytes too
    return key.open_field(name, _DOCUMENT_NAME).decode()


def content_disposition(svc: Services[AttachmentStore], attachment: Attachment) -> str:
    """``attachment``, with the document's file name if it has one (RFC 6266)."""
    name = document_name(svc, attachment)
    return "attachment" if name is None else f"attachment; filename*=UTF-8''{quote(name, safe='')}"


async def open_content(
    svc: Services[AttachmentStore], attachment: Attachment
) -> AsyncGenerator[bytes, None]:
    """The bytes a reader downloads: a chat file's ciphertext as stored, a document's
    plaintext. Raises before the first byte if the blob is missing or the document is
    under another server key."""
    source = await svc.blobs.open(attachment.id)
    if attachment.kind != "document":
        return source
    key = svc.server_key.for_id(attachment.key_id)  # the current key, or a rotated one
    if key is None:
        await source.aclose()
        log.error(
            "document %s is encrypted under server key %s, this node has %s",
            attachment.id,
            attachment.key_id,
            svc.server_key.id,
        )
        raise ApiError(ErrorCode.INTERNAL, "this document cannot be decrypted by this node")
    return key.unseal(source, attachment.id)
