"""Broker adapters behind one interface, chosen by URL scheme: ``memory://`` (default,
one node), ``redis://host:port/db``, ``rediss://`` (TLS) or ``unix:///path/redis.sock``,
and Redis Cluster with sharded pub/sub: ``redis+cluster://host:port[,host:port...]``
(``rediss+cluster://`` for TLS)."""

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
    if scheme in ("redis+cluster", "rediss+cluster"):
        from .redis_cluster import RedisClusterBroker

        return RedisClusterBroker(url)
    raise ValueError(
        f"unsupported broker URL scheme {scheme!r}"
        " (expected memory, redis, rediss, unix, redis+cluster or rediss+cluster)"
    )
