"""A lean Redis connection for the broker's hot paths: replies are parsed in C
(hiredis) as the bytes arrive and handed to a callback synchronously, commands are
packed in C and written straight to the transport.

redis-py costs tens of µs per reply on this path (a coroutine, a timeout and a dict per
pub/sub message; a command object per pipelined PUBLISH), which at tens of thousands
of publications a second was most of what the Redis broker cost a node over the
in-process one. redis-py still opens the connection (URL, TLS, AUTH, SELECT, HELLO:
the same settings as every other connection of ours); then the transport is taken over.
Nothing arrives unsolicited before our first command, so no reply is left behind in
redis-py's buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

__all__ = ["Pipeline", "RespConnection", "pack"]

_MORE = object()  # hiredis: no complete reply buffered

ReplyHandler = Callable[[Any], None]
LossHandler = Callable[[BaseException], None]


def pack(*args: str | bytes) -> bytes:
    """One command in RESP."""
    # hiredis's stub types the tuple as a single element
    return bytes(hiredis.pack_command(args))  # type: ignore[arg-type]


def reply_error(reply: hiredis.ReplyError) -> ResponseError:
    """An error reply as redis-py raises it (the broker's FAILURES catch it)."""
    return ResponseError(str(reply))


class RespConnection(asyncio.Protocol):
    """One connection: ``on_reply(reply)`` for each reply, in order (errors as
    ``hiredis.ReplyError`` values); ``on_lost(exc)`` once when it is gone (closed by
    either side, or a reply that cannot be parsed)."""

    def __init__(self, on_reply: ReplyHandler, on_lost: LossHandler) -> None:
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._parser = hiredis.Reader(notEnoughData=_MORE)
        self._transport: asyncio.Transport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.lost: BaseException | None = None
        self.heard = False  # set by each arrival; the owner clears it to watch liveness

    @classmethod
    async def open(
        cls, client: aioredis.Redis, on_reply: ReplyHandler, on_lost: LossHandler
    ) -> RespConnection:
        """Connect as ``client`` would (its URL, TLS, credentials and database), then
        read and write on our own. Raises if the server cannot be reached."""
        conn = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        await conn.connect()
        writer: asyncio.StreamWriter = conn._writer  # redis-py offers no public handle
        # An asyncio.Transport in behaviour (uvloop's are not its subclasses).
        transport = cast(asyncio.Transport, writer.transport)
        # redis-py forgets it, or it would close our transport when garbage-collected.
        conn._reader = conn._writer = None
        self = cls(on_reply, on_lost)
        self._transport = transport
        self._writer = writer  # garbage-collected, it would close the transport
        transport.set_protocol(self)
        if transport.is_closing():  # lost before we took it over
            self.abort(RedisConnectionError("connection closed during set-up"))
        return self

    def write(self, data: bytes) -> None:
        if self.lost is not None:
            raise RedisConnectionError(f"connection lost: {self.lost}")
        assert self._transport is not None
        self._transport.write(data)

    def close(self) -> None:
        self.abort(RedisConnectionError("connection closed"))

    def abort(self, exc: BaseException) -> None:
        """Close the connection and report ``exc`` as the cause."""
        if self.lost is not None:
            return
        self.lost = exc
        if self._transport is not None:
            self._transport.close()
        self._on_lost(exc)

    # -- asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        self.heard = True
        parser, on_reply = self._parser, self._on_reply
        try:
            parser.feed(data)
            while (reply := parser.gets()) is not _MORE:
                on_reply(reply)
                if self.lost is not None:
                    return
        except Exception as exc:  # unparsable bytes, or the owner gave up on a reply
            self.abort(exc)

    def eof_received(self) -> bool:
        self.abort(RedisConnectionError("connection closed by the server"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort(exc or RedisConnectionError("connection closed by the server"))


class Pipeline:
    """Commands sent in batches on one connection, each batch answered as a whole:
    ``execute`` writes a batch at once and returns how many of its replies were errors
    once all arrived (``refused``: which, with their errors). Replies come in order, so
    batches may overlap."""

    def __init__(self, client: aioredis.Redis, *, reply_timeout_s: float) -> None:
        self._client = client
        self._reply_timeout_s = reply_timeout_s
        self._conn: RespConnection | None = None
        self._opening = asyncio.Lock()
        # The current connection's batches in flight, in order: for each, [replies still
        # due, its size, the refused as (index, error) (None while there are none), its
        # future].
        self._waiting: deque[list[Any]] = deque()

    async def execute(self, commands: list[bytes]) -> int:
        return len(await self.refused(commands))

    async def refused(self, commands: list[bytes]) -> list[tuple[int, hiredis.ReplyError]]:
        """Send ``commands``; the index and error of each one Redis refused."""
        if not commands:
            return []
        conn = await self._connection()
        done: asyncio.Future[list[tuple[int, hiredis.ReplyError]]]
        done = asyncio.get_running_loop().create_future()
        self._waiting.append([len(commands), len(commands), None, done])
        conn.write(b"".join(commands))
        try:
            async with asyncio.timeout(self._reply_timeout_s):
                return await done
        except TimeoutError:
            # The replies can no longer be matched to their commands: start afresh.
            conn.abort(TimeoutError(f"no reply from redis in {self._reply_timeout_s} s"))
            raise

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        with contextlib.suppress(Exception):
            await self._client.aclose()

    async def _connection(self) -> RespConnection:
        async with self._opening:
            if self._conn is None or self._conn.lost is not None:
                self._conn = None
                waiting: deque[list[Any]] = deque()
                self._conn = await RespConnection.open(
                    self._client,
                    lambda reply: self._on_reply(waiting, reply),
                    lambda exc: self._lost(waiting, exc),
                )
                self._waiting = waiting
            return self._conn

    @staticmethod
    def _on_reply(waiting: deque[list[Any]], reply: Any) -> None:
        if not waiting:
            raise RedisConnectionError(f"unexpected reply from redis: {reply!r}")
        entry = waiting[0]
        if isinstance(reply, hiredis.ReplyError):
            if entry[2] is None:
                entry[2] = []
            entry[2].append((entry[1] - entry[0], reply))
        entry[0] -= 1
        if not entry[0]:
            waiting.popleft()
            if not entry[3].done():
                entry[3].set_result(entry[2] or [])

    @staticmethod
    def _lost(waiting: deque[list[Any]], exc: BaseException) -> None:
        while waiting:
            done = waiting.popleft()[3]
            if not done.done():
                done.set_exception(RedisConnectionError(f"redis connection lost: {exc}"))
