"""REST: the account lifecycle. A forgotten password reset by an e-mail code, a password
change, the list of one's log-in sessions and their revocation (SPEC.md §9.4).

- ``POST /v1/accounts/password/forgot`` answers 202 whether or not an account has the
  address (it does not tell which addresses have accounts); an account gets a 6-digit
  code by e-mail (outbox template ``password_reset``: 15 minutes, 5 attempts, kept as a
  keyed hash bound to the address and to its purpose, so that it cannot confirm an
  address). Rate-limited per address and per client address.
- ``POST /v1/accounts/password/reset`` sets the new password with that code and
  revokes every session of the account: their live connections close at once (4401).
- ``POST /v1/accounts/password`` changes the password knowing the current one; the
  account's other sessions are revoked, this one stays.
- ``GET /v1/sessions`` lists the caller's sessions (``current`` marks the caller's);
  ``DELETE /v1/sessions/{id}`` revokes one of them, ``DELETE /v1/sessions/others``
  every other one. A session's ``id`` is a digest of its token hash, never the hash.
- ``GET /v1/accounts/me/export`` gives one's data (GDPR right of access) as a JSON
  file; ``POST /v1/accounts/me/delete`` (the password again) erases the account
  (:meth:`storage.accounts.AccountStore.delete_account`), closes its connections and
  records ``account.deleted`` in the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.errors import ErrorCode
from storage.accounts import AccountStore, SessionRow
from storage.audit import AuditStore
from storage.base import RoomStore, UserStore
from storage.outbox import NewNotification
from storage.push import PushStore
from storage.roles import RoleStore
from storage.types import Session, User
from storage.verification import VerificationStore

from ..audit import record
from ..auth import check_password, hash_password
from ..bodies import Email, EmailBody, Pattern, Text, schema_of
from ..clock import now_ms
from ..errors import ApiError, bad_field
from ..handlers import Services
from ..node import node
from ..openapi import api_route, array, boolean, integer, obj, string
from ..revocation import revoke
from ..verification import codes, passwords
from ..wire import sealed_json
from .accounts import client_address, profile
from .common import bearer, read_body
from .common import services as all_services

__all__ = ["routes", "session_id"]


class LifecyclePorts(
    AccountStore,
    UserStore,
    RoomStore,
    PushStore,
    RoleStore,
    VerificationStore,
    AuditStore,
    Protocol,
):
    """What account_lifecycle uses of the store."""


def services(request: Request) -> Services[LifecyclePorts]:
    return all_services(request)


log = logging.getLogger("confrere.accounts")

_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


def _reset_subject(address: str) -> str:
    """What a reset code's MAC binds: the address and the purpose (a reset code is
    never an address-confirmation code)."""
    return f"password-reset\n{address}"


def session_id(token_hash: bytes) -> str:
    return hashlib.sha256(b"confrere-session-id:" + token_hash).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ResetBody:
    email: Annotated[str, Email()]
    code: Annotated[
        str, Pattern(r"^\d{6}$", "must be the 6 digits sent by e-mail", "code_malformed")
    ]
    password: Annotated[str, Text(passwords.MAX_LENGTH, strip=False)]


@dataclass(frozen=True, slots=True)
class PasswordBody:
    """The current password (to change it, or to delete the account)."""

    password: Annotated[str, Text(1024, strip=False)]


@dataclass(frozen=True, slots=True)
class ChangeBody:
    password: Annotated[str, Text(1024, strip=False)]
    new_password: Annotated[str, Text(passwords.MAX_LENGTH, strip=False)]


async def _new_password(request: Request, password: str, field: str, user: User) -> str:
    """The hash of the new password (from ``field``), once it passes the rules."""
    why = passwords.problem(password, email=user.email, names=(user.first_name, user.last_name))
    if why is not None:
        raise bad_field(field, why.text, why.reason)
    return await hash_password(password, node(request).settings.password_cost)


async def _revoke_all(request: Request, user_id: str, hashes: list[bytes]) -> None:
    svc = services(request)
    for token_hash in hashes:
        await revoke(svc.hub.broker, node(request).live, user_id, "session", token_hash)


async def forgot_password(request: Request) -> Response:
    address = (await read_body(request, EmailBody)).email
    svc = services(request)
    limits = node(request).limiters
    limits.reset_clients.check(client_address(request), "password reset requests")
    limits.reset_mails.check(address, "password reset e-mails")
    now = now_ms()
    expires_at = now + codes.CODE_TTL_MS
    user = await svc.store.user_by_email(address)
    if user is not None:
        code = codes.new_code()
        code_hash = codes.code_hash(svc.server_key.key, _reset_subject(address), code)
        mail = NewNotification("email", address, "password_reset", {"code": code})
        await svc.store.start_password_reset(user.id, code_hash, expires_at, [mail], now)
        if svc.notifications is not None:
            svc.notifications.worker.kick()
        log.info("password reset code sent to %s", user.id)
    return JSONResponse({"expires_at": expires_at}, status_code=202)


async def reset_password(request: Request) -> Response:
    body = await read_body(request, ResetBody)
    svc = services(request)
    address, code = body.email, body.code
    node(request).limiters.reset_guesses.check(address, "code attempts")
    user = await svc.store.user_by_email(address)
    if user is None:
        raise bad_field("code", "was not sent or was used: ask for a new one", "code_none")
    new_hash = await _new_password(request, body.password, "password", user)
    key = svc.server_key.key

    def matches(stored: bytes) -> bool:
        return codes.codes_match(stored, key, _reset_subject(address), code)

    outcome, revoked = await svc.store.reset_password(
        user.id, matches, new_hash, now_ms(), codes.MAX_ATTEMPTS
    )
    if outcome != "reset":
        log.info("password reset code refused for %s: %s", user.id, outcome)
        raise bad_field(
            "code",
            {
                "wrong": "is not the code sent",
                "expired": "has expired: ask for a new one",
                "exhausted": "was tried too many times: ask for a new one",
                "none": "was not sent or was used: ask for a new one",
            }[outcome],
            f"code_{outcome}",
        )
    log.info("password reset for %s: %d session(s) revoked", user.id, len(revoked))
    await _revoke_all(request, user.id, revoked)
    return Response(status_code=204)


async def change_password(request: Request) -> Response:
    session, user = await bearer(request)
    body = await read_body(request, ChangeBody)
    node(request).limiters.password_checks.check(user.id, "password attempts")
    if not await check_password(body.password, user.password_hash):
        raise bad_field("password", "is not your current password", "password_wrong")
    new_hash = await _new_password(request, body.new_password, "new_password", user)
    revoked = await services(request).store.change_password(
        user.id, new_hash, keep=session.token_hash
    )
    log.info("password changed for %s: %d other session(s) revoked", user.id, len(revoked))
    await _revoke_all(request, user.id, revoked)
    return Response(status_code=204)


def _session_json(row: SessionRow, current: Session) -> dict[str, Any]:
    s = row.session
    return {
        "id": session_id(s.token_hash),
        "device_id": s.device_id,
        "device_name": row.device_name,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
        "current": hmac.compare_digest(s.token_hash, current.token_hash),
    }


async def list_sessions(request: Request) -> Response:
    session, user = await bearer(request)
    rows = await services(request).store.sessions_of(user.id, now_ms())
    return JSONResponse({"sessions": [_session_json(r, session) for r in rows]})


async def revoke_session(request: Request) -> Response:
    session, user = await bearer(request)
    wanted = request.path_params["session_id"]
    svc = services(request)
    if wanted == "others":
        revoked = await svc.store.delete_sessions_of(user.id, keep=session.token_hash)
        await _revoke_all(request, user.id, revoked)
        return JSONResponse({"revoked": len(revoked)})
    if not _SESSION_ID.match(wanted):
        raise ApiError(ErrorCode.NOT_FOUND, "no session of yours has this id")
    rows = await svc.store.sessions_of(user.id, now_ms())
    found = [r.session.token_hash for r in rows if session_id(r.session.token_hash) == wanted]
    revoked = await svc.store.delete_sessions_of(user.id, only=found) if found else []
    if not revoked:
        raise ApiError(ErrorCode.NOT_FOUND, "no session of yours has this id")
    await _revoke_all(request, user.id, revoked)
    return JSONResponse({"revoked": len(revoked)})


_EXPORT_NOTE = (
    "Vos messages et fichiers sont chiffrés de bout en bout : le serveur ne peut pas les "
    "lire, ils ne figurent donc pas dans cet export. Ils restent lisibles dans vos "
    "conversations, sur vos appareils."
)


async def export_account(request: Request) -> Response:
    session, user = await bearer(request)
    store = services(request).store
    now = now_ms()
    consents = await store.consents_of(user.id)
    rooms = await store.rooms_of(user.id)
    body = {
        "exported_at": now,
        "account": {**profile(user), "created_at": user.created_at},
        "consents": [
            {"document": c.document, "version": c.version, "accepted_at": at} for c, at in consents
        ],
        "roles": sorted(await store.roles_of(user.id)),
        "devices": [
            {"id": d.id, "name": d.name, "created_at": d.created_at}
            for d in await store.devices_of(user.id)
        ],
        "sessions": [_session_json(r, session) for r in await store.sessions_of(user.id, now)],
        "push_subscriptions": [
            {"device_id": p.device_id, "kind": p.kind, "created_at": p.created_at}
            for p in await store.push_subscriptions_of(user.id)
        ],
        "rooms": [
            # The name as stored: end-to-end encrypted (base64), the server cannot read it.
            {"id": room.id, "kind": room.kind, "name": sealed_json(room.name), "role": m.role}
            for room, m in rooms
        ],
        "messages": _EXPORT_NOTE,
    }
    return JSONResponse(
        body,
        headers={"Content-Disposition": 'attachment; filename="confrere-mes-donnees.json"'},
    )


async def delete_account(request: Request) -> Response:
    _, user = await bearer(request)
    password = (await read_body(request, PasswordBody)).password
    node(request).limiters.password_checks.check(user.id, "password attempts")
    if not await check_password(password, user.password_hash):
        raise bad_field("password", "is not your current password", "password_wrong")
    svc = services(request)
    revoked = await svc.store.delete_account(user.id)
    await record(svc.store, "account.deleted", user.id, user.id, sessions=len(revoked))
    log.info("account %s deleted: %d session(s) revoked", user.id, len(revoked))
    await _revoke_all(request, user.id, revoked)
    return Response(status_code=204)


_SESSION = obj(
    {
        "id": string(),
        "device_id": string(),
        "device_name": string(),
        "created_at": integer(),
        "expires_at": integer(),
        "current": boolean(),
    }
)

routes = [
    api_route(
        "/v1/accounts/me/export",
        export_account,
        summary="One's data as a JSON file (account, consents, devices, sessions, rooms)",
        response=obj(
            {
                "exported_at": integer(),
                "account": obj({}),
                "consents": array(obj({})),
                "roles": array(string()),
                "devices": array(obj({})),
                "sessions": array(_SESSION),
                "push_subscriptions": array(obj({})),
                "rooms": array(obj({})),
                "messages": string(),
            }
        ),
    ),
    api_route(
        "/v1/accounts/me/delete",
        delete_account,
        "POST",
        summary="Delete one's account (the password again): erased, every session revoked",
        body=schema_of(PasswordBody),
        status=204,
        errors=(413,),
    ),
    api_route(
        "/v1/accounts/password/forgot",
        forgot_password,
        "POST",
        summary="Forgotten password: e-mail a reset code (202 whether or not the address "
        "has an account)",
        auth="none",
        body=schema_of(EmailBody),
        response=obj({"expires_at": integer()}),
        status=202,
        errors=(413,),
    ),
    api_route(
        "/v1/accounts/password/reset",
        reset_password,
        "POST",
        summary="Set a new password with the e-mailed code; every session is revoked",
        auth="none",
        body=schema_of(ResetBody),
        status=204,
        errors=(413,),
    ),
    api_route(
        "/v1/accounts/password",
        change_password,
        "POST",
        summary="Change one's password (the current one is needed); other sessions revoked",
        body=schema_of(ChangeBody),
        status=204,
        errors=(413,),
    ),
    api_route(
        "/v1/sessions",
        list_sessions,
        summary="The caller's log-in sessions (current marks this one)",
        response=obj({"sessions": array(_SESSION)}),
    ),
    api_route(
        "/v1/sessions/{session_id}",
        revoke_session,
        "DELETE",
        summary="Revoke one of one's sessions, or every other one ('others'); their live "
        "connections close",
        response=obj({"revoked": integer()}),
        errors=(404,),
    ),
]
