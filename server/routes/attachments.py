"""REST: attachments (upload, download, metadata, delete). See SPEC.md section 9.

Who may do what:

- upload: a chat file into a room the caller is a member of (identity verified); a
  document into such a room, or without a room (an identity document, which an
  unverified user must be able to send, once the e-mail address is confirmed: an
  account nobody confirmed must not be a place to store files);
- read (download, metadata): members of the attachment's room (verified); for an
  attachment without a room, its uploader only;
- delete: the uploader only. Once claimed, the attachment is gone for everyone
  (404); its blob is removed at once or, if the blob store fails midway, by retries in
  the background and, should the node die, by the orphan sweep.

An unknown id, and an attachment not yet complete or being deleted, are 404; an
attachment the caller may not read is 403. Ids are checked before anything is looked
up, so no path or name from the URL ever reaches the blob store.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from protocol.errors import ErrorCode
from protocol.filetypes import CONTENT_TYPES
from storage.base import AttachmentStore, RoomStore
from storage.errors import StorageError
from storage.types import Attachment

from ..clock import now_ms
from ..errors import ApiError
from ..handlers import Services
from ..limits import UserRates
from ..node import node
from ..openapi import api_route, boolean, integer, nullable, obj, string
from ..sessions import require_verified
from ..sweeper import finish_deletion
from ..uploads import (
    KINDS,
    content_disposition,
    document_name,
    open_content,
    receive,
    upload_request,
)
from .common import bearer
from .common import services as all_services

__all__ = ["routes"]


class AttachmentPorts(RoomStore, AttachmentStore, Protocol):
    """What attachments uses of the store."""


def services(request: Request) -> Services[AttachmentPorts]:
    return all_services(request)


log = logging.getLogger("confrere.attachments")

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def describe(svc: Services[AttachmentPorts], attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "kind": attachment.kind,
        "room": attachment.room_id,
        "uploader": attachment.uploader,
        "content_type": attachment.content_type,
        "name": document_name(svc, attachment),
        "size": attachment.size,
        "sha256": attachment.sha256,
        "created_at": attachment.created_at,
        "referenced": attachment.referenced_at is not None,
    }


async def _readable(request: Request) -> tuple[Services[AttachmentPorts], Attachment]:
    """The attachment of the URL, if the caller may read it; else 403/404."""
    attachment_id = request.path_params["attachment_id"]
    _, user = await bearer(request)
    svc = services(request)
    attachment = await svc.store.attachment(attachment_id) if _ID.fullmatch(attachment_id) else None
    if attachment is None or attachment.state != "ready":
        raise ApiError(ErrorCode.NOT_FOUND, "no such attachment")
    if attachment.room_id is None:
        if attachment.uploader != user.id:
            raise ApiError(ErrorCode.FORBIDDEN, "only its uploader may read this document")
        return svc, attachment
    require_verified(user)
    if await svc.store.membership(attachment.room_id, user.id) is None:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this attachment's room")
    return svc, attachment


async def upload(request: Request) -> Response:
    """``POST /v1/attachments?kind=&room=&content_type=&name=``: the body is the file
    (chat: its ciphertext). Every check that needs no body byte comes first."""
    _, user = await bearer(request)
    user_rates: UserRates = node(request).user_rates
    user_rates.uploads.check(user.id, "uploads")
    params = upload_request(request.query_params, dict(request.headers))
    svc = services(request)
    if params.kind == "chat" or params.room is not None:
        require_verified(user)
    elif not (user.email_confirmed or user.verified):
        raise ApiError(ErrorCode.FORBIDDEN, "confirm your e-mail address first")
    if params.room is not None and await svc.store.membership(params.room, user.id) is None:
        raise ApiError(ErrorCode.FORBIDDEN, "not a member of this room")
    try:
        attachment = await receive(svc, params, user.id, request.stream())
    except ClientDisconnect:
        log.info("upload by %s abandoned: the client disconnected mid-body", user.id)
        return Response(status_code=400)  # nobody is listening any more
    return JSONResponse(
        {"attachment": describe(svc, attachment)},
        status_code=201,
        headers={"Location": f"/v1/attachments/{attachment.id}"},
    )


async def download(request: Request) -> Response:
    """``GET /v1/attachments/{id}``: the bytes, streamed (a chat file's ciphertext, a
    document's plaintext)."""
    svc, attachment = await _readable(request)
    content = await open_content(svc, attachment)
    disposition = content_disposition(svc, attachment)
    chat = attachment.kind == "chat"
    return StreamingResponse(
        content,
        media_type="application/octet-stream" if chat else attachment.content_type,
        headers={
            "Content-Length": str(attachment.size),
            "Content-Disposition": disposition,
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def metadata(request: Request) -> Response:
    """``GET /v1/attachments/{id}/meta``: size, type, hash; for a chat file on a store
    that signs URLs (S3), also a short-lived ``download_url``."""
    svc, attachment = await _readable(request)
    ttl = node(request).settings.download_url_ttl_s
    url = await svc.blobs.presigned_url(attachment.id, ttl) if attachment.kind == "chat" else None
    return JSONResponse(
        {
            "attachment": describe(svc, attachment),
            "download_url": url,
            "download_url_expires_at": None if url is None else now_ms() + ttl * 1000,
        }
    )


async def delete(request: Request) -> Response:
    """``DELETE /v1/attachments/{id}``: by its uploader; the blob, then the row."""
    attachment_id = request.path_params["attachment_id"]
    _, user = await bearer(request)
    svc = services(request)
    found = await svc.store.attachment(attachment_id) if _ID.fullmatch(attachment_id) else None
    if found is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such attachment")
    if found.uploader != user.id:
        raise ApiError(ErrorCode.FORBIDDEN, "only its uploader may delete an attachment")
    if await svc.store.claim_attachment_deletion(attachment_id, uploader=user.id) is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such attachment")
    # Claimed: nobody reads it any more. The blob goes first, then the row; if the blob
    # store fails midway, the deletion is finished later (never forgotten).
    try:
        await svc.blobs.delete(attachment_id)
        await svc.store.delete_attachment(attachment_id)
    except StorageError as exc:
        log.warning("attachment %s: deletion to be finished later: %s", attachment_id, exc)
        finish_deletion(svc.store, svc.blobs, attachment_id)
    return Response(status_code=204)


_ATTACHMENT = obj(
    {
        "id": string(),
        "kind": string(enum=KINDS),
        "room": nullable(string()),
        "uploader": string(),
        "content_type": string(enum=CONTENT_TYPES),
        "name": nullable(string()),
        "size": integer(minimum=1),
        "sha256": nullable(string()),
        "created_at": integer(),
        "referenced": boolean(),
    }
)
_ONE = obj({"attachment": _ATTACHMENT})

routes = [
    api_route(
        "/v1/attachments",
        upload,
        "POST",
        summary="Upload a file (the body: a chat file's ciphertext, or a document)",
        body={"type": "string", "format": "binary"},
        request_content_type="application/octet-stream",
        query={
            "kind": string(enum=KINDS),
            "room": string(max_length=64),
            "content_type": string(enum=CONTENT_TYPES),
            "name": string(max_length=255),
        },
        required_query=("content_type",),
        response=_ONE,
        status=201,
        errors=(403, 404, 411, 413, 415),
    ),
    api_route(
        "/v1/attachments/{attachment_id}",
        download,
        summary="Download an attachment's bytes",
        response={"type": "string", "format": "binary"},
        content_type="application/octet-stream",
        errors=(403, 404),
    ),
    api_route(
        "/v1/attachments/{attachment_id}",
        delete,
        "DELETE",
        summary="Delete an attachment (its uploader only)",
        status=204,
        errors=(403, 404),
    ),
    api_route(
        "/v1/attachments/{attachment_id}/meta",
        metadata,
        summary="An attachment's metadata, with a presigned download URL where available",
        response=obj(
            {
                "attachment": _ATTACHMENT,
                "download_url": nullable(string()),
                "download_url_expires_at": nullable(integer()),
            }
        ),
        errors=(403, 404),
    ),
]
