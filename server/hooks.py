"""In-process hooks: integrators react to what happens (a guest promoted, an identity
verified...) without touching the handlers.

Handlers run in registration order after the event has committed; one that raises is
logged and the others still run, so a faulty integration never fails the request that
caused the event. Handlers must be quick or start their own task: the caller awaits them.

Events and their keyword payloads:

- ``email_confirmed(user)``: an account proved its address (the e-mail code).
- ``logged_in(user)``: a session was opened.
- ``identity_verified(user)``: identity verification succeeded.
- ``guest_promoted(user, promotions)``: a guest's invitations became memberships
  (``promotions``: :class:`storage.guests.Promotion`, one per room).
- ``member_joined(room_id, user_ids, by)``: users became members of a room, by
  invitation (``room.invite``) or promotion (then ``by`` is the inviter).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Literal

__all__ = ["EVENTS", "Event", "Hook", "Hooks"]

log = logging.getLogger("confrere.hooks")

Event = Literal[
    "email_confirmed", "logged_in", "identity_verified", "guest_promoted", "member_joined"
]
EVENTS: tuple[Event, ...] = (
    "email_confirmed",
    "logged_in",
    "identity_verified",
    "guest_promoted",
    "member_joined",
)
Hook = Callable[..., Awaitable[None]]


class Hooks:
    def __init__(self) -> None:
        self._handlers: defaultdict[str, list[Hook]] = defaultdict(list)

    def on(self, event: Event, handler: Hook) -> Hook:
        """Call ``handler(**payload)`` on each ``event``; returns it (usable as decorator
        via ``functools.partial``)."""
        if event not in EVENTS:
            raise ValueError(f"unknown hook event {event!r}")
        self._handlers[event].append(handler)
        return handler

    async def emit(self, event: Event, **payload: Any) -> None:
        for handler in list(self._handlers.get(event, ())):
            try:
                await handler(**payload)
            except Exception:
                log.exception("hook %s for %s failed", getattr(handler, "__name__", handler), event)
