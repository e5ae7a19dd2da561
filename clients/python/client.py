"""The asyncio client: one device's connection, kept up, with ordered, exactly-once delivery.

What the caller gets from :meth:`Client.recv` (or ``async for`` over :meth:`Client.events`):
per room, every timeline item (messages, the caller's own included, and room events) in
seq order, each once, across reconnects; ephemeral events (typing, receipts) as they
come; to-device payloads once each, acknowledged to the server after the caller took
them.

How: the client remembers ``last_seq`` per room. A live item with the next seq is
delivered; one further ahead is held and, unless the gap fills within ``gap_grace``
seconds, the room is synced from ``last_seq``. After every (re)connect the rooms whose
``last_seq`` on the server is ahead are synced. ``send`` retries with the same ``cid``
until acked, and the server answers a retried cid with the original seq.

Encryption wraps this transport without changing it: bodies are opaque bytes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from protocol import SUBPROTOCOL, BadFrame, CloseCode, decode_server_frame, encode
from protocol.errors import ErrorCode
from protocol.frames import (
    Ack,
    Batch,
    ClientFrame,
    Error,
    Event,
    Hello,
    KeysQuery,
    KeysReport,
    KeysUpload,
    Msg,
    Ping,
    Read,
    RoomCreate,
    RoomGet,
    RoomInfo,
    RoomInvite,
    RoomLeave,
    RoomRemove,
    RoomRole,
    RoomUninvite,
    RoomUpdate,
    Send,
    ServerFrame,
    Sync,
    ToDevice,
    ToDeviceAck,
    ToDeviceMsg,
    Typing,
    Welcome,
)

from .errors import ClientClosed, ConfrereError, ConnectionLost, ServerError
from .rest import Account

__all__ = ["Client", "ClientState", "Incoming"]

log = logging.getLogger("confrere.client")

Incoming = Msg | Event | ToDeviceMsg
Item = Msg | Event
R = TypeVar("R")

# Close codes after which reconnecting cannot help.
_FATAL_CLOSES = {CloseCode.UNAUTHENTICATED}
_RETRYABLE = {ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED}
_SYNC_PAGE = 500


@dataclass
class ClientState:
    """What a device must remember to resume without loss or duplicates."""

    last_seq: dict[str, int] = field(default_factory=dict)
    # To-device ids handed to the application but not yet acknowledged to the server.
    to_device_unacked: set[int] = field(default_factory=set)


def _ws_url(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :].rstrip("/") + "/v1/ws"
    return "ws://" + base_url.removeprefix("http://").rstrip("/") + "/v1/ws"


_BACKOFF_BASE_S = 0.25  # the first reconnection window; doubled after each failure


class Client:
    def __init__(
        self,
        account: Account,
        *,
        state: ClientState | None = None,
        from_start: bool = True,
        reconnect: bool = True,
        gap_grace: float = 0.2,
        max_backoff: float = 5.0,
        request_timeout: float = 30.0,
        endpoints: list[str] | None = None,
    ) -> None:
        """``from_start``: deliver each room's history from seq 1 (else only what comes
        after the first welcome, or, for a room joined later, from the first item of it
        that reaches this client).
        ``endpoints``: base URLs of the nodes to try in turn when one fails (default: the
        account's own); a session is valid on every node of a deployment."""
        self.account = account
        self.endpoints = endpoints or [account.base_url]
        self._endpoint = 0
        self.state = state or ClientState()
        self.rooms: dict[str, RoomInfo] = {}
        self.verified = False
        self.reconnects = 0
        self._from_start = from_start
        self._reconnect = reconnect
        self._gap_grace = gap_grace
        self._max_backoff = max_backoff
        self._request_timeout = request_timeout
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ServerFrame]] = {}
        self._inbox: asyncio.Queue[Incoming | None] = asyncio.Queue()
        self._held: dict[str, dict[int, Item]] = {}
        self._catchups: dict[str, asyncio.Task[None]] = {}
        self._connected = asyncio.Event()
        self._stopped = asyncio.Event()
        self._fatal: ConfrereError | None = None
        self._runner: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._background: set[asyncio.Future[None]] = set()
        self._td_queued: set[int] = set()  # in the inbox, not yet taken by the app
        self._first_welcome = True

    @property
    def user_id(self) -> str:
        return self.account.user_id

    @property
    def device_id(self) -> str:
        return self.account.device_id

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- lifecycle

    async def connect(self) -> None:
        """Connect and authenticate (raising if that fails), then stay connected."""
        await self._open()
        self._runner = asyncio.create_task(self._keep_connected(), name="client-runner")

    async def close(self) -> None:
        if self._background and self._connected.is_set():
            # Let queued to-device acks reach the server, or it redelivers next time.
            await asyncio.wait(self._background, timeout=2.0)
        self._stop(ClientClosed("client closed"))
        for task in [self._runner, self._reader, *self._catchups.values()]:
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        if self._ws is not None:
            await self._ws.close()

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def drop_connection(self) -> None:
        """Abort the socket as a network failure would (the client then reconnects)."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def _open(self) -> None:
        ws = await connect(
            _ws_url(self.endpoints[self._endpoint % len(self.endpoints)]),
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,
            max_size=64 * 1024 * 1024,
            open_timeout=10,
            ping_interval=20,
            ping_timeout=20,
            proxy=None,
        )
        hello_id = next(self._ids)
        await ws.send(encode(Hello(hello_id, self.account.token, self.account.device_id)))
        while True:
            try:
                frame = decode_server_frame(await ws.recv())  # type: ignore[arg-type]
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in _FATAL_CLOSES:
                    raise ClientClosed(f"server refused the session ({code})") from None
                raise ConnectionLost(f"server closed the connection ({code})") from None
            except BadFrame as exc:
                await ws.close()
                raise ServerError(ErrorCode.BAD_FRAME, f"bad frame from server: {exc}") from None
            if isinstance(frame, Welcome) and frame.re == hello_id:
                break
            if isinstance(frame, Error) and frame.re == hello_id:
                await ws.close()
                raise ServerError(frame.code, frame.message)
            self._on_frame(frame)
        self._ws = ws
        self._on_welcome(frame)
        self._reader = asyncio.create_task(self._read_loop(ws), name="client-reader")
        self._connected.set()

    def _on_welcome(self, welcome: Welcome) -> None:
        self.verified = welcome.verified
        for room in welcome.rooms:
            self.rooms[room.id] = room
            if room.id not in self.state.last_seq:
                self.state.last_seq[room.id] = 0 if self._from_start else room.last_seq
            if room.last_seq > self.state.last_seq[room.id]:
                self._schedule_catch_up(room.id, grace=0.0)
        self._first_welcome = False

    async def _keep_connected(self) -> None:
        while not self._stopped.is_set():
            reader = self._reader
            if reader is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
            self._connected.clear()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionLost("connection lost"))
            self._pending.clear()
            if self._stopped.is_set() or not self._reconnect:
                self._stop(self._fatal or ClientClosed("connection lost"))
                return
            delay = _BACKOFF_BASE_S
            while not self._stopped.is_set():
                # Full jitter (SPEC.md §2.2): the clients of a node that died spread
                # their attempts instead of all coming back in the same instant.
                await asyncio.sleep(random.uniform(0, delay))
                try:
                    await self._open()
                    self.reconnects += 1
                    break
                except ServerError as exc:
                    if exc.code == ErrorCode.UNAUTHENTICATED:
                        self._stop(exc)
                        return
                except ClientClosed as exc:  # the server refused the session
                    self._stop(exc)
                    return
                except InvalidStatus as exc:
                    if exc.response.status_code in (401, 403):  # refused at the handshake
                        self._stop(ClientClosed(f"handshake refused ({exc.response.status_code})"))
                        return
                except (OSError, InvalidHandshake, ConfrereError, TimeoutError) as exc:
                    log.debug("reconnect failed: %s", exc)
                self._endpoint += 1  # next node
                delay = min(delay * 2, self._max_backoff)

    def _stop(self, reason: ConfrereError) -> None:
        if self._stopped.is_set():
            return
        self._fatal = self._fatal or reason
        self._stopped.set()
        self._connected.clear()
        self._inbox.put_nowait(None)

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                try:
                    frame = decode_server_frame(data)  # type: ignore[arg-type]
                except BadFrame as exc:
                    log.warning("undecodable server frame: %s", exc)
                    waiter = self._pending.pop(exc.re, None) if exc.re is not None else None
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(ServerError(ErrorCode.BAD_FRAME, exc.message))
                    continue
                self._on_frame(frame)
        except ConnectionClosed:
            pass
        code = ws.close_code
        if code in _FATAL_CLOSES:
            self._stop(ClientClosed(f"server ended the session (close {code})"))

    # -- incoming

    def _on_frame(self, frame: ServerFrame) -> None:
        if isinstance(frame, Msg):
            self._on_item(frame.room, frame)
        elif isinstance(frame, Event):
            if frame.seq > 0:
                self._on_item(frame.room, frame)
            else:
                self._inbox.put_nowait(frame)
        elif isinstance(frame, ToDeviceMsg):
            if frame.tid in self.state.to_device_unacked:
                self._ack_to_device_soon(frame.tid)  # the app has it; the ack was lost
            elif frame.tid not in self._td_queued:
                self._td_queued.add(frame.tid)
                self._inbox.put_nowait(frame)
        elif isinstance(frame, Welcome) and frame.re == 0:
            self._on_welcome(frame)  # identity verified during this connection
        elif frame.re is not None:
            future = self._pending.pop(frame.re, None)
            if future is None or future.done():
                return
            if isinstance(frame, Error):
                future.set_exception(ServerError(frame.code, frame.message, frame.retry_after))
            else:
                future.set_result(frame)
        elif isinstance(frame, Error):
            log.warning("server error: %s %s", frame.code.value, frame.message)

    def _on_item(self, room: str, item: Item) -> None:
        last = self.state.last_seq.get(room)
        if last is None:
            last = self.state.last_seq[room] = 0 if self._from_start else item.seq - 1
        if item.seq <= last:
            return  # already delivered
        if item.seq > last + 1:
            self._held.setdefault(room, {})[item.seq] = item
            self._schedule_catch_up(room, grace=self._gap_grace)
            return
        self._deliver(room, item)
        held = self._held.get(room)
        while held:
            nxt = held.pop(self.state.last_seq[room] + 1, None)
            if nxt is None:
                break
            self._deliver(room, nxt)

    def _deliver(self, room: str, item: Item) -> None:
        self.state.last_seq[room] = item.seq
        self._inbox.put_nowait(item)
        if isinstance(item, Event) and item.kind == "member.left" and item.user == self.user_id:
            self.rooms.pop(room, None)

    def _schedule_catch_up(self, room: str, grace: float) -> None:
        task = self._catchups.get(room)
        if task is not None and not task.done():
            return
        self._catchups[room] = asyncio.create_task(self._catch_up(room, grace))

    async def _catch_up(self, room: str, grace: float) -> None:
        if grace:
            await asyncio.sleep(grace)  # a late live frame often fills a gap by itself
        while not self._stopped.is_set():
            last = self.state.last_seq.get(room, 0)
            held = self._held.get(room, {})
            for seq in [s for s in held if s <= last]:
                del held[seq]
            if grace and not held:
                return
            try:
                batch = await self._request(Sync(next(self._ids), room, last, _SYNC_PAGE), Batch)
            except ConnectionLost:
                await self._wait_connected()
                continue
            except ServerError as exc:
                if exc.code in _RETRYABLE:
                    await asyncio.sleep(exc.retry_after or 0.5)
                    continue
                log.info("cannot sync room %s: %s", room, exc)
                self._held.pop(room, None)
                return
            for item in batch.items:
                self._on_item(room, item)
            if not batch.more:
                return

    # -- requests

    async def _wait_connected(self) -> None:
        if self._connected.is_set():
            return
        stopped = asyncio.ensure_future(self._stopped.wait())
        connected = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait((stopped, connected), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            connected.cancel()
        if not self._connected.is_set():
            raise self._fatal or ClientClosed("client closed")

    async def _request(self, frame: ClientFrame, reply_type: type[R]) -> R:
        ws = self._ws
        if ws is None or not self._connected.is_set():
            if self._stopped.is_set():
                raise self._fatal or ClientClosed("client closed")
            raise ConnectionLost("not connected")
        future: asyncio.Future[ServerFrame] = asyncio.get_running_loop().create_future()
        self._pending[frame.id] = future
        try:
            await ws.send(encode(frame))
        except ConnectionClosed:
            self._pending.pop(frame.id, None)
            raise ConnectionLost("connection lost") from None
        try:
            async with asyncio.timeout(self._request_timeout):
                reply = await future
        except TimeoutError:
            self._pending.pop(frame.id, None)
            raise ConnectionLost(f"no reply to {frame.T} in {self._request_timeout} s") from None
        if not isinstance(reply, reply_type):
            raise ServerError(ErrorCode.INTERNAL, f"unexpected reply {type(reply).__name__}")
        return reply

    async def _call(self, make: Any, reply_type: type[R], *, retry: bool) -> R:
        """Send a request built by ``make(id)``; with ``retry``, survive reconnects."""
        while True:
            await self._wait_connected()
            try:
                return await self._request(make(next(self._ids)), reply_type)
            except ConnectionLost:
                if not retry:
                    raise
            except ServerError as exc:
                if not retry or exc.code not in _RETRYABLE:
                    raise
                await asyncio.sleep(exc.retry_after or 0.5)

    # -- public API

    async def recv(self) -> Incoming:
        """The next incoming item (see the module docstring for the order)."""
        if self._inbox.empty() and self._stopped.is_set():
            raise self._fatal or ClientClosed("client closed")
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)  # keep later callers informed too
            raise self._fatal or ClientClosed("client closed")
        if isinstance(item, ToDeviceMsg):
            self._td_queued.discard(item.tid)
            self.state.to_device_unacked.add(item.tid)
            self._ack_to_device_soon(item.tid)
        return item

    async def events(self) -> AsyncIterator[Incoming]:
        """Incoming items until the client is closed or the session ends."""
        while True:
            try:
                item = await self.recv()
            except ConfrereError:
                return
            yield item

    def _ack_to_device_soon(self, tid: int) -> None:
        async def ack() -> None:
            with contextlib.suppress(ConfrereError):
                await self._call(lambda i: ToDeviceAck(i, (tid,)), Ack, retry=True)
                # Deleted on the server: it will not come again.
                self.state.to_device_unacked.discard(tid)

        task = asyncio.ensure_future(ack())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def send(
        self, room: str, body: bytes, cid: str | None = None, att: Sequence[str] = ()
    ) -> int:
        """Append ``body`` to ``room``; returns its seq once durably stored. Retries
        across reconnects with the same ``cid``, so it is stored exactly once. ``att``:
        ids of attachments this user uploaded to the room that ``body`` refers to (see
        :mod:`clients.python.attachments`); the server marks them referenced."""
        cid = cid or secrets.token_urlsafe(12)
        refs = tuple(att) or None
        ack = await self._call(lambda i: Send(i, room, cid, body, refs), Ack, retry=True)
        assert ack.seq is not None
        own = Msg(room, ack.seq, self.user_id, self.device_id, cid, ack.ts or 0, body)
        self._on_item(room, own)
        return ack.seq

    async def sync(self, room: str, after: int = 0, limit: int = 100) -> Batch:
        """Read the stored timeline directly (the client also does this by itself)."""
        return await self._call(lambda i: Sync(i, room, after, limit), Batch, retry=True)

    async def create_room(
        self,
        kind: str,
        members: list[str],
        *,
        name: str | None = None,
        header: bytes | None = None,
    ) -> RoomInfo:
        ack = await self._call(
            lambda i: RoomCreate(i, kind, tuple(members), name, header), Ack, retry=False
        )
        assert ack.room is not None
        self.rooms[ack.room.id] = ack.room
        # Everything in a room we just created is new to us, whatever arrives first (our
        # own first send may be acked before the room's opening event reaches us).
        self.state.last_seq.setdefault(ack.room.id, 0)
        return ack.room

    async def room(self, room: str) -> RoomInfo:
        ack = await self._call(lambda i: RoomGet(i, room), Ack, retry=True)
        assert ack.room is not None
        return ack.room

    async def invite(
        self, room: str, users: Sequence[str] = (), *, emails: Sequence[str] = ()
    ) -> int:
        """Add ``users`` (ids) and invite ``emails`` (guests: practitioners who may have
        no account yet; they become members once they sign up and confirm the address)."""
        ack = await self._call(
            lambda i: RoomInvite(i, room, tuple(users), tuple(emails)), Ack, retry=False
        )
        return ack.seq or 0

    async def uninvite(self, room: str, email: str) -> None:
        """Revoke the pending invitation of ``email`` (owner or admin)."""
        await self._call(lambda i: RoomUninvite(i, room, email), Ack, retry=False)

    async def leave(self, room: str) -> int:
        ack = await self._call(lambda i: RoomLeave(i, room), Ack, retry=False)
        return ack.seq or 0

    async def remove(self, room: str, user: str) -> int:
        ack = await self._call(lambda i: RoomRemove(i, room, user), Ack, retry=False)
        return ack.seq or 0

    async def update_room(
        self,
        room: str,
        *,
        name: str | None = None,
        header: bytes | None = None,
        status: str | None = None,
    ) -> int:
        ack = await self._call(
            lambda i: RoomUpdate(i, room, name, header, status), Ack, retry=False
        )
        return ack.seq or 0

    async def set_role(self, room: str, user: str, role: str) -> int:
        ack = await self._call(lambda i: RoomRole(i, room, user, role), Ack, retry=False)
        return ack.seq or 0

    async def read(self, room: str, seq: int) -> int:
        ack = await self._call(lambda i: Read(i, room, seq), Ack, retry=True)
        return ack.seq or 0

    async def typing(self, room: str, on: bool = True) -> None:
        await self._call(lambda i: Typing(i, room, on), Ack, retry=False)

    async def to_device(self, user: str, device: str, body: bytes) -> int:
        ack = await self._call(lambda i: ToDevice(i, user, device, body), Ack, retry=False)
        return ack.tid or 0

    async def upload_keys(self, bundle: bytes) -> None:
        """Publish this device's signed key bundle (``keys.upload``)."""
        await self._call(lambda i: KeysUpload(i, bundle), Ack, retry=True)

    async def query_keys(self, users: list[str]) -> tuple[bytes, ...]:
        """The key bundles of the devices of ``users`` that the caller may see
        (``keys.query``); unverified: check them with ``protocol.crypto.keys``."""
        ack = await self._call(lambda i: KeysQuery(i, tuple(users)), Ack, retry=True)
        return ack.keys or ()

    async def report_decryption_failure(
        self, room: str, device: str, reason: str, session: bytes | None = None
    ) -> int:
        """Report a message of ``device`` this device could not decrypt (``keys.report``);
        returns how many such failures the server has counted."""
        ack = await self._call(
            lambda i: KeysReport(i, room, device, reason, session), Ack, retry=True
        )
        return ack.seq or 0

    async def ping(self) -> None:
        await self._call(Ping, object, retry=False)
