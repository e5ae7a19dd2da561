"""A bare WebSocket client speaking protocol v1 frame by frame, for tests that need to
see exactly what the server sends and how it closes (the SDK hides both)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from clients.python import Account
from protocol import SUBPROTOCOL, decode_server_frame, encode
from protocol.frames import ClientFrame, Hello, ServerFrame

__all__ = ["Raw", "closed_with", "raw_connection"]


class Raw:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: ClientFrame) -> None:
        await self.ws.send(encode(frame))

    async def recv(self, limit_s: float = 10.0) -> ServerFrame:
        async with asyncio.timeout(limit_s):
            data = await self.ws.recv()
        assert isinstance(data, bytes)
        return decode_server_frame(data)

    async def reply_to(self, request_id: int, limit_s: float = 10.0) -> ServerFrame:
        """The reply whose ``re`` is ``request_id`` (pushed frames are skipped)."""
        async with asyncio.timeout(limit_s):
            while True:
                frame = await self.recv(limit_s)
                if getattr(frame, "re", None) == request_id:
                    return frame

    async def replies(self, ids: Iterable[int], limit_s: float = 10.0) -> list[ServerFrame]:
        """The replies to ``ids``, in that order, whatever order they come in."""
        wanted = set(ids)
        got: dict[int, ServerFrame] = {}
        async with asyncio.timeout(limit_s):
            while not wanted <= got.keys():
                frame = await self.recv(limit_s)
                re = getattr(frame, "re", None)
                if re in wanted:
                    got[re] = frame
        return [got[i] for i in sorted(wanted, key=list(ids).index)]


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/v1/ws"


@contextlib.asynccontextmanager
async def raw_connection(
    base_url: str, account: Account | None = None, **connect: Any
) -> AsyncIterator[Raw]:
    """Connected (and, given an account, past hello: the welcome is consumed)."""
    async with websockets.connect(
        ws_url(base_url), subprotocols=[Subprotocol(SUBPROTOCOL)], max_size=2**26, **connect
    ) as ws:
        raw = Raw(ws)
        if account is not None:
            await raw.send(Hello(1, account.token, account.device_id))
            await raw.reply_to(1)
        yield raw


async def closed_with(raw: Raw, limit_s: float = 10.0) -> int | None:
    """Read (and drop) frames until the server closes; return its close code."""
    try:
        async with asyncio.timeout(limit_s):
            async for _ in raw.ws:
                pass
    except ConnectionClosed:
        pass
    return raw.ws.close_code
