"""Graceful shutdown of a node (SIGTERM or SIGINT).

uvicorn's own shutdown closes every WebSocket with 1012 at once, dropping the replies
of requests still being handled. :class:`GracefulServer` puts a drain in front of it:

1. stop accepting: the listening sockets are closed (a load balancer sends new
   connections to other nodes);
2. every connection stops reading requests (a frame arriving now is answered with
   ``unavailable``), lets those in flight finish (a ``send`` already queued for a
   commit is committed and acked), writes what it has queued and closes with 1012,
   so clients reconnect to another node and catch up by seq;
3. once clients answered the close frames (or after ``CLOSE_GRACE_S``), uvicorn's
   shutdown, which finds no WebSocket left, and the app's lifespan shutdown, which
   closes the broker and the database.

An acked message was committed before its ack was queued, and the store is closed
only after every connection is gone: nothing acked is lost.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn

from .live import CLOSE_GRACE_S
from .node import NodeApp
from .websocket import WebSocketProtocol

__all__ = ["DRAIN_TIMEOUT_S", "GracefulServer"]

log = logging.getLogger("confrere.shutdown")

DRAIN_TIMEOUT_S = 5.0  # longest wait for in-flight requests of a connection


class GracefulServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        app = self.config.app
        if isinstance(app, NodeApp):
            await app.live.drain(DRAIN_TIMEOUT_S)
            await self._close_handshakes_done(CLOSE_GRACE_S)
        await super().shutdown(sockets=None)

    async def _close_handshakes_done(self, limit_s: float) -> None:
        """Wait for clients to answer our close frames. uvicorn's shutdown closes the
        socket of a connection whose close was sent without waiting for the answer; a
        socket closed with unread bytes (frames the client sent meanwhile) is reset
        (RFC 1122 4.2.2.13), and the client loses the frames still in flight to it,
        the close frame included."""
        for _ in range(int(limit_s / 0.02)):
            if not any(isinstance(c, WebSocketProtocol) for c in self.server_state.connections):
                return
            await asyncio.sleep(0.02)
