"""Limits and rate limits of one node, configurable by ``CONFRERE_LIMIT_<NAME>``.

Each refusal has an error code, and a ``retry_after`` when waiting helps:

- ``frames_per_s``/``frames_burst``, ``bytes_per_s``/``bytes_burst``: per connection,
  every frame; ``rate_limited`` + retry_after (not a bad frame).
- ``sends_per_s``/``sends_burst``: ``send`` frames of one user on this node;
  ``rate_limited`` + retry_after.
- ``uploads_per_s``/``uploads_burst``: ``POST /v1/attachments`` of one user on this
  node; HTTP 429 ``rate_limited`` + ``retry_after`` and ``Retry-After``.
- ``rooms_per_user``: room.create by a user already in that many rooms; ``too_large``.
- ``members_per_room``: room.create and room.invite beyond it; ``too_large``.
- ``connections_per_user``/``connections_per_device``: on this node, checked at
  hello; ``error{rate_limited, retry_after: 5}`` then close 1013 (try again later).

The frame size limit is the protocol's (``MAX_FRAME``, ``too_large``). Rate limits are
token buckets kept in memory per node: behind a load balancer a user's effective limit
is the per-node one times the nodes it reaches, which bounds abuse of one node (what
they protect) without a shared store on the hot path.

The per-connection :class:`Bucket` is checked for every frame, so it is a few float
operations on preallocated slots and nothing else. A refusal's ``retry_after`` is the
time until that very request will be allowed, the requests refused before it counted
(:class:`~server.ratelimit.Bucket`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from protocol.errors import ErrorCode
from protocol.frames import ClientFrame, RoomCreate, RoomInvite
from storage.base import RoomStore

from .errors import ApiError
from .ratelimit import Bucket, RateLimiter
from .ratelimit import retry_after as retry_after_s

__all__ = ["Bucket", "Limits", "UserRates", "check_room_limits", "limit_error"]


@dataclass(frozen=True, slots=True)
class Limits:
    frames_per_s: float = 200.0
    frames_burst: float = 400.0
    bytes_per_s: float = 4 * 1024 * 1024
    bytes_burst: float = 8 * 1024 * 1024  # at least one largest message (1 MiB)
    sends_per_s: float = 50.0
    sends_burst: float = 200.0
    uploads_per_s: float = 0.5
    uploads_burst: float = 20.0
    rooms_per_user: int = 10_000
    members_per_room: int = 2_000
    connections_per_user: int = 20
    connections_per_device: int = 4

    @classmethod
    def from_env(cls) -> Limits:
        """Each field from ``CONFRERE_LIMIT_<FIELD>`` when set (e.g.
        ``CONFRERE_LIMIT_SENDS_PER_S=20``)."""
        d = cls()
        changes: dict[str, float | int] = {}
        for f in fields(cls):
            raw = os.environ.get(f"CONFRERE_LIMIT_{f.name.upper()}")
            if raw is not None:
                default = getattr(d, f.name)
                changes[f.name] = int(raw) if isinstance(default, int) else float(raw)
        return replace(d, **changes)  # type: ignore[arg-type]


def limit_error(what: str, retry_after: float | None = None) -> ApiError:
    """The refusal of a limit: ``rate_limited`` with ``retry_after`` for a rate,
    ``too_large`` for a count."""
    if retry_after is None:
        return ApiError(ErrorCode.TOO_LARGE, what)
    return ApiError(ErrorCode.RATE_LIMITED, what, retry_after_s(retry_after))


class UserRates:
    """The per-user buckets of a node (one per app)."""

    def __init__(self, limits: Limits) -> None:
        self.sends = RateLimiter(limits.sends_per_s, limits.sends_burst)
        self.uploads = RateLimiter(limits.uploads_per_s, limits.uploads_burst)


async def check_room_limits(
    store: RoomStore, limits: Limits, user_id: str, rooms: set[str], frame: ClientFrame
) -> None:
    """``rooms_per_user`` and ``members_per_room`` for room.create and room.invite.
    ``rooms`` are the caller's rooms, from memory (the connection's attachments)."""
    if isinstance(frame, RoomCreate):
        if len(rooms) >= limits.rooms_per_user:
            raise limit_error(f"at most {limits.rooms_per_user} rooms per user")
        if len({user_id, *frame.members}) > limits.members_per_room:
            raise limit_error(f"at most {limits.members_per_room} members per room")
    elif isinstance(frame, RoomInvite):
        members = await store.room_members(frame.room)
        # Invited e-mail addresses (guests) count: they become members on sign-up.
        if members is not None and (
            len(members.roles.keys() | set(frame.users)) + len(frame.emails)
            > limits.members_per_room
        ):
            raise limit_error(f"at most {limits.members_per_room} members per room")
