"""REST: the manual identity review queue, for users with the "reviewer" role.

- ``GET /v1/review/requests``: pending requests, oldest first, each flagged
  ``overdue`` when older than 24 hours, with its documents.
- ``GET /v1/review/documents/{id}``: a document's photo (decrypted), while kept.
- ``POST /v1/review/requests/{id}/decision``: approve, or reject with a reason.

The user hears of the decision by e-mail (outbox templates "identity_approved" and
"identity_rejected", data ``{"reason"}`` for a rejection), written in the decision's
transaction. Documents are deleted ``CONFRERE_IDENTITY_RETENTION_S`` after it by the
retention sweep (:mod:`server.verification.sweep`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from protocol.errors import ErrorCode
from storage.audit import AuditStore
from storage.base import UserStore
from storage.directory import DirectoryStore
from storage.outbox import NewNotification
from storage.roles import RoleStore
from storage.types import User
from storage.verification import VerificationStore

from ..audit import record
from ..bodies import Choice, Text, schema_of
from ..clock import now_ms
from ..directory.profiles import on_identity_verified
from ..errors import ApiError, bad_field
from ..handlers import Services
from ..openapi import api_route, array, boolean, integer, nullable, obj, string
from ..sessions import require_role
from ..verification import review
from .common import bearer, read_body
from .common import services as all_services
from .verification import IDENTITY_REQUEST, identity_request_json

__all__ = ["routes"]


class ReviewPorts(UserStore, VerificationStore, RoleStore, AuditStore, DirectoryStore, Protocol):
    """What review uses of the store."""


def services(request: Request) -> Services[ReviewPorts]:
    return all_services(request)


log = logging.getLogger("confrere.review")

_QUEUE_LIMIT = 200


async def _reviewer(request: Request) -> tuple[Services[ReviewPorts], User]:
    _, user = await bearer(request)
    svc = services(request)
    await require_role(svc.store, user, "reviewer")
    return svc, user


async def queue(request: Request) -> Response:
    svc, _ = await _reviewer(request)
    now = now_ms()
    out = []
    for req, user in await svc.store.pending_identity_requests(_QUEUE_LIMIT):
        docs = await svc.store.documents_of_request(req.id)
        out.append(
            {
                **identity_request_json(req),
                "overdue": now - req.created_at > review.OVERDUE_MS,
                "user": {
                    "id": user.id,
                    "email": user.email,
                    "first_name": user.first_name,
                    "last_name": user.last_name,
                    "specialty": user.specialty,
                    "rpps": user.rpps,
                },
                "documents": [
                    {"id": d.id, "side": d.side, "content_type": d.content_type, "size": d.size}
                    for d in docs
                ],
            }
        )
    return JSONResponse({"requests": out})


async def document(request: Request) -> Response:
    svc, reviewer = await _reviewer(request)
    doc = await svc.store.identity_document(request.path_params["id"])
    if doc is None or doc.request_id is None or doc.state != "ready":
        raise ApiError(ErrorCode.NOT_FOUND, "no such document (it may have been deleted)")
    if doc.key_id != svc.server_key.id:
        log.error("identity document %s is under another server key", doc.id)
        raise ApiError(ErrorCode.UNAVAILABLE, "this document cannot be decrypted by this node")
    source = await svc.blobs.open(doc.id)  # NotFound → 404 by the app's handler
    log.info("reviewer %s viewed identity document %s", reviewer.id, doc.id)
    await record(svc.store, "identity.document_viewed", reviewer.id, doc.user_id, document=doc.id)
    return StreamingResponse(
        svc.server_key.unseal(source, doc.id),
        media_type=doc.content_type,
        headers={
            "Content-Length": str(doc.size),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@dataclass(frozen=True, slots=True)
class DecisionBody:
    decision: Annotated[str, Choice(("approve", "reject"))]
    # Required to reject (checked by decide); e-mailed to the user as written.
    reason: Annotated[str | None, Text(review.REJECT_REASON_MAX, 0, multiline=True)] = None


async def decide(request: Request) -> Response:
    svc, reviewer = await _reviewer(request)
    body = await read_body(request, DecisionBody)
    decision, reason = body.decision, body.reason
    if decision == "reject" and not reason:
        raise bad_field("reason", "is required to reject")
    request_id = request.path_params["id"]
    current = await svc.store.identity_request(request_id)
    if current is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no such verification request")
    if current.user_id == reviewer.id:
        raise ApiError(ErrorCode.FORBIDDEN, "a reviewer cannot decide their own request")
    try:
        state = review.next_state(current.state, decision)  # type: ignore[arg-type]
    except review.InvalidTransition as exc:
        raise ApiError(ErrorCode.CONFLICT, str(exc)) from None
    owner = await svc.store.user_by_id(current.user_id)
    if owner is None:
        raise ApiError(ErrorCode.NOT_FOUND, "this account no longer exists")
    if state == "approved":
        notice = NewNotification("email", owner.email, "identity_approved", {"method": "manual"})
    else:
        notice = NewNotification("email", owner.email, "identity_rejected", {"reason": reason})
    # Decided meanwhile, or gone: answered by server.errors.from_storage.
    decided, user = await svc.store.decide_identity_request(
        request_id, state, reviewer.id, reason, [notice], now_ms()
    )
    log.info("request %s %s by reviewer %s", decided.id, decided.state, reviewer.id)
    await record(
        svc.store,
        "identity.reviewed",
        reviewer.id,
        decided.user_id,
        request=decided.id,
        state=decided.state,
    )
    if decided.state == "approved":
        await on_identity_verified(svc.store, user)
    return JSONResponse({"request": identity_request_json(decided)})


_QUEUE_ITEM = obj(
    {
        **IDENTITY_REQUEST["properties"],
        "overdue": boolean(),
        "user": obj(
            {
                "id": string(),
                "email": string(),
                "first_name": string(),
                "last_name": string(),
                "specialty": string(),
                "rpps": nullable(string()),
            }
        ),
        "documents": array(
            obj({"id": string(), "side": string(), "content_type": string(), "size": integer()})
        ),
    }
)

routes = [
    api_route(
        "/v1/review/requests",
        queue,
        summary="Pending identity verifications, oldest first (overdue after 24 h)",
        auth="role:reviewer",
        response=obj({"requests": array(_QUEUE_ITEM)}),
    ),
    api_route(
        "/v1/review/documents/{id}",
        document,
        summary="An identity document's photo, decrypted",
        auth="role:reviewer",
        content_type="image/jpeg",
        response={"type": "string", "format": "binary"},
        errors=(404,),
    ),
    api_route(
        "/v1/review/requests/{id}/decision",
        decide,
        "POST",
        summary="Approve, or reject with a reason (the user is told by e-mail)",
        auth="role:reviewer",
        body=schema_of(DecisionBody),
        response=obj({"request": IDENTITY_REQUEST}),
        errors=(404, 409, 413),
    ),
]
