"""Presence adapters, chosen by the broker URL: in memory for ``memory://``, in the same
Redis as the broker otherwise."""

from __future__ import annotations

from .base import Presence, PresenceUnavailable

__all__ = ["Presence", "PresenceUnavailable", "open_presence"]


def open_presence(broker_url: str) -> Presence:
    if broker_url.startswith("memory:"):
        from .memory import MemoryPresence

        return MemoryPresence()
    from .redis import RedisPresence

    return RedisPresence(broker_url)
