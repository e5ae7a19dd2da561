"""Turning a bearer token into an authenticated (session, user), for REST and WebSocket."""

from __future__ import annotations

from typing import NoReturn

from protocol.errors import ErrorCode
from storage.base import UserStore
from storage.roles import Role, RoleStore
from storage.types import Session, User

from .auth import hash_token, tokens_match
from .clock import now_ms
from .errors import ApiError

__all__ = ["authenticate", "authenticate_with_rooms", "require_role", "require_verified"]


def require_verified(user: User | None) -> None:
    """The verification gate, the same over REST and WebSocket: messaging, rooms and
    chat files are for practitioners whose identity was verified."""
    if user is None or not user.verified:
        raise ApiError(
            ErrorCode.IDENTITY_UNVERIFIED,
            "identity verification is required before using the messaging",
        )


async def require_role(store: RoleStore, user: User, role: Role) -> None:
    """Refuse (403 ``forbidden``) unless ``user`` holds the platform role ``role``."""
    if role not in await store.roles_of(user.id):
        raise ApiError(ErrorCode.FORBIDDEN, f"this needs the {role} role")


async def authenticate(store: UserStore, token: str) -> tuple[Session, User]:
    """Raise ``unauthenticated`` for an unknown, expired or orphaned token."""
    found = await store.session_user(hash_token(token))
    if found is None:
        _invalid()
    session, user = found
    return session, _checked(session, user, token)


async def authenticate_with_rooms(store: UserStore, token: str) -> tuple[Session, User, list[str]]:
    """:func:`authenticate`, and the ids of the user's rooms read with it (a hello)."""
    found = await store.session_user_rooms(hash_token(token))
    if found is None:
        _invalid()
    session, user, room_ids = found
    return session, _checked(session, user, token), room_ids


def _checked(session: Session, user: User | None, token: str) -> User:
    # The lookup is by hash; the explicit constant-time check keeps it so whatever index
    # the database uses.
    if not tokens_match(session.token_hash, token) or session.expires_at <= now_ms():
        _invalid()
    if user is None:
        _invalid()
    return user


def _invalid() -> NoReturn:
    raise ApiError(ErrorCode.UNAUTHENTICATED, "invalid or expired session token")
