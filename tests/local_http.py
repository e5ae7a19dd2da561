"""The pieces every stand-in third-party service of the tests shares.

:class:`Arrivals` is what such a service records (e-mails, SMS, pushes, webhook calls),
awaitable until enough have arrived; :class:`LocalHttpServer` serves a Starlette app with
uvicorn on a socket of its own. The socket is bound at construction but listens only once
:meth:`LocalHttpServer.start` runs, so until then connections are refused, as with a
service that is down; its URL stays the same across the two.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

T = TypeVar("T")


class Arrivals(list[T]):
    """A list of what a service received, that :meth:`until` can wait on."""

    def __init__(self) -> None:
        super().__init__()
        self._grown = asyncio.Event()

    def append(self, item: T) -> None:
        super().append(item)
        self._grown.set()

    async def until(self, count: int, limit_s: float = 20.0) -> list[T]:
        """This list, once it holds at least ``count`` items (TimeoutError after ``limit_s``)."""
        async with asyncio.timeout(limit_s):
            while len(self) < count:
                self._grown.clear()
                await self._grown.wait()
        return self


def bound_socket() -> socket.socket:
    """A TCP socket bound to a free port of 127.0.0.1, not listening yet."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


class LocalHttpServer:
    """A Starlette app of :meth:`routes`, served by uvicorn between start() and close()."""

    def __init__(self) -> None:
        self.sock = bound_socket()
        self.origin = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    async def start(self) -> None:
        app = Starlette(routes=self.routes())
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        while not self._server.started:  # uvicorn has no awaitable for this
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # a request left hanging on purpose must not wait
            await self._task
        self.sock.close()
