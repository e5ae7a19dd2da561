"""Turning a bearer token into an authenticated (session, user), for REST and WebSocket."""

from __future__ import annotations

from protocol.errors import ErrorCode
from storage.base import UserStore
from storage.roles import Role, RoleStore
from storage.types import Session, User

from .auth import hash_token, tokens_match
from .clock import now_ms
from .errors import ApiError

__all__ = ["authenticate", "require_role", "require_verified"]


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
        raise ApiError(ErrorCode.UNAUTHENTICATED, "invalid or expired session token")
    session, user = found
    # The lookup is by hash; the explicit constant-time check keeps it so whatever index
    # the database uses.
    if not tokens_match(session.token_hash, token):
        raise ApiError(ErrorCode.UNAUTHENTICATED, "invalid or expired session token")
    if session.expires_at <= now_ms():
        raise ApiError(ErrorCode.UNAUTHENTICATED, "invalid or expired session token")
    if user is None:
        raise ApiError(ErrorCode.UNAUTHENTICATED, "invalid or expired session token")
    return session, user
