"""Presence: which users have at least one live connection, on any node.

Guarantees an adapter gives:
- ``connected``/``disconnected`` calls for one user on one node are counted: the user is
  online while this node holds more connections than it released.
- A node that dies without calling ``disconnected`` stops counting by itself within
  the adapter's expiry (Redis: ``NODE_TTL_S``), so its users fall offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["Presence", "PresenceUnavailable"]


class PresenceUnavailable(Exception):
    """``online`` could not be answered (the shared store is down)."""


class Presence(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def connected(self, user_id: str) -> None: ...

    async def disconnected(self, user_id: str) -> None: ...

    async def online(self, user_ids: Sequence[str]) -> set[str]:
        """The subset of ``user_ids`` online somewhere; raises
        :class:`PresenceUnavailable` if that cannot be known now."""
