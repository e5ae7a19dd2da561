"""A real HTTP webhook receiver for tests: uvicorn on a socket of its own.

The socket is bound at construction but listens only once :meth:`start` runs, so
until then connections are refused, as with a receiver that is down; the URL stays
the same across the two.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True, slots=True)
class Received:
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))  # not listening yet: connections are refused
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.received: list[Received] = []
        self._arrived = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def _hook(self, request: Request) -> Response:
        self.received.append(Received(dict(request.headers), await request.body()))
        self._arrived.set()
        return Response(status_code=204)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def wait_for(self, count: int, limit_s: float = 20.0) -> list[Received]:
        """The requests received, once there are at least ``count``."""
        async with asyncio.timeout(limit_s):
            while len(self.received) < count:
                await self._arrived.wait()
                self._arrived.clear()
        return self.received

    async def close(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self.sock.close()
