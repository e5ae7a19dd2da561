"""Broker adapters behind one interface, chosen by URL scheme: ``memory://`` (default,
one node), ``redis://host:port/db``, ``rediss://`` (TLS) or ``unix:///path/redis.sock``."""

from __future__ import annotations

from .base import Broker, room_channel, user_channel

__all__ = ["Broker", "open_broker", "room_channel", "user_channel"]


def open_broker(url: str) -> Broker:
    scheme = url.partition("://")[0]
    if scheme == "memory":
        from .memory import MemoryBroker

        return MemoryBroker()
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unsupported broker URL scheme {scheme!r} (expected memory, redis or unix)")
