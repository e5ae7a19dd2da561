"""REST: sign-up (with consents and an e-mail code), e-mail confirmation, log-in/log-out
(sessions, rate-limited), devices, profile, room list, regulator sign-up links.

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
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol.errors import ErrorCode
from storage.errors import Conflict, EmailTaken, LinkUnusable, NumberTaken
from storage.outbox import NewNotification
from storage.types import NewUser, Session, User
from storage.verification import Consent, EmailCode, RegulatorLink

from ..audit import record
from ..auth import check_password, hash_password, hash_token, new_token
from ..clock import now_ms
from ..errors import ApiError, bad_field, from_storage
from ..fields import choice, email, optional_text, postcode, text
from ..openapi import api_route, array, boolean, integer, nullable, obj, string
from ..ratelimit import RateLimiter
from ..revocation import revoke
from ..sessions import require_role
from ..verification import codes, links, passwords, psc, psc_signup
from ..verification.identifiers import InvalidIdentifier, parse_number
from ..verification.specialties import REGULATOR, SPECIALTIES, is_specialty
from ..wire import room_info, sealed_json
from .common import bearer, json_body, services

__all__ = ["PROFILE", "client_address", "profile", "routes"]

log = logging.getLogger("confrere.accounts")

_CODE = re.compile(r"^\d{6}$")
# Verifying against a throwaway hash when the e-mail is unknown keeps log-in time the
# same either way, so timing does not tell which addresses have accounts.
_DUMMY_HASH: str | None = None


@dataclass(frozen=True, slots=True)
class _Limiters:
    signups: RateLimiter
    login_account: RateLimiter
    login_address: RateLimiter
    code_guesses: RateLimiter
    code_mails: RateLimiter


def _limiters(request: Request) -> _Limiters:
    """This app's limiters (one set per app, so test servers do not share buckets)."""
    state = request.app.state
    found: _Limiters | None = getattr(state, "account_limiters", None)
    if found is None:
        per_hour = request.app.state.settings.signups_per_hour
        found = _Limiters(
            signups=RateLimiter(per_hour / 3600, max(1.0, per_hour)),
            login_account=RateLimiter(1 / 60, 10),
            login_address=RateLimiter(1.0, 50),
            code_guesses=RateLimiter(1 / 60, 10),
            code_mails=RateLimiter(1 / 60, 3),
        )
        state.account_limiters = found
    return found


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


async def sign_up(request: Request) -> Response:
    body = await json_body(request)
    svc = services(request)
    settings = request.app.state.settings
    _limiters(request).signups.check(client_address(request), "sign-ups from this address")
    address = email(body)
    now = now_ms()
    card = _psc_card(request, body, now)
    first_name, last_name = text(body, "first_name"), text(body, "last_name")
    password = text(body, "password", 1024, strip=False)
    why = passwords.problem(password, email=address, names=(first_name, last_name))
    if why is not None:
        raise bad_field("password", why.text, why.reason)
    user_postcode = postcode(body)
    number = optional_text(body, "rpps", 20)
    if number is not None:
        try:
            number = parse_number(number).number
        except InvalidIdentifier as exc:
            raise bad_field("rpps", str(exc)) from None
    if card is not None:
        for wrong in psc.compare(first_name, last_name, number, card):
            raise bad_field(wrong, "must be as on your CPS/e-CPS card", "card_mismatch")
        number = card.practitioner.number
    specialty = text(body, "specialty")
    link_token = optional_text(body, "regulator_link", 2000)
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
    practice_mode = choice(body, "practice_mode", ("liberal", "salarie"))
    for field, current in (
        ("terms_version", settings.terms_version),
        ("privacy_version", settings.privacy_version),
    ):
        if body.get(field) != current:
            raise bad_field(field, f"must be '{current}': the version the user accepted")
    new = NewUser(
        email=address,
        password_hash=await hash_password(password, settings.password_cost),
        first_name=first_name,
        last_name=last_name,
        postcode=user_postcode,
        city=text(body, "city"),
        specialty=specialty,
        practice_mode=practice_mode,
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
        await svc.hooks.emit("identity_verified", user=user)
    response = JSONResponse({"user": profile(user)}, status_code=201)
    if card is not None:  # the ticket made its one account
        response.delete_cookie(psc_signup.TICKET_COOKIE, path="/v1/accounts")
    return response


def _psc_card(request: Request, body: dict[str, Any], now: int) -> psc.CardIdentity | None:
    """The card of this browser's Pro Santé Connect sign-up when the body asks for it
    (``"pro_sante_connect": true``), from the ticket cookie the callback set."""
    wanted = body.get("pro_sante_connect")
    if wanted is None or wanted is False:
        return None
    if wanted is not True:
        raise bad_field("pro_sante_connect", "must be true or false")
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
    settings = request.app.state.settings
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
    code = body.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        raise bad_field("code", "must be the 6 digits sent by e-mail", "code_malformed")
    _limiters(request).code_guesses.check(user.id, "code attempts")
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
    await svc.hooks.emit("email_confirmed", user=confirmed)
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
    _limiters(request).code_mails.check(user.id, "code e-mails")
    now = now_ms()
    expires_at = now + codes.CODE_TTL_MS
    code, mail = _code_mail(svc.server_key.key, user.email, expires_at)
    await svc.store.replace_email_code(user.id, code, [mail], now)
    return JSONResponse({"expires_at": expires_at}, status_code=202)


async def log_in(request: Request) -> Response:
    global _DUMMY_HASH
    body = await json_body(request)
    svc = services(request)
    address = email(body)
    password = text(body, "password", 1024, strip=False)
    limits, client = _limiters(request), client_address(request)
    # The account's budget is per client address too: a third party failing from its
    # own address cannot lock the practitioner out. Only failures are counted.
    account_key = f"{address}\n{client}"
    limits.login_address.check(client, "log-in attempts from this address")
    limits.login_account.check(account_key, "log-in attempts for this account")
    user = await svc.store.user_by_email(address)
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = await hash_password(new_token(), request.app.state.settings.password_cost)
        await check_password(password, _DUMMY_HASH)
        log.info("log-in refused: unknown account %s", _tag(svc.server_key.key, address))
        raise ApiError(ErrorCode.UNAUTHENTICATED, "wrong e-mail or password")
    if not await check_password(password, user.password_hash):
        log.info("log-in refused: wrong password for %s", user.id)
        raise ApiError(ErrorCode.UNAUTHENTICATED, "wrong e-mail or password")
    # Only failures count against the address; a success also clears the account's.
    limits.login_address.hit(client, -1.0)
    limits.login_account.reset(account_key)
    device_id = optional_text(body, "device_id", 64)
    if device_id is not None:
        device = await svc.store.device(device_id)
        if device is None or device.user_id != user.id:
            raise ApiError(ErrorCode.NOT_FOUND, "field 'device_id' names no device of yours")
    else:
        name = optional_text(body, "device_name", 100) or "appareil"
        device = await svc.store.create_device(user.id, name, now_ms())
    token = new_token()
    now = now_ms()
    ttl_ms = request.app.state.settings.session_ttl_s * 1000
    await svc.store.create_session(
        Session(hash_token(token), user.id, device.id, now, now + ttl_ms)
    )
    await svc.hooks.emit("logged_in", user=user)  # e.g. promote a confirmed guest's invitations
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
    await revoke(
        svc.hub.broker, request.app.state.live, session.user_id, "session", session.token_hash
    )
    return Response(status_code=204)


async def me(request: Request) -> Response:
    """The account and its platform roles (which screens the web client offers)."""
    _, user = await bearer(request)
    roles = await services(request).store.roles_of(user.id)
    return JSONResponse({"user": profile(user), "roles": sorted(roles)})


async def list_devices(request: Request) -> Response:
    _, user = await bearer(request)
    devices = await services(request).store.devices_of(user.id)
    return JSONResponse(
        {"devices": [{"id": d.id, "name": d.name, "created_at": d.created_at} for d in devices]}
    )


async def add_device(request: Request) -> Response:
    """Register another device; log in with its ``device_id`` to get its own token."""
    _, user = await bearer(request)
    body = await json_body(request)
    device = await services(request).store.create_device(user.id, text(body, "name"), now_ms())
    return JSONResponse(
        {"device": {"id": device.id, "name": device.name, "created_at": device.created_at}},
        status_code=201,
    )


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
    body = await json_body(request)
    address = email(body)
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
    url = request.app.state.settings.public_url.rstrip("/") + "/inscription-regulateur#" + token
    await svc.store.enqueue_notifications(
        [NewNotification("email", address, "regulator_link", {"url": url})], now
    )
    await record(svc.store, "admin.regulator_link", admin.id, None, link=claims.link_id)
    log.info("regulator link %s issued by %s", claims.link_id, admin.id)
    return JSONResponse({"id": claims.link_id, "expires_at": claims.expires_at}, status_code=201)


_SIGN_UP_BODY = obj(
    {
        "email": string(max_length=254),
        "password": string(max_length=1024),
        "first_name": string(max_length=100),
        "last_name": string(max_length=100),
        "postcode": string(pattern=r"^\d{5}$"),
        "city": string(max_length=100),
        "specialty": string(max_length=100),
        "practice_mode": string(enum=("liberal", "salarie")),
        "rpps": nullable(string(max_length=20)),
        "terms_version": string(),
        "privacy_version": string(),
        "regulator_link": nullable(string(max_length=2000)),
        "pro_sante_connect": nullable(boolean()),
    },
    required=(
        "email",
        "password",
        "first_name",
        "last_name",
        "postcode",
        "city",
        "specialty",
        "practice_mode",
        "terms_version",
        "privacy_version",
    ),
)
_DEVICE = obj({"id": string(), "name": string(), "created_at": integer()})
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
        body=_SIGN_UP_BODY,
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
        body=obj({"code": string(pattern=r"^\d{6}$")}),
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
        body=obj(
            {
                "email": string(max_length=254),
                "password": string(max_length=1024),
                "device_id": nullable(string(max_length=64)),
                "device_name": nullable(string(max_length=100)),
            },
            required=("email", "password"),
        ),
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
        "/v1/devices",
        list_devices,
        summary="The caller's devices",
        response=obj({"devices": array(_DEVICE)}),
    ),
    api_route(
        "/v1/devices",
        add_device,
        "POST",
        summary="Register another device",
        body=obj({"name": string(max_length=100)}),
        response=obj({"device": _DEVICE}),
        status=201,
        errors=(413,),
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
        body=obj({"email": string(max_length=254)}),
        response=obj({"id": string(), "expires_at": integer()}),
        status=201,
        errors=(409, 413),
    ),
]
