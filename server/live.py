"""The node's open WebSocket connections, authenticated or not: what graceful shutdown
drains, what session revocation closes, and what the per-user and per-device
connection limits count.

Invariants: a connection is in ``_all`` from its accept until its cleanup is done; it
is in ``_by_user[u]`` iff it authenticated as ``u`` and is still in ``_all``. Only the
event loop's thread touches these maps (no lock).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from protocol import CloseCode

__all__ = ["LiveConnection", "LiveConnections"]

log = logging.getLogger("confrere.live")

CLOSE_GRACE_S = 5.0  # for the queued frames and the close handshake, after the requests


class LiveConnection(Protocol):
    user_id: str
    device_id: str
    session_hash: bytes  # b"" until authenticated
    session_expires_at: int

    @property
    def verified(self) -> bool:
        """Attached to the user's rooms: the identity was found verified."""

    def close(self, code: CloseCode) -> None:
        """Close soon with ``code`` (what is queued is sent first); never blocks."""

    def keepalive(self, now: float, interval_s: float) -> None:
        """Ping the peer every ``interval_s``, or close if a ping went unanswered
        for two rounds."""

    async def drain(self, grace_s: float) -> None:
        """Stop taking requests, let those in flight finish (at most ``grace_s``
        seconds), then close with 1012."""


class LiveConnections:
    def __init__(self) -> None:
        self._all: set[LiveConnection] = set()
        self._by_user: dict[str, set[LiveConnection]] = {}
        self._empty = asyncio.Event()
        self._empty.set()
        self.draining = False

    def __len__(self) -> int:
        return len(self._all)

    def add(self, conn: LiveConnection) -> None:
        self._all.add(conn)
        self._empty.clear()

    def authenticated(self, conn: LiveConnection) -> None:
        """``conn.user_id`` is set: index it by user."""
        self._by_user.setdefault(conn.user_id, set()).add(conn)

    def remove(self, conn: LiveConnection) -> None:
        self._all.discard(conn)
        peers = self._by_user.get(conn.user_id)
        if peers is not None:
            peers.discard(conn)
            if not peers:
                del self._by_user[conn.user_id]
        if not self._all:
            self._empty.set()

    def of_user(self, user_id: str) -> list[LiveConnection]:
        return list(self._by_user.get(user_id, ()))

    def all(self) -> list[LiveConnection]:
        return list(self._all)

    def count(self, user_id: str, device_id: str) -> tuple[int, int]:
        """Connections of this user, and of this device, on this node."""
        peers = self._by_user.get(user_id, ())
        return len(peers), sum(1 for c in peers if c.device_id == device_id)

    async def drain(self, grace_s: float) -> None:
        """Drain every connection at once and wait until all are cleaned up (their
        in-flight requests answered, their socket closed with 1012, their rooms left),
        at most ``grace_s`` seconds plus ``CLOSE_GRACE_S`` for the close handshakes."""
        self.draining = True
        conns = self.all()
        if not conns:
            return
        log.info("draining %d connection(s)", len(conns))
        await asyncio.gather(*(c.drain(grace_s) for c in conns), return_exceptions=True)
        try:
            async with asyncio.timeout(grace_s + CLOSE_GRACE_S):
                await self._empty.wait()
        except TimeoutError:
            log.warning("%d connection(s) still open after draining", len(self._all))
