"""REST: sign-up (with consents and an e-mail code), e-mail confirmation, log-in/log-out
(sessions, rate-limited), profile, room list, regulator sign-up links.

Rate limits (in memory, per node, :class:`~server.ratelimit.RateLimiter`):
sign-ups per client address (``signups_per_hour``); log-in attempts per account (10,
then one a minute; a success resets) and per address (50, then one a second; only
failures are kept); e-mail code guesses per account (10, then one a minute, besides the
code's own 5 attempts) and code e-mails per account (3, then one a minute).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.errors import ErrorCode
from storage.audit import AuditStore
from storage.directory import DirectoryStore
from storage.errors import Conflict, EmailTaken, LinkUnusable, NumberTaken
from storage.outbox import NewNotification, OutboxStore
from storage.roles import RoleStore
from storage.types import NewUser, Session, User
from storage.verification import Consent, EmailCode, RegulatorLink, VerificationStore

from ..audit import record
from ..auth import check_password, hash_password, hash_token, new_token
from ..bodies import (
    Choice,
    Email,
    EmailBody,
    Flag,
    Pattern,
    Postcode,
    Text,
    parse_body,
    schema_of,
)
from ..clock import now_ms
from ..directory.profiles import on_identity_verified
from ..errors import ApiError, bad_field, from_storage
from ..handlers import Services
from ..handlers.guests import GuestPorts, promote_quietly
from ..node import node
from ..openapi import api_route, array, boolean, integer, nullable, obj, string
from ..revocation import revoke
from ..sessions import require_role
from ..verification import codes, links, passwords, psc, psc_signup
from ..verification.identifiers import InvalidIdentifier, parse_number
from ..verification.specialties import REGULATOR, SPECIALTIES, is_specialty
from ..wire import room_info, sealed_json
from .common import bearer, json_body, read_body
from .common import services as all_services

__all__ = ["PROFILE", "client_address", "profile", "routes"]


class AccountPorts(
    GuestPorts, OutboxStore, RoleStore, VerificationStore, AuditStore, DirectoryStore, Protocol
):
    """What accounts uses of the store."""


def services(request: Request) -> Services[AccountPorts]:
    return all_services(request)


log = logging.getLogger("confrere.accounts")


def client_address(request: Request) -> str:
    """The caller's address (uvicorn resolves X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else "unknown"


def _tag(server_key: bytes, value: str) -> str:
    """A short tag for logs (never log an e-mail address itself): an HMAC under a key
    derived from the server key, so a log reader cannot test guessed addresses
    against it as they could an unsalted hash; stable, so attempts can be correlated."""
    key = hmac.new(server_key, b"confrere log tag v1", hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


def profile(user: User) -> dict[str, Any]:
    """The account as its owner sees it; ``verified`` is the badge."""
    return {
        "id": user.id,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "postcode": user.postcode,
        "city": user.city,
        "specialty": user.specialty,
        "practice_mode": user.practice_mode,
        "rpps": user.rpps,
        "profession": user.profession,
        "email_confirmed": user.email_confirmed,
        "verified": user.verified,
    }


PROFILE = obj(
    {
        "id": string(),
        "email": string(),
        "first_name": string(),
        "last_name": string(),
        "postcode": string(),
        "city": string(),
        "specialty": string(),
        "practice_mode": string(enum=("liberal", "salarie")),
        "rpps": nullable(string()),
        "profession": string(enum=("practitioner", "regulator")),
        "email_confirmed": boolean(),
        "verified": boolean(),
    }
)
_USER = obj({"user": PROFILE})


def _code_mail(
    server_key: bytes, address: str, expires_at: int
) -> tuple[EmailCode, NewNotification]:
    """A new code for ``address``: what the store keeps, and the e-mail carrying it."""
    code = codes.new_code()
    stored = EmailCode(address, codes.code_hash(server_key, address, code), expires_at)
    return stored, NewNotification("email", address, "email_code", {"code": code})


@dataclass(frozen=True, slots=True)
class SignUpBody:
    email: Annotated[str, Email()]
    first_name: Annotated[str, Text()]
    last_name: Annotated[str, Text()]
    password: Annotated[str, Text(1024, strip=False)]
    postcode: Annotated[str, Postcode()]
    specialty: Annotated[str, Text()]
    practice_mode: Annotated[str, Choice(("liberal", "salarie"))]
    # The versions the user accepted: equal to the settings' (checked by sign_up).
    terms_version: Annotated[str, Text(strip=False)]
    privacy_version: Annotated[str, Text(strip=False)]
    city: Annotated[str, Text()]
    rpps: Annotated[str | None, Text(20)] = None
    regulator_link: Annotated[str | None, Text(2000)] = None
    pro_sante_connect: Annotated[bool, Flag("must be true or false")] = False


@dataclass(frozen=True, slots=True)
class CodeBody:
    code: Annotated[
        str, Pattern(r"^\d{6}$", "must be the 6 digits sent by e-mail", "code_malformed")
    ]


@dataclass(frozen=True, slots=True)
class LogInBody:
    email: Annotated[str, Email()]
    password: Annotated[str, Text(1024, strip=False)]
    device_id: Annotated[str | None, Text(64)] = None
    device_name: Annotated[str | None, Text(100)] = None


@dataclass(frozen=True, slots=True)
class LinkBody:
    """A regulator link's address."""

    email: Annotated[str, Email()]


async def sign_up(request: Request) -> Response:
    body = await json_body(request)
    svc = services(request)
    settings = node(request).settings
    node(request).limiters.signups.check(client_address(request), "sign-ups from this address")
    form = parse_body(SignUpBody, body)
    address, first_name, last_name = form.email, form.first_name, form.last_name
    now = now_ms()
    card = _psc_card(request, form.pro_sante_connect, now)
    why = passwords.problem(form.password, email=address, names=(first_name, last_name))
    if why is not None:
        raise bad_field("password", why.text, why.reason)
    number = form.rpps
    if number is not None:
        try:
            number = parse_number(number).number
        except InvalidIdentifier as exc:
            raise bad_field("rpps", str(exc)) from None
    if card is not None:
        for wrong in psc.compare(first_name, last_name, number, card):
            raise bad_field(wrong, "must be as on your CPS/e-CPS card", "card_mismatch")
        number = card.practitioner.number
    specialty = form.specialty
    link_token = form.regulator_link
    link: links.LinkClaims | None = None
    if link_token is not None:
        if card is not None:
            raise bad_field("regulator_link", "cannot be used with a Pro Santé Connect sign-up")
        try:
            link = links.read_link(svc.server_key.key, link_token, now)
        except links.BadLink as exc:
            raise bad_field("regulator_link", f"is refused: {exc}", exc.reason) from None
        if link.email != address:
            raise bad_field(
                "email", "must be the address the regulator sign-up link was sent to", "link_email"
            )
        if specialty != REGULATOR:
            raise bad_field(
                "specialty", f"must be '{REGULATOR}' for a regulator account", "regulator_only"
            )
    elif not is_specialty(specialty):
        if specialty == REGULATOR:
            raise bad_field("specialty", "needs a regulator sign-up link", "regulator_needs_link")
        raise bad_field("specialty", "must be one of the specialties of GET /v1/accounts/form")
    for field, given, current in (
        ("terms_version", form.terms_version, settings.terms_version),
        ("privacy_version", form.privacy_version, settings.privacy_version),
    ):
        if given != current:
            raise bad_field(field, f"must be '{current}': the version the user accepted")
    new = NewUser(
        email=address,
        password_hash=await hash_password(form.password, settings.password_cost),
        first_name=first_name,
        last_name=last_name,
        postcode=form.postcode,
        city=form.city,
        specialty=specialty,
        practice_mode=form.practice_mode,
        rpps=number,
        # An admin issued the link for a regulator known to the SAS platform, or the
        # practitioner's card authenticated them: either vouches for the identity. The
        # address is still proved by the e-mail code, as for everyone (a leaked link
        # must not promote that address' guest invitations).
        email_confirmed=False,
        verified=link is not None or card is not None,
        profession="regulator" if link is not None else "practitioner",
    )
    consents = [
        Consent("terms", settings.terms_version),
        Consent("privacy", settings.privacy_version),
    ]
    code, mail = _code_mail(svc.server_key.key, address, now + codes.CODE_TTL_MS)
    mails = [mail]
    try:
        user = await svc.store.create_account(
            new,
            consents,
            code,
            mails,
            now,
            regulator_link=link.link_id if link else None,
            replace_unconfirmed_before=now - settings.unconfirmed_account_ttl_s * 1000,
        )
    except (LinkUnusable, NumberTaken) as exc:
        raise from_storage(exc) from None
    except Conflict:  # the e-mail: taken, or by a concurrent sign-up (a unique rule)
        raise from_storage(EmailTaken()) from None
    log.info(
        "account %s created (%s%s)",
        user.id,
        user.profession,
        ", Pro Santé Connect" if card is not None else "",
    )
    if user.verified:  # the link or the card vouched for the identity (not the address)
        await on_identity_verified(svc.store, user)
    response = JSONResponse({"user": profile(user)}, status_code=201)
    if card is not None:  # the ticket made its one account
        response.delete_cookie(psc_signup.TICKET_COOKIE, path="/v1/accounts")
    return response


def _psc_card(request: Request, wanted: bool, now: int) -> psc.CardIdentity | None:
    """The card of this browser's Pro Santé Connect sign-up when the body asks for it
    (``"pro_sante_connect": true``), from the ticket cookie the callback set."""
    if not wanted:
        return None
    token = request.cookies.get(psc_signup.TICKET_COOKIE, "")
    try:
        card, _ = psc_signup.read_ticket(services(request).server_key.key, token, now)
    except psc_signup.BadToken:
        raise bad_field(
            "pro_sante_connect",
            "needs a Pro Santé Connect sign-up in this browser (none, or expired: start again)",
            "psc_ticket_missing",
        ) from None
    return card


async def sign_up_form(request: Request) -> Response:
    settings = node(request).settings
    return JSONResponse(
        {
            "terms_version": settings.terms_version,
            "privacy_version": settings.privacy_version,
            "specialties": [s for s in SPECIALTIES if s != REGULATOR],
            "practice_modes": ["liberal", "salarie"],
            "password_min_length": passwords.MIN_LENGTH,
            "psc_available": bool(settings.psc_issuer),
        }
    )


async def confirm_email(request: Request) -> Response:
    _, user = await bearer(request)
    body = await json_body(request)
    svc = services(request)
    if user.email_confirmed:
        raise ApiError(
            ErrorCode.CONFLICT,
            "this e-mail address is confirmed already",
            reason="already_confirmed",
        )
    code = parse_body(CodeBody, body).code
    node(request).limiters.code_guesses.check(user.id, "code attempts")
    key = svc.server_key.key

    def matches(stored: EmailCode) -> bool:
        return stored.email == user.email and codes.codes_match(
            stored.code_hash, key, stored.email, code
        )

    outcome = await svc.store.check_email_code(user.id, matches, now_ms(), codes.MAX_ATTEMPTS)
    if outcome != "confirmed":
        log.info("e-mail code refused for %s: %s", user.id, outcome)
        raise bad_field(
            "code",
            {
                "wrong": "is not the code sent",
                "expired": "has expired: ask for a new one",
                "exhausted": "was tried too many times: ask for a new one",
                "locked": "was wrong too many times: this account can no longer be"
                " confirmed; sign up again",
                "none": "was not sent or was used: ask for a new one",
            }[outcome],
            f"code_{outcome}",
        )
    confirmed = await svc.store.user_by_id(user.id)
    assert confirmed is not None
    await promote_quietly(svc, confirmed)  # the address is proven: its invitations
    return JSONResponse({"user": profile(confirmed)})


async def resend_email_code(request: Request) -> Response:
    _, user = await bearer(request)
    svc = services(request)
    if user.email_confirmed:
        raise ApiError(
            ErrorCode.CONFLICT,
            "this e-mail address is confirmed already",
            reason="already_confirmed",
        )
    node(request).limiters.code_mails.check(user.id, "code e-mails")
    now = now_ms()
    expires_at = now + codes.CODE_TTL_MS
    code, mail = _code_mail(svc.server_key.key, user.email, expires_at)
    await svc.store.replace_email_code(user.id, code, [mail], now)
    return JSONResponse({"expires_at": expires_at}, status_code=202)


async def log_in(request: Request) -> Response:
    body = await read_body(request, LogInBody)
    svc = services(request)
    address, password = body.email, body.password
    limits, client = node(request).limiters, client_address(request)
    # The account's budget is per client address too: a third party failing from its
    # own address cannot lock the practitioner out. Only failures are counted.
    account_key = f"{address}\n{client}"
    limits.login_address.check(client, "log-in attempts from this address")
    limits.login_account.check(account_key, "log-in attempts for this account")
    user = await svc.store.user_by_email(address)
    if user is None:
        # The same work as for a wrong password: timing does not tell which addresses
        # have accounts.
        await check_password(password, node(request).dummy_password_hash)
        log.info("log-in refused: unknown account %s", _tag(svc.server_key.key, address))
        raise ApiError(ErrorCode.UNAUTHENTICATED, "wrong e-mail or password")
    if not await check_password(password, user.password_hash):
        log.info("log-in refused: wrong password for %s", user.id)
        raise ApiError(ErrorCode.UNAUTHENTICATED, "wrong e-mail or password")
    # Only failures count against the address; a success also clears the account's.
    limits.login_address.hit(client, -1.0)
    limits.login_account.reset(account_key)
    device_id = body.device_id
    if device_id is not None:
        device = await svc.store.device(device_id)
        if device is None or device.user_id != user.id:
            raise ApiError(ErrorCode.NOT_FOUND, "field 'device_id' names no device of yours")
    else:
        name = body.device_name or "appareil"
        device = await svc.store.create_device(user.id, name, now_ms())
    token = new_token()
    now = now_ms()
    ttl_ms = node(request).settings.session_ttl_s * 1000
    await svc.store.create_session(
        Session(hash_token(token), user.id, device.id, now, now + ttl_ms)
    )
    await promote_quietly(svc, user)  # made good here if it failed at confirmation
    return JSONResponse(
        {
            "token": token,
            "user": profile(user),
            "device_id": device.id,
            "expires_at": now + ttl_ms,
        },
        status_code=201,
    )


async def log_out(request: Request) -> Response:
    session, _ = await bearer(request)
    svc = services(request)
    await svc.store.delete_session(session.token_hash)
    # Its live connections close too, on every node (server.revocation).
    await revoke(svc.hub.broker, node(request).live, session.user_id, "session", session.token_hash)
    return Response(status_code=204)


async def me(request: Request) -> Response:
    """The account and its platform roles (which screens the web client offers)."""
    _, user = await bearer(request)
    roles = await services(request).store.roles_of(user.id)
    return JSONResponse({"user": profile(user), "roles": sorted(roles)})


async def list_rooms(request: Request) -> Response:
    """Listed to unverified users too: a guest promoted before finishing identity
    verification sees the rooms waiting for them (kinds, unread counts, names in base64:
    end-to-end encrypted like case headers). Reading and sending stay behind the gate."""
    _, user = await bearer(request)
    rooms = await services(request).store.rooms_of(user.id)
    out = []
    for room, membership in rooms:
        info = room_info(room, membership)
        out.append(
            {
                "id": info.id,
                "kind": info.kind,
                "name": sealed_json(info.name),
                "status": info.status,
                "role": info.role,
                "last_seq": info.last_seq,
                "read_seq": info.read_seq,
                "unread": max(0, info.last_seq - info.read_seq),
            }
        )
    return JSONResponse({"rooms": out})


async def issue_regulator_link(request: Request) -> Response:
    """An admin issues a one-time sign-up link for a SAS regulator; it is e-mailed to
    them (outbox template "regulator_link") and only to them: the admin gets its id and
    expiry, never the link itself."""
    _, admin = await bearer(request)
    svc = services(request)
    await require_role(svc.store, admin, "admin")
    address = (await read_body(request, EmailBody)).email
    if await svc.store.user_by_email(address) is not None:
        raise ApiError(
            ErrorCode.CONFLICT,
            "an account already uses this e-mail: a regulator account needs its own address",
            reason="address_in_use",
        )
    now = now_ms()
    token, claims = links.sign_link(svc.server_key.key, address, now + links.LINK_TTL_MS)
    await svc.store.create_regulator_link(
        RegulatorLink(claims.link_id, address, admin.id, now, claims.expires_at, None)
    )
    url = node(request).settings.public_url.rstrip("/") + "/inscription-regulateur#" + token
    await svc.store.enqueue_notifications(
        [NewNotification("email", address, "regulator_link", {"url": url})], now
    )
    await record(svc.store, "admin.regulator_link", admin.id, None, link=claims.link_id)
    log.info("regulator link %s issued by %s", claims.link_id, admin.id)
    return JSONResponse({"id": claims.link_id, "expires_at": claims.expires_at}, status_code=201)


_ROOM = obj(
    {
        "id": string(),
        "kind": string(),
        "name": nullable(string()),  # base64 of the encrypted name (SPEC.md §11.4)
        "status": string(),
        "role": string(),
        "last_seq": integer(),
        "read_seq": integer(),
        "unread": integer(),
    }
)

routes = [
    api_route(
        "/v1/accounts",
        sign_up,
        "POST",
        summary="Sign up (sends an e-mail code; a regulator link makes a regulator account)",
        auth="none",
        body=schema_of(SignUpBody),
        response=_USER,
        status=201,
        errors=(409, 413),
    ),
    api_route(
        "/v1/accounts/form",
        sign_up_form,
        summary="What the sign-up form offers: consent versions, specialties",
        auth="none",
        response=obj(
            {
                "terms_version": string(),
                "privacy_version": string(),
                "specialties": array(string()),
                "practice_modes": array(string()),
                "password_min_length": integer(),
                "psc_available": boolean(),
            }
        ),
    ),
    api_route(
        "/v1/accounts/email/confirm",
        confirm_email,
        "POST",
        summary="Confirm the account's e-mail address with the code sent to it",
        body=schema_of(CodeBody),
        response=_USER,
        errors=(409, 413),
    ),
    api_route(
        "/v1/accounts/email/resend",
        resend_email_code,
        "POST",
        summary="Send a new e-mail code (the previous one is void)",
        response=obj({"expires_at": integer()}),
        status=202,
        errors=(409,),
    ),
    api_route(
        "/v1/sessions",
        log_in,
        "POST",
        summary="Log in: a session token for a new or known device",
        auth="none",
        body=schema_of(LogInBody),
        response=obj(
            {"token": string(), "user": PROFILE, "device_id": string(), "expires_at": integer()}
        ),
        status=201,
        errors=(401, 404, 413),
    ),
    api_route(
        "/v1/sessions/current",
        log_out,
        "DELETE",
        summary="Log out this session",
        status=204,
    ),
    api_route(
        "/v1/me",
        me,
        summary="The caller's profile (verified badge) and platform roles",
        response=obj(
            {"user": PROFILE, "roles": array(string(enum=("reviewer", "regulator", "admin")))}
        ),
    ),
    api_route(
        "/v1/rooms",
        list_rooms,
        summary="The caller's rooms (listed before verification too; messaging is not)",
        auth="session",
        response=obj({"rooms": array(_ROOM)}),
    ),
    api_route(
        "/v1/regulator-links",
        issue_regulator_link,
        "POST",
        summary="Issue a one-time regulator (SAS) sign-up link, e-mailed to its address",
        auth="role:admin",
        body=schema_of(EmailBody),
        response=obj({"id": string(), "expires_at": integer()}),
        status=201,
        errors=(409, 413),
    ),
]
