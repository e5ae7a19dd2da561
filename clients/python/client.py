"""The asyncio client: one device's connection, kept up, with ordered, exactly-once delivery.

What the caller gets from :meth:`Client.recv` (or ``async for`` over :meth:`Client.events`):
per room, every timeline item (messages, the caller's own included, and room events) in
seq order, each once, across reconnects; ephemeral events (typing, receipts) as they
come; to-device payloads once each, acknowledged to the server after the caller took
them.

How: the protocol's :class:`~protocol.client_session.ClientSession` decides all of it
(order by seq, catch-up by ``sync`` after a gap or a reconnect, ``send`` retried with
its cid until acked, the close-code policy and the backoff with full jitter); this
module is its asyncio I/O layer: the WebSocket, a reader and a writer task, the timers
the session asks for, and a future per request.

Encryption wraps this transport without changing it: bodies are opaque bytes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from protocol import SUBPROTOCOL, BadFrame, decode_server_frame, encode
from protocol.client_session import (
    CatchUpLater,
    ClientSession,
    ClientStatus,
    Deliver,
    DeviceState,
    Failed,
    HelloRefused,
    Reconnect,
    Replied,
    Request,
    RetryLater,
    SessionEvent,
    Stopped,
    Transmit,
    Welcomed,
)
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
    KeysSign,
    KeysUpload,
    Msg,
    MsgDelete,
    Ping,
    Read,
    RoomCreate,
    RoomGet,
    RoomInfo,
    RoomInvite,
    RoomLeave,
    RoomRemove,
    RoomRole,
    RoomSettings,
    RoomUninvite,
    RoomUpdate,
    Send,
    ServerFrame,
    Sync,
    ToDevice,
    ToDeviceMsg,
    Typing,
    Welcome,
)
from protocol.reconnect import FINAL_HANDSHAKE_STATUSES, Backoff

from .errors import ClientClosed, ConfrereError, ConnectionLost, ServerError
from .rest import Account

__all__ = ["Client", "ClientState", "Incoming", "KeyDirectory"]

log = logging.getLogger("confrere.client")

Incoming = Msg | Event | ToDeviceMsg
R = TypeVar("R")
# What a device remembers to resume (SPEC §10.1); the SDK's name for it.
ClientState = DeviceState


@dataclass(frozen=True, slots=True)
class KeyDirectory:
    """A ``keys.query`` answer, as the server gave it (nothing verified yet)."""

    keys: tuple[bytes, ...]  # device bundles
    identities: tuple[bytes, ...]  # users' identity records
    signatures: tuple[bytes, ...]  # device signatures


def _ws_url(base_url: str) -> str:
    if base_url.startswith("https://"):
        return "wss://" + base_url[len("https://") :].rstrip("/") + "/v1/ws"
    return "ws://" + base_url.removeprefix("http://").rstrip("/") + "/v1/ws"


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
        self.session = ClientSession(
            state,
            device=account.device_id,
            from_start=from_start,
            gap_grace=gap_grace,
            backoff=Backoff(cap=max_backoff),
        )
        self.rooms: dict[str, RoomInfo] = {}
        self.verified = False
        self.reconnects = 0
        self._endpoint = 0
        self._reconnect = reconnect
        self._request_timeout = request_timeout
        self._ws: ClientConnection | None = None
        self._outbox: asyncio.Queue[bytes] | None = None  # of the current connection
        self._inbox: asyncio.Queue[Incoming | None] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._acks_settled = asyncio.Event()
        self._stopped = asyncio.Event()
        self._fatal: ConfrereError | None = None
        self._opening: asyncio.Future[None] | None = None  # the first connect()'s outcome
        self._welcomed = False  # the current connection got its welcome
        self._started = False  # the first connect() succeeded
        self._tasks: set[asyncio.Future[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def state(self) -> ClientState:
        return self.session.state

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
        """Connect and authenticate (raising if that fails), then stay connected. On a
        client already connected, returns once it is connected again."""
        if self._stopped.is_set():
            raise self._fatal or ClientClosed("client closed")
        if self._started:
            await self._wait_connected()
            return
        opening = self._opening = asyncio.get_running_loop().create_future()
        self.session.connect()
        try:
            await self._dial()
            await opening
            self._started = True
        finally:
            self._opening = None
            if opening.done() and not opening.cancelled():
                opening.exception()  # raised by _dial() already, or by the await

    async def close(self) -> None:
        if self.session.acking and self._connected.is_set():
            # Let queued to-device acks reach the server, or it redelivers next time.
            self._acks_settled.clear()
            try:
                async with asyncio.timeout(2.0):
                    await self._acks_settled.wait()
            except TimeoutError:
                pass
        self.session.stop()
        self._act(self.session.events())
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            if task is not asyncio.current_task():
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

    async def _dial(self) -> None:
        """One connection attempt (the session is CONNECTING); a failure to open the
        socket is reported to the session, and raised during the first connect()."""
        url = _ws_url(self.endpoints[self._endpoint % len(self.endpoints)])
        try:
            ws = await connect(
                url,
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                compression=None,
                max_size=64 * 1024 * 1024,
                open_timeout=10,
                ping_interval=20,
                ping_timeout=20,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in FINAL_HANDSHAKE_STATUSES:  # refused at the handshake
                self._stop(ClientClosed(f"handshake refused ({status})"))
                self.session.stop()
                self._act(self.session.events())
                raise
            self._dial_failed(exc)
            raise
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self._dial_failed(exc)
            raise
        if self.session.status is ClientStatus.STOPPED:  # closed while dialing
            await ws.close()
            return
        self._ws, self._welcomed = ws, False
        outbox = self._outbox = asyncio.Queue()
        hello_id = self.session.opened()
        outbox.put_nowait(encode(Hello(hello_id, self.account.token, self.account.device_id)))
        self._spawn(self._write(ws, outbox), "client-writer")
        self._spawn(self._read(ws), "client-reader")

    def _dial_failed(self, exc: Exception) -> None:
        log.debug("connection attempt failed: %s", exc)
        self._endpoint += 1  # next node
        self.session.closed(None)
        self._act(self.session.events())

    async def _redial(self) -> None:
        if self.session.status is not ClientStatus.BACKOFF:
            return
        self.session.connect()
        # A failure is reported to the session, which asks for another Reconnect.
        with contextlib.suppress(OSError, InvalidHandshake, TimeoutError):
            await self._dial()

    async def _write(self, ws: ClientConnection, outbox: asyncio.Queue[bytes]) -> None:
        try:
            while True:
                await ws.send(await outbox.get())
        except ConnectionClosed:
            pass  # the reader reports the end of the connection

    async def _read(self, ws: ClientConnection) -> None:
        session = self.session
        try:
            async for data in ws:
                try:
                    frame = decode_server_frame(data)  # type: ignore[arg-type]
                except BadFrame as exc:
                    log.warning("undecodable server frame: %s", exc)
                    if exc.re is None:
                        continue
                    frame = Error(ErrorCode.BAD_FRAME, exc.message, exc.re)
                if isinstance(frame, Error) and frame.re is None:
                    log.warning("server error: %s %s", frame.code.value, frame.message)
                    continue
                session.receive(frame)
                self._act(session.events(), frame)
        except ConnectionClosed:
            pass
        if self._ws is ws:
            self._ws = None
            self._connected.clear()
            if not self._welcomed:
                self._endpoint += 1  # refused before its welcome: try the next node
            session.closed(ws.close_code)
            self._act(session.events())

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _later(self, delay: float, then: Callable[[], None]) -> None:
        def fire() -> None:
            self._timers.discard(timer)
            then()
            self._act(self.session.events())

        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(timer)

    def _stop(self, reason: ConfrereError) -> None:
        if self._stopped.is_set():
            return
        self._fatal = self._fatal or reason
        self._stopped.set()
        self._connected.clear()
        self._inbox.put_nowait(None)
        if self._opening is not None and not self._opening.done():
            self._opening.set_exception(self._fatal)

    # -- what the session asks for

    def _act(self, events: list[SessionEvent], frame: ServerFrame | None = None) -> None:
        for event in events:
            if isinstance(event, Transmit):
                assert self._outbox is not None
                self._outbox.put_nowait(encode(event.frame))
            elif isinstance(event, Deliver):
                item = event.item
                self._inbox.put_nowait(item)
                if (
                    isinstance(item, Event)
                    and item.kind == "member.left"
                    and item.user == self.user_id
                ):
                    self.rooms.pop(item.room, None)
            elif isinstance(event, Replied):
                self._settle(event.request, event.frame)
            elif isinstance(event, Failed):
                self._fail(event.request, event.error)
            elif isinstance(event, RetryLater):
                self._later(event.delay, partial(self.session.retry, event.request))
            elif isinstance(event, CatchUpLater):
                self._later(event.delay, partial(self.session.gap_expired, event.room))
            elif isinstance(event, Welcomed):
                self._on_welcome(event, frame)
            elif isinstance(event, HelloRefused):
                if self._opening is not None and not self._opening.done():
                    error = event.error
                    self._opening.set_exception(ServerError(error.code, error.message))
            elif isinstance(event, Reconnect):
                self._on_reconnect(event)
            elif isinstance(event, Stopped):
                self._on_stopped(event)
        if not self.session.acking:
            self._acks_settled.set()

    def _on_welcome(self, event: Welcomed, frame: ServerFrame | None) -> None:
        assert isinstance(frame, Welcome)
        self.verified = frame.verified
        for room in frame.rooms:
            self.rooms[room.id] = room
        if event.opened:
            if self._opening is None:
                self.reconnects += 1
            else:
                self._opening.set_result(None)
            self._welcomed = True
            self._connected.set()

    def _on_reconnect(self, event: Reconnect) -> None:
        if self._opening is not None:  # the first connect() raises instead
            if not self._opening.done():
                self._opening.set_exception(
                    ConnectionLost(f"server closed the connection ({event.close})")
                )
            return
        if not self._reconnect:
            self._stop(ClientClosed("connection lost"))
            self.session.stop()
            return
        self._later(event.delay, lambda: self._spawn(self._redial(), "client-redial"))

    def _on_stopped(self, event: Stopped) -> None:
        if event.error is not None:
            error = event.error
            reason: ConfrereError = ServerError(error.code, error.message)
        elif event.close is not None:
            reason = ClientClosed(f"server ended the session (close {event.close})")
        else:
            reason = ClientClosed("client closed")
        self._stop(reason)

    def _settle(self, request: Request, frame: ServerFrame) -> None:
        future = request.tag
        if isinstance(future, asyncio.Future) and not future.done():
            future.set_result(frame)

    def _fail(self, request: Request, error: Error | None) -> None:
        future = request.tag
        if not isinstance(future, asyncio.Future):  # the session's own sync or ack
            if error is not None:
                log.info("%r failed: %s %s", request, error.code.value, error.message)
            return
        if future.done():
            return
        if error is not None:
            future.set_exception(ServerError(error.code, error.message, error.retry_after))
        elif self._stopped.is_set():
            future.set_exception(self._fatal or ClientClosed("client closed"))
        else:
            future.set_exception(ConnectionLost("connection lost"))

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

    async def _call(self, make: Callable[[int], ClientFrame], reply_type: type[R]) -> R:
        """Send the request ``make(id)`` builds; the session retries it across
        reconnects and after ``unavailable``/``rate_limited`` if it is idempotent."""
        if self._stopped.is_set():
            raise self._fatal or ClientClosed("client closed")
        future: asyncio.Future[ServerFrame] = asyncio.get_running_loop().create_future()
        request = self.session.request(make, future)
        self._act(self.session.events())
        while True:
            done, _ = await asyncio.wait((future,), timeout=self._request_timeout)
            if done:
                break
            # No reply in time: outcome unknown (SPEC §10.4); an idempotent request is
            # sent again, another one fails.
            self.session.timed_out(request)
            self._act(self.session.events())
        reply = future.result()
        if not isinstance(reply, reply_type):
            raise ServerError(ErrorCode.INTERNAL, f"unexpected reply {type(reply).__name__}")
        return reply

    # -- public API

    def _note_settings(self, item: Incoming) -> None:
        """This user's settings of a room changed on another device (room.settings)."""
        if isinstance(item, Event) and item.kind == "room.settings" and item.room in self.rooms:
            self.rooms[item.room] = replace(
                self.rooms[item.room],
                notify=item.notify or "all",
                archived=bool(item.archived),
                pinned=bool(item.pinned),
                unread=bool(item.unread),
            )

    async def recv(self) -> Incoming:
        """The next incoming item (see the module docstring for the order)."""
        if self._inbox.empty() and self._stopped.is_set():
            raise self._fatal or ClientClosed("client closed")
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)  # keep later callers informed too
            raise self._fatal or ClientClosed("client closed")
        if isinstance(item, ToDeviceMsg) and not self._stopped.is_set():
            self.session.taken(item.tid)  # acknowledged now that the caller has it
            self._act(self.session.events())
        self._note_settings(item)
        return item

    async def events(self) -> AsyncIterator[Incoming]:
        """Incoming items until the client is closed or the session ends."""
        while True:
            try:
                item = await self.recv()
            except ConfrereError:
                return
            yield item

    async def send(
        self,
        room: str,
        body: bytes,
        cid: str | None = None,
        att: Sequence[str] = (),
        *,
        edits: int | None = None,
        mentions: Sequence[str] = (),
    ) -> int:
        """Append ``body`` to ``room``; returns its seq once durably stored. Retries
        across reconnects with the same ``cid``, so it is stored exactly once. ``att``:
        ids of attachments this user uploaded to the room that ``body`` refers to (see
        :mod:`clients.python.attachments`); the server marks them referenced.
        ``edits``: the seq of this user's message that ``body`` replaces (an edit).
        ``mentions``: the members ``body`` mentions, told to the server (in clear) so
        that those who muted the room are still notified (SPEC.md §4.2)."""
        cid = cid or secrets.token_urlsafe(12)
        refs = tuple(att) or None
        # The session feeds the acked message through the ordering as our own item.
        named = tuple(mentions) or None
        ack = await self._call(lambda i: Send(i, room, cid, body, refs, edits, named), Ack)
        assert ack.seq is not None
        return ack.seq

    async def room_settings(
        self,
        room: str,
        *,
        notify: str | None = None,
        archived: bool | None = None,
        pinned: bool | None = None,
        unread: bool | None = None,
    ) -> RoomInfo:
        """Change this user's own settings of ``room`` (``room.settings``): its
        notifications ("all", "mentions", "none"), archived, pinned, marked unread.
        The user's other devices get an ``event{kind: room.settings}``."""
        ack = await self._call(
            lambda i: RoomSettings(i, room, notify, archived, pinned, unread), Ack
        )
        assert ack.room is not None
        self.rooms[room] = ack.room
        return ack.room

    async def delete_message(self, room: str, seq: int) -> int:
        """Delete the message at ``seq`` for everyone (``msg.delete``); returns the seq
        of the ``msg.deleted`` event."""
        ack = await self._call(lambda i: MsgDelete(i, room, seq), Ack)
        return ack.seq or 0

    async def sync(self, room: str, after: int = 0, limit: int = 100) -> Batch:
        """Read the stored timeline directly (the client also does this by itself)."""
        return await self._call(lambda i: Sync(i, room, after, limit), Batch)

    async def create_room(self, kind: str, members: list[str]) -> RoomInfo:
        """A new room, without name nor header: those are encrypted for the room once it
        exists (``EncryptedClient.create_room``)."""
        ack = await self._call(lambda i: RoomCreate(i, kind, tuple(members)), Ack)
        assert ack.room is not None
        self.rooms[ack.room.id] = ack.room
        # Everything in a room we just created is new to us, whatever arrives first (our
        # own first send may be acked before the room's opening event reaches us).
        self.state.last_seq.setdefault(ack.room.id, 0)
        return ack.room

    async def room(self, room: str) -> RoomInfo:
        ack = await self._call(lambda i: RoomGet(i, room), Ack)
        assert ack.room is not None
        return ack.room

    async def invite(
        self, room: str, users: Sequence[str] = (), *, emails: Sequence[str] = ()
    ) -> int:
        """Add ``users`` (ids) and invite ``emails`` (guests: practitioners who may have
        no account yet; they become members once they sign up and confirm the address)."""
        ack = await self._call(lambda i: RoomInvite(i, room, tuple(users), tuple(emails)), Ack)
        return ack.seq or 0

    async def uninvite(self, room: str, email: str) -> None:
        """Revoke the pending invitation of ``email`` (owner or admin)."""
        await self._call(lambda i: RoomUninvite(i, room, email), Ack)

    async def leave(self, room: str) -> int:
        ack = await self._call(lambda i: RoomLeave(i, room), Ack)
        return ack.seq or 0

    async def remove(self, room: str, user: str) -> int:
        ack = await self._call(lambda i: RoomRemove(i, room, user), Ack)
        return ack.seq or 0

    async def update_room(
        self,
        room: str,
        *,
        name: bytes | None = None,
        header: bytes | None = None,
        status: str | None = None,
    ) -> int:
        """``name`` and ``header``: encrypted (SPEC.md §11.4), see :class:`EncryptedClient`."""
        ack = await self._call(lambda i: RoomUpdate(i, room, name, header, status), Ack)
        return ack.seq or 0

    async def set_role(self, room: str, user: str, role: str) -> int:
        ack = await self._call(lambda i: RoomRole(i, room, user, role), Ack)
        return ack.seq or 0

    async def read(self, room: str, seq: int) -> int:
        ack = await self._call(lambda i: Read(i, room, seq), Ack)
        return ack.seq or 0

    async def typing(self, room: str, on: bool = True) -> None:
        await self._call(lambda i: Typing(i, room, on), Ack)

    async def to_device(self, user: str, device: str, body: bytes) -> int:
        ack = await self._call(lambda i: ToDevice(i, user, device, body), Ack)
        return ack.tid or 0

    async def upload_keys(
        self,
        bundle: bytes,
        *,
        identity: bytes | None = None,
        signature: bytes | None = None,
        reset: bool = False,
    ) -> None:
        """Publish this device's signed key bundle (``keys.upload``), with the user's
        identity record and its signature of the bundle (cross-signing, SPEC.md §11.1)."""
        await self._call(lambda i: KeysUpload(i, bundle, identity, signature, reset), Ack)

    async def sign_device(self, device: str, signature: bytes) -> None:
        """Store the user's identity signature of another of the user's devices
        (``keys.sign``; make it with ``protocol.crypto.identity.sign_device``)."""
        await self._call(lambda i: KeysSign(i, device, signature), Ack)

    async def query_keys(self, users: list[str]) -> tuple[bytes, ...]:
        """The key bundles of the devices of ``users`` that the caller may see
        (``keys.query``); unverified: check them with ``protocol.crypto.keys``."""
        return (await self.query_key_directory(users)).keys

    async def query_key_directory(self, users: list[str]) -> KeyDirectory:
        """As :meth:`query_keys`, with the users' identity records and the device
        signatures (unverified: check them with ``protocol.crypto.identity``)."""
        ack = await self._call(lambda i: KeysQuery(i, tuple(users)), Ack)
        return KeyDirectory(ack.keys or (), ack.identities or (), ack.signatures or ())

    async def report_decryption_failure(
        self, room: str, device: str, reason: str, session: bytes | None = None
    ) -> int:
        """Report a message of ``device`` this device could not decrypt (``keys.report``);
        returns how many such failures the server has counted."""
        ack = await self._call(lambda i: KeysReport(i, room, device, reason, session), Ack)
        return ack.seq or 0

    async def ping(self) -> None:
        await self._call(Ping, object)
