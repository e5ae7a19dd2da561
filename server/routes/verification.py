"""REST: identity verification, by Pro Santé Connect or by manual review.

- ``GET /v1/verification``: the caller's status (badge, e-mail, last manual request).
- ``POST /v1/verification/psc/start``: the provider's authorization URL for this
  account (the client navigates there); ``GET /v1/verification/psc/callback``: where
  the provider sends the browser back. A card whose names and number match the
  account verifies it; a mismatch leaves it unverified and points to manual review.
- ``PUT /v1/verification/documents/{side}``: an identity document photo (front, back,
  selfie), JPEG or PNG by its magic bytes, at most 10 MiB, stored encrypted under the
  server key; ``POST /v1/verification/manual`` submits them for review.

Both ways require a confirmed e-mail address; PSC starts and photo uploads are
rate-limited per account. Verification takes effect on live
WebSocket connections without reconnecting: the gateway re-reads an unverified
account on each request, and welcomes it again (``re`` 0) once it is verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from protocol.errors import ErrorCode
from protocol.filetypes import JPEG, PNG
from storage.base import UserStore
from storage.directory import DirectoryStore
from storage.errors import NumberTaken
from storage.ids import new_id
from storage.outbox import NewNotification
from storage.types import User
from storage.verification import IdentityDocument, IdentityRequest, VerificationStore

from ..bodies import Choice, Pattern, schema_of
from ..clock import now_ms
from ..directory.profiles import on_identity_verified
from ..errors import ApiError, bad_field
from ..handlers import Services
from ..node import node, psc_redirect_uri
from ..openapi import Schema, api_route, array, boolean, integer, nullable, obj, string
from ..uploads import Intake, UploadRequest
from ..verification import oidc, psc, psc_signup, review
from ..verification.identifiers import InvalidIdentifier, parse_number
from .accounts import PROFILE, client_address, profile
from .common import bearer, read_body
from .common import services as all_services

__all__ = ["identity_request_json", "mark_verified", "routes"]


class VerificationPorts(UserStore, VerificationStore, DirectoryStore, Protocol):
    """What verification uses of the store."""


def services(request: Request) -> Services[VerificationPorts]:
    return all_services(request)


log = logging.getLogger("confrere.verification")

PSC_FLOW_TTL_MS = 10 * 60 * 1000  # time to authenticate with the card at the provider
PSC_COOKIE = "confrere_psc"
IMAGE_TYPES = (JPEG, PNG)


async def mark_verified(
    svc: Services[VerificationPorts],
    user: User,
    number: str | None,
    notifications: list[NewNotification],
) -> User:
    """Verify ``user`` (both ways end here or in the review decision), then what
    follows (:func:`on_identity_verified`). Live connections learn it on their next
    request (see the module doc)."""
    verified = await svc.store.mark_identity_verified(user.id, number, notifications, now_ms())
    await on_identity_verified(svc.store, verified)
    return verified


def _require_email_confirmed(user: User) -> None:
    if not user.email_confirmed:
        raise ApiError(
            ErrorCode.FORBIDDEN, "confirm your e-mail address first", reason="email_unconfirmed"
        )


def _require_unverified(user: User) -> None:
    if user.verified:
        raise ApiError(
            ErrorCode.CONFLICT, "this account is verified already", reason="already_verified"
        )


def identity_request_json(req: IdentityRequest) -> dict[str, Any]:
    return {
        "id": req.id,
        "document": req.document,
        "issuing_country": req.issuing_country,
        "state": req.state,
        "created_at": req.created_at,
        "decided_at": req.decided_at,
        "reason": req.reason,
        "documents_deleted": req.documents_deleted_at is not None,
    }


IDENTITY_REQUEST: Schema = obj(
    {
        "id": string(),
        "document": string(enum=tuple(review.DOCUMENT_KINDS)),
        "issuing_country": nullable(string()),
        "state": string(enum=("pending", "approved", "rejected")),
        "created_at": integer(),
        "decided_at": nullable(integer()),
        "reason": nullable(string()),
        "documents_deleted": boolean(),
    }
)

_CARD = obj({"first_name": string(), "last_name": string(), "rpps": string()})
_CARD_TICKET = obj(
    {"first_name": string(), "last_name": string(), "rpps": string(), "expires_at": integer()}
)

# -- status


def _ecps_identifier(user: User) -> str | None:
    """What to type in the e-CPS app: the number with its prefix (8 RPPS, 0 ADELI)."""
    if user.rpps is None:
        return None
    try:
        return parse_number(user.rpps).id_nat
    except InvalidIdentifier:
        return None


async def status(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    requests = await svc.store.identity_requests_of(user.id)
    staged = await svc.store.staged_documents(user.id)
    return JSONResponse(
        {
            "user": profile(user),
            "psc_available": bool(node(request).settings.psc_issuer),
            "ecps_identifier": _ecps_identifier(user),
            "manual": identity_request_json(requests[0]) if requests else None,
            "staged_documents": [d.side for d in staged],
        }
    )


# -- Pro Santé Connect


def _psc_client(request: Request) -> oidc.OidcClient:
    client = node(request).psc
    if client is None:
        raise ApiError(
            ErrorCode.UNAVAILABLE,
            "Pro Santé Connect is not configured on this server",
            reason="psc_not_configured",
        )
    return client


def _state_hash(state: str) -> bytes:
    return hashlib.sha256(state.encode()).digest()


def _psc_response(request: Request, state: str, url: str, expires_at: int) -> Response:
    """The start's answer, with the cookie that ties the flow to this browser."""
    svc = services(request)
    response = JSONResponse({"authorization_url": url, "expires_at": expires_at})
    response.set_cookie(
        PSC_COOKIE,
        oidc.browser_binding(svc.server_key.key, state),
        max_age=PSC_FLOW_TTL_MS // 1000,
        path="/v1/verification/psc",
        # From the configured public URL: behind a TLS proxy the node itself sees http.
        secure=_secure(request),
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
    )
    return response


def _secure(request: Request) -> bool:
    return urlsplit(psc_redirect_uri(node(request).settings)).scheme == "https"


def _psc_unavailable() -> ApiError:
    return ApiError(
        ErrorCode.UNAVAILABLE, "Pro Santé Connect is unavailable", 5.0, reason="psc_unavailable"
    )


async def _authorization_url(request: Request, client: oidc.OidcClient, state: str) -> str:
    verifier, nonce = oidc.flow_secrets(services(request).server_key.key, state)
    try:
        return await client.authorization_url(state, nonce, verifier)
    except oidc.OidcError as exc:
        log.warning("Pro Santé Connect unavailable: %s", exc.reason)
        raise _psc_unavailable() from None


async def psc_start(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    _require_email_confirmed(user)
    _require_unverified(user)
    client = _psc_client(request)
    node(request).limiters.verification.check(user.id, "verification attempts")
    state = secrets.token_urlsafe(32)
    url = await _authorization_url(request, client, state)
    now = now_ms()
    await svc.store.create_psc_flow(_state_hash(state), user.id, now, now + PSC_FLOW_TTL_MS)
    return _psc_response(request, state, url, now + PSC_FLOW_TTL_MS)


async def psc_signup_start(request: Request) -> Response:
    """Sign-up by Pro Santé Connect: no account yet (see :mod:`..verification.psc_signup`)."""
    client = _psc_client(request)
    node(request).limiters.verification.check(
        "address\n" + client_address(request), "sign-up attempts"
    )
    expires_at = now_ms() + PSC_FLOW_TTL_MS
    state = psc_signup.new_state(services(request).server_key.key, expires_at)
    url = await _authorization_url(request, client, state)
    return _psc_response(request, state, url, expires_at)


async def psc_signup_card(request: Request) -> Response:
    """What the Pro Santé Connect ticket of this browser says, to pre-fill the form."""
    token = request.cookies.get(psc_signup.TICKET_COOKIE, "")
    try:
        card, expires_at = psc_signup.read_ticket(services(request).server_key.key, token, now_ms())
    except psc_signup.BadToken:
        raise ApiError(
            ErrorCode.NOT_FOUND,
            "no Pro Santé Connect sign-up in progress in this browser",
            reason="psc_ticket_missing",
        ) from None
    return JSONResponse({**psc_signup.prefill(card), "expires_at": expires_at})


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What the callback answers: the JSON for API clients, the fragment for a browser
    (sent to ``page``), and the sign-up ticket cookie when there is one."""

    answer: dict[str, Any]
    fragment: dict[str, str]
    page: str = "/"
    ticket: tuple[str, int] | None = None  # (token, max-age in s)


async def psc_callback(request: Request) -> Response:
    """The provider redirects the browser here with ``code`` and ``state`` (or an
    ``error``). The state names the flow and is good once: a replay is refused.

    JSON for API clients; a browser (``Accept: text/html``) is sent back to the web
    client with the outcome in the fragment: ``/#verification=verified``,
    ``/#verification=mismatch&fields=…``, ``…#verification=error&reason=…&message=…``,
    or, for a sign-up, ``/inscription#verification=signup``.
    """
    signup = psc_signup.is_signup_state(request.query_params.get("state", ""))
    try:
        outcome = await _psc_outcome(request)
    except ApiError as exc:
        if not _browser(request):
            raise
        fragment = {"verification": "error", "reason": exc.reason or exc.code.value}
        fragment["message"] = exc.message
        page = "/inscription" if signup else "/"
        return RedirectResponse(page + "#" + urlencode(fragment), 303)
    response: Response
    if _browser(request):
        response = RedirectResponse(outcome.page + "#" + urlencode(outcome.fragment), 303)
    else:
        response = JSONResponse(outcome.answer)
    if outcome.ticket is not None:
        token, max_age = outcome.ticket
        response.set_cookie(
            psc_signup.TICKET_COOKIE,
            token,
            max_age=max_age,
            path="/v1/accounts",
            secure=_secure(request),
            httponly=True,
            samesite="strict",  # read by the sign-up page's own requests only
        )
    return response


def _browser(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _card(request: Request, state: str, code: str, who: str) -> psc.CardIdentity:
    """Exchange the code and read the practitioner's identity from the answer."""
    verifier, nonce = oidc.flow_secrets(services(request).server_key.key, state)
    try:
        identity = await _psc_client(request).exchange(code, verifier, nonce)
        return psc.card_identity(identity)
    except oidc.OidcError as exc:
        log.warning("Pro Santé Connect answer refused for %s: %s", who, exc.reason)
        if "unreachable" in exc.reason:
            raise _psc_unavailable() from None
        raise ApiError(
            ErrorCode.BAD_FRAME,
            f"Pro Santé Connect answer refused: {exc.reason}",
            reason="psc_answer_refused",
        ) from None


def _state_refused() -> ApiError:
    return ApiError(
        ErrorCode.BAD_FRAME,
        "field 'state' names no verification in progress (unknown, used or expired)",
        reason="psc_state",
    )


async def _psc_outcome(request: Request) -> _Outcome:
    svc = services(request)
    query = request.query_params
    state = query.get("state", "")
    if not state or len(state) > 400:
        raise _state_refused()
    # Checked before the flow is taken: a wrong browser does not spend the owner's flow.
    binding = request.cookies.get(PSC_COOKIE, "")
    expected = oidc.browser_binding(svc.server_key.key, state)
    if not hmac.compare_digest(binding.encode(), expected.encode()):
        raise ApiError(
            ErrorCode.FORBIDDEN,
            "this verification was not started in this browser",
            reason="psc_other_browser",
        )
    now = now_ms()
    signup = psc_signup.is_signup_state(state)
    user_id: str | None = None
    if signup:
        try:
            psc_signup.read_state(svc.server_key.key, state, now)
        except psc_signup.BadToken:
            raise _state_refused() from None
    else:
        user_id = await svc.store.take_psc_flow(_state_hash(state), now)
        if user_id is None:
            raise _state_refused()
    if "error" in query:
        log.info("Pro Santé Connect refused for %s: %s", user_id, query.get("error", "")[:64])
        raise ApiError(
            ErrorCode.FORBIDDEN, "Pro Santé Connect did not authenticate you", reason="psc_refused"
        )
    code = query.get("code", "")
    if not code or len(code) > 2000:
        raise bad_field("code", "is missing")
    if signup:
        card = await _card(request, state, code, "a sign-up")
        expires_at = now + psc_signup.TICKET_TTL_MS
        token = psc_signup.ticket(svc.server_key.key, card, expires_at)
        answer = {"outcome": "signup", "card": psc_signup.prefill(card), "expires_at": expires_at}
        return _Outcome(
            answer,
            {"verification": "signup"},
            "/inscription",
            (token, psc_signup.TICKET_TTL_MS // 1000),
        )
    assert user_id is not None
    user = await svc.store.user_by_id(user_id)
    if user is None:
        raise ApiError(ErrorCode.NOT_FOUND, "this account no longer exists")
    card = await _card(request, state, code, user_id)
    if user.verified:
        return _Outcome(
            {"outcome": "verified", "mismatch": [], "user": profile(user)},
            {"verification": "verified"},
        )
    wrong = psc.mismatches(user, card)
    if wrong:
        log.info("Pro Santé Connect identity differs for %s: %s", user.id, ",".join(wrong))
        return _Outcome(
            {
                "outcome": "mismatch",
                "mismatch": wrong,
                "next": "manual",
                "manual_verification": "/v1/verification/manual",
                "user": profile(user),
            },
            {"verification": "mismatch", "fields": ",".join(wrong)},
        )
    notice = NewNotification("email", user.email, "identity_verified", {"method": "psc"})
    try:
        verified = await mark_verified(svc, user, card.practitioner.number, [notice])
    except NumberTaken:
        log.warning("Pro Santé Connect card of %s already verifies another account", user.id)
        raise ApiError(
            ErrorCode.CONFLICT,
            "this card's RPPS/ADELI number already verifies another account",
            reason="number_taken",
        ) from None
    log.info("identity of %s verified by Pro Santé Connect", user.id)
    return _Outcome(
        {"outcome": "verified", "mismatch": [], "user": profile(verified)},
        {"verification": "verified"},
    )


# -- manual verification: documents, then the request


def _document_upload(request: Request, side: str) -> UploadRequest:
    """Checks made before any byte of the body is read."""
    if side not in review.SIDES:
        raise bad_field("side", f"must be one of {', '.join(review.SIDES)}")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        raise ApiError(
            ErrorCode.BAD_FRAME, "identity documents must be JPEG or PNG photos (Content-Type)"
        )
    declared = request.headers.get("content-length")
    if declared is None:
        raise ApiError(ErrorCode.BAD_FRAME, "uploads need a Content-Length header", status=411)
    if not (declared.isascii() and declared.isdigit()) or len(declared) > 18:
        raise ApiError(ErrorCode.BAD_FRAME, "Content-Length must be a number of bytes")
    length = int(declared)
    if length == 0:
        raise ApiError(ErrorCode.BAD_FRAME, "empty file")
    if length > review.MAX_DOCUMENT_BYTES:
        raise ApiError(
            ErrorCode.TOO_LARGE, f"identity photos are limited to {review.MAX_DOCUMENT_BYTES} bytes"
        )
    return UploadRequest("document", None, content_type, None, length)


async def _forget_upload(svc: Services[VerificationPorts], doc_id: str) -> None:
    """Remove what a failed upload left; runs to its end even while the request is
    being cancelled (a client that went away). Should it fail, the sweep finishes."""

    async def forget() -> None:
        await svc.blobs.delete(doc_id)
        await svc.store.delete_identity_document(doc_id)

    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(forget())


async def put_document(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    _require_email_confirmed(user)
    _require_unverified(user)
    upload = _document_upload(request, request.path_params["side"])
    node(request).limiters.verification.check(user.id, "verification attempts")
    doc = IdentityDocument(
        "idv-" + new_id(),
        user.id,
        request.path_params["side"],
        upload.content_type,
        0,
        svc.server_key.id,
        None,
        "uploading",
        now_ms(),
    )
    # The row first: a node dying mid-upload leaves a row the sweep finds.
    await svc.store.create_identity_document(doc)
    intake = Intake(upload)
    try:
        await svc.blobs.put(doc.id, svc.server_key.seal(intake.body(request.stream())))
        replaced = await svc.store.complete_identity_document(doc.id, intake.size)
    except BaseException:
        await _forget_upload(svc, doc.id)
        raise
    for old in replaced:  # the previous photo of this side: no longer wanted
        await svc.blobs.delete(old)
        await svc.store.forget_identity_documents([old], now_ms())
    log.info("identity document %s (%s) stored for %s", doc.id, doc.side, user.id)
    return JSONResponse(
        {"document": {"id": doc.id, "side": doc.side, "content_type": doc.content_type}},
        status_code=201,
    )


_COUNTRY_WHY = "must be the ISO 3166 code of the issuing country"


@dataclass(frozen=True, slots=True)
class ManualBody:
    document: Annotated[str, Choice(tuple(review.DOCUMENT_KINDS))]
    # Required for an identity card (checked by submit_manual).
    issuing_country: Annotated[str | None, Pattern("^[A-Za-z]{2}$", _COUNTRY_WHY)] = None


async def submit_manual(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    _require_email_confirmed(user)
    _require_unverified(user)
    body = await read_body(request, ManualBody)
    document, country = body.document, body.issuing_country
    if document == "id_card" and country is None:
        raise bad_field("issuing_country", _COUNTRY_WHY)
    country = country.upper() if country is not None else None
    sides = review.required_sides(document)
    staged = {d.side for d in await svc.store.staged_documents(user.id)}
    missing = [s for s in sides if s not in staged]
    if missing:
        raise bad_field(
            "document", f"needs these photos first (PUT /v1/verification/documents/…): {missing}"
        )
    req = IdentityRequest(
        new_id(), user.id, document, country, "pending", now_ms(), None, None, None, None
    )
    # Pending already, photos gone meanwhile: answered by server.errors.from_storage.
    await svc.store.submit_identity_request(req, sides)
    log.info("manual verification %s submitted by %s", req.id, user.id)
    return JSONResponse({"request": identity_request_json(req)}, status_code=201)


routes = [
    api_route(
        "/v1/verification",
        status,
        summary="The caller's verification status",
        response=obj(
            {
                "user": PROFILE,
                "psc_available": boolean(),
                "ecps_identifier": nullable(string()),
                "manual": nullable(IDENTITY_REQUEST),
                "staged_documents": array(string()),
            }
        ),
    ),
    api_route(
        "/v1/verification/psc/start",
        psc_start,
        "POST",
        summary="Start Pro Santé Connect: the authorization URL to send the browser to",
        response=obj({"authorization_url": string(), "expires_at": integer()}),
        errors=(403, 409),
    ),
    api_route(
        "/v1/verification/psc/callback",
        psc_callback,
        summary="Where Pro Santé Connect returns the browser (code, state)",
        auth="none",
        query={"code": string(), "state": string(), "error": string()},
        response=obj(
            {
                "outcome": string(enum=("verified", "mismatch", "signup")),
                "mismatch": array(string(enum=("first_name", "last_name", "rpps"))),
                "user": PROFILE,
                "card": _CARD,
                "expires_at": integer(),
            },
            required=("outcome",),
        ),
        errors=(403, 404, 409),
    ),
    api_route(
        "/v1/accounts/psc/start",
        psc_signup_start,
        "POST",
        summary="Sign up with Pro Santé Connect: the authorization URL (no account yet)",
        auth="none",
        response=obj({"authorization_url": string(), "expires_at": integer()}),
    ),
    api_route(
        "/v1/accounts/psc",
        psc_signup_card,
        summary="The card of this browser's Pro Santé Connect sign-up (pre-fills the form)",
        auth="none",
        response=_CARD_TICKET,
        errors=(404,),
    ),
    api_route(
        "/v1/verification/documents/{side}",
        put_document,
        "PUT",
        summary="Upload an identity photo (front, back or selfie): JPEG or PNG, 10 MiB",
        request_content_type="image/jpeg",
        body={"type": "string", "format": "binary"},
        response=obj(
            {"document": obj({"id": string(), "side": string(), "content_type": string()})}
        ),
        status=201,
        errors=(403, 409, 411, 413),
    ),
    api_route(
        "/v1/verification/manual",
        submit_manual,
        "POST",
        summary="Submit the uploaded photos for manual review",
        body=schema_of(ManualBody),
        response=obj({"request": IDENTITY_REQUEST}),
        status=201,
        errors=(403, 409, 413),
    ),
]
# The callback's URL is derived from its route name when CONFRERE_PSC_REDIRECT_URI is unset.
for _route in routes:
    if _route.path == "/v1/verification/psc/callback":
        _route.name = "psc_callback"
