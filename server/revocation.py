"""Revoked sessions close their live connections, on every node.

- Log-out (``DELETE /v1/sessions/current``) and session expiry: the connections of
  that session close with **4401** (log in again).
- An identity no longer verified (``users unverify``): the user's verified
  connections close with **4403**; the client may reconnect and gets an unverified
  ``welcome`` (kept out of the messaging).

Two paths, because a revocation may happen anywhere (another node, the admin CLI):

1. Fast: :func:`revoke` closes this node's matching connections at once and publishes
   a ``revoke`` envelope on the user's broker channel, which every node where the user
   has a verified connection listens to (:func:`on_revoke_envelope`). The envelope
   carries a fingerprint of the session, never its token hash.
2. Backstop: :func:`run_session_watch` re-checks every connection of the node every
   ``interval_s`` (expiry from memory; deletion and verification from the database),
   which catches what the fast path cannot reach: a CLI on the in-process broker,
   connections not yet verified (not subscribed to their user channel), a node that
   missed the publication.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Literal

from protocol import CloseCode
from storage.base import UserStore
from storage.errors import StorageError

from .broker import Broker, open_broker, user_channel
from .clock import now_ms
from .envelope import Envelope
from .live import LiveConnections

__all__ = [
    "fingerprint",
    "on_revoke_envelope",
    "revoke",
    "revoke_from_outside",
    "run_session_watch",
    "sweep_sessions",
]

log = logging.getLogger("confrere.revocation")

Reason = Literal["session", "unverified"]
_CODES: dict[str, CloseCode] = {
    "session": CloseCode.UNAUTHENTICATED,
    "unverified": CloseCode.FORBIDDEN,
}


def fingerprint(session_hash: bytes) -> bytes:
    """What names a session on the broker (not the stored token hash itself)."""
    return hashlib.sha256(b"confrere-revoke:" + session_hash).digest()[:16]


def _close(live: LiveConnections, user_id: str, fp: bytes | None, reason: str) -> int:
    code = _CODES.get(reason)
    if code is None:
        return 0
    closed = 0
    for conn in live.of_user(user_id):
        if reason == "unverified" and not conn.verified:
            continue
        if fp is None or fingerprint(conn.session_hash) == fp:
            conn.close(code)
            closed += 1
    if closed:
        log.info("revoked %d connection(s) of user %s (%s)", closed, user_id, reason)
    return closed


async def revoke(
    broker: Broker | None,
    live: LiveConnections | None,
    user_id: str,
    reason: Reason,
    session_hash: bytes | None = None,
) -> None:
    """Close the user's connections everywhere: those of ``session_hash`` only, or all
    of them. ``live`` is None in a process without connections (the CLI); ``broker``
    None where there is none to reach other nodes. Never raises on a broker failure:
    the session watch catches up."""
    fp = None if session_hash is None else fingerprint(session_hash)
    if live is not None:
        _close(live, user_id, fp, reason)
    if broker is not None:
        try:
            env = Envelope("revoke", fp or b"", device=reason)
            await broker.publish(user_channel(user_id), env.encode())
        except Exception as exc:
            log.warning("revocation not published (the session watch will close): %s", exc)


def on_revoke_envelope(live: LiveConnections) -> Callable[[str, Envelope], None]:
    """The hub's ``on_revoke`` callback for this node's connections."""

    def on_revoke(user_id: str, env: Envelope) -> None:
        _close(live, user_id, env.frame or None, env.device or "")

    return on_revoke


async def sweep_sessions(store: UserStore, live: LiveConnections, now: int) -> int:
    """One pass of the backstop; returns how many connections it closed."""
    closed = 0
    users: dict[str, bool] = {}
    for conn in live.all():
        if not conn.user_id or not conn.session_hash:
            continue  # not authenticated yet: the hello deadline deals with it
        if conn.session_expires_at <= now or await store.session(conn.session_hash) is None:
            conn.close(CloseCode.UNAUTHENTICATED)
            closed += 1
            continue
        if conn.verified:
            if conn.user_id not in users:
                user = await store.user_by_id(conn.user_id)
                users[conn.user_id] = user is not None and user.verified
            if not users[conn.user_id]:
                conn.close(CloseCode.FORBIDDEN)
                closed += 1
    if closed:
        log.info("session watch closed %d connection(s)", closed)
    return closed


async def run_session_watch(store: UserStore, live: LiveConnections, interval_s: float) -> None:
    """Until cancelled: :func:`sweep_sessions` every ``interval_s`` seconds."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await sweep_sessions(store, live, now_ms())
        except StorageError as exc:
            log.warning("session watch skipped a pass: %s", exc)


async def revoke_from_outside(broker_url: str, user_id: str, reason: Reason) -> bool:
    """From a process without connections (the admin CLI): publish the revocation on
    the deployment's broker; whether it went out. The in-process broker reaches no
    node: there, the nodes' session watch closes the connections within
    ``session_check_interval_s``."""
    if broker_url.startswith("memory://"):
        return False
    broker = open_broker(broker_url)
    channel = user_channel(user_id)
    echoed = asyncio.Event()

    def on_message(got_channel: str, data: bytes) -> None:
        if got_channel == channel:
            echoed.set()

    try:
        await broker.start(on_message, lambda: None)
        # Publications are handed to a background publisher: listening to our own
        # channel tells when it went out, before the process exits.
        await broker.subscribe(channel)
        await revoke(broker, None, user_id, reason)
        async with asyncio.timeout(5.0):
            await echoed.wait()
        return True
    except Exception as exc:
        log.warning("revocation not published (the session watch will close): %s", exc)
        return False
    finally:
        with contextlib.suppress(Exception):
            await broker.close()
