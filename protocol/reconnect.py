"""What a client does when its connection ends: the close-code policy, as data, and the
backoff before it dials again (SPEC.md §2.1, §2.2).

``CLOSE_POLICY`` is the one table of close codes: every client (the SDK, the load
generator, the browser client's copy in ``clients/web/app/client.js``) reads it rather
than re-coding it. A code missing from it reconnects (:data:`UNKNOWN_CLOSE`).

Backoff is exponential with *full jitter*: attempt ``n`` (0 after each welcome) waits a
uniformly random time in ``[0, min(cap, base * 2**n))``, so that the clients of a node
that went away spread their return over the whole window instead of arriving together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import CloseCode, ErrorCode

__all__ = [
    "CLOSE_POLICY",
    "FINAL_HANDSHAKE_STATUSES",
    "FINAL_HELLO_ERRORS",
    "UNKNOWN_CLOSE",
    "Backoff",
    "OnClose",
    "on_close",
]


@dataclass(frozen=True, slots=True)
class OnClose:
    """The client's answer to one close code."""

    reconnect: bool
    why: str


_AGAIN = "reconnect with backoff, then catch up by sync"

CLOSE_POLICY: Mapping[int, OnClose] = {
    # 1000 from the server (e.g. after our own close): a client that still wants the
    # connection dials again; one that closed itself has stopped and never asks.
    CloseCode.NORMAL: OnClose(True, "reconnect if still wanted"),
    CloseCode.GOING_AWAY: OnClose(True, _AGAIN),
    1006: OnClose(True, "no close frame (network failure): " + _AGAIN),
    1007: OnClose(True, "text that is not UTF-8: a client bug; " + _AGAIN),
    1009: OnClose(True, "message over 1 MiB: a client bug; " + _AGAIN),
    1011: OnClose(True, "keepalive unanswered: " + _AGAIN),
    CloseCode.SERVICE_RESTART: OnClose(True, "node shutting down: " + _AGAIN + " (any node)"),
    CloseCode.TRY_AGAIN_LATER: OnClose(
        True, "storage unavailable or too many connections: " + _AGAIN
    ),
    CloseCode.SLOW_CONSUMER: OnClose(True, "send queue overflowed: " + _AGAIN),
    CloseCode.BAD_REQUEST: OnClose(True, "20 bad frames: a client bug; " + _AGAIN),
    CloseCode.UNAUTHENTICATED: OnClose(False, "session refused or revoked: log in again"),
    CloseCode.FORBIDDEN: OnClose(True, "identity no longer verified: the next welcome says so"),
}
UNKNOWN_CLOSE = OnClose(True, _AGAIN)

# A hello answered with one of these codes ends the session for good (SPEC §10.2); any
# other refusal (``unavailable``, ``rate_limited``) is followed by a close that reconnects.
FINAL_HELLO_ERRORS = frozenset({ErrorCode.UNAUTHENTICATED})
# An upgrade refused with one of these HTTP statuses (no WebSocket, so no close code):
# the token is refused, or the node refuses this client's Origin or subprotocol.
FINAL_HANDSHAKE_STATUSES = frozenset({401, 403})


def on_close(code: int | None) -> OnClose:
    """The policy for a connection that ended with ``code`` (None: no close frame)."""
    return CLOSE_POLICY.get(1006 if code is None else code, UNKNOWN_CLOSE)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (SPEC §2.2): 250 ms doubling, at most 5 s."""

    base: float = 0.25
    cap: float = 5.0

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """Seconds to wait before dial number ``attempt`` (0 for the first after a welcome);
        ``random`` returns a float in [0, 1)."""
        return random() * min(self.cap, self.base * 2.0 ** min(attempt, 32))
