"""Graceful shutdown of a node (SIGTERM or SIGINT).

uvicorn's own shutdown closes every WebSocket with 1012 at once, dropping the replies
of requests still being handled. :class:`GracefulServer` puts a drain in front of it:

1. stop accepting: the listening sockets are closed (a load balancer sends new
   connections to other nodes);
2. every connection stops reading requests (a frame arriving now is answered with
   ``unavailable``), lets those in flight finish (a ``send`` already queued for a
   commit is committed and acked), writes what it has queued and closes with 1012,
   so clients reconnect to another node and catch up by seq;
3. then uvicorn's shutdown, which finds no connection left, and the app's lifespan
   shutdown, which closes the broker and the database.

An acked message was committed before its ack was queued, and the store is closed
only after every connection is gone: nothing acked is lost.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette

from .live import LiveConnections

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
        live = (
            getattr(getattr(app, "state", None), "live", None)
            if isinstance(app, Starlette)
            else None
        )
        if isinstance(live, LiveConnections):
            await live.drain(DRAIN_TIMEOUT_S)
        await super().shutdown(sockets=None)
