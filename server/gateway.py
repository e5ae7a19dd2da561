"""The WebSocket gateway at ``/v1/ws``: the thin I/O layer around
:class:`protocol.ServerSession`.

A :class:`Connection` is driven by its transport (:mod:`server.websocket`): each
message arrives as a call to :meth:`Connection.received`, and a request that must
wait for storage runs as a task of its own. Fan-out writes to the transport; a
connection whose backlog overflows (the peer stopped reading) is closed with 4008
and catches up by sync when it returns, so a stalled client never delays anyone else.

What the protocol decides (hello first, the verification gate, draining, the in-flight
cap, how much of the to-device queue to push) is the session's; this module owns the
timers, the tasks, the storage and hub calls, the rate buckets and the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from protocol import CloseCode, ServerSession, encode
from protocol.errors import ErrorCode
from protocol.frames import (
    Ack,
    ClientFrame,
    Error,
    Hello,
    Read,
    RoomCreate,
    RoomInvite,
    Send,
    ServerFrame,
    ToDeviceMsg,
    Welcome,
)
from protocol.server_session import REPLAY_PAGE
from storage import Store
from storage.errors import StorageError
from storage.types import AppendResult, ReadMark, ReadResult, ToDeviceItem

from .clock import now_ms
from .config import Settings
from .errors import ApiError, from_storage
from .handlers import HANDLERS, Services
from .handlers.messages import outgoing, send_ack
from .limits import Bucket, UserRates, check_room_limits
from .live import LiveConnections
from .metrics import METRICS
from .ratelimit import retry_after
from .sessions import authenticate_with_rooms, require_verified
from .wire import room_info

__all__ = ["Connection", "Transport"]

log = logging.getLogger("confrere.gateway")

_TOO_MANY = "too many connections for this account or device on this node"


class Transport(Protocol):
    """What a connection needs of its socket (:class:`server.websocket.WebSocketProtocol`)."""

    @property
    def backlog(self) -> int:
        """Frames waiting because the peer reads slower than we write."""

    def send(self, payload: bytes) -> None:
        """Write one binary message, or queue it behind the backlog."""

    def close(self, code: int, *, drop_backlog: bool = False) -> None:
        """Close with ``code`` once the backlog is written (or instead of it)."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def keepalive(self, now: float, interval_s: float) -> None:
        """Ping, or close if the ping of two rounds ago is unanswered."""


class Connection:
    """One client connection; a :class:`~server.hub.Peer` and a handler ``Caller``.

    Invariants: frames are handled in arrival order up to their first await (a
    ``send`` enqueues its commit before it, so a connection's sends get seqs in the
    order they came); nothing is read while a hello is being authenticated. The hot
    frames, ``send`` and ``read`` to an attached room, run without a task: queued to
    their committer as they arrive, answered when their batch committed."""

    __slots__ = (
        "_byte_rate",
        "_close_code",
        "_commits",
        "_connected",
        "_frame_rate",
        "_hello_task",
        "_hello_timer",
        "_leaving",
        "_live",
        "_pending",
        "_replay_lock",
        "_requests",
        "_user_rates",
        "_verify_lock",
        "device_id",
        "protocol",
        "rooms",
        "session_expires_at",
        "session_hash",
        "settings",
        "svc",
        "transport",
        "user_id",
    )

    def __init__(
        self,
        transport: Transport,
        svc: Services[Store],
        settings: Settings,
        live: LiveConnections,
        user_rates: UserRates,
    ) -> None:
        self.transport = transport
        self.svc = svc
        self.settings = settings
        self.protocol = ServerSession(settings.max_inflight_requests, settings.send_queue_frames)
        self.user_id = ""
        self.device_id = ""
        self.rooms: set[str] = set()
        self.session_hash = b""
        self.session_expires_at = 0
        self._live = live
        self._user_rates = user_rates
        self._close_code: CloseCode | None = None
        self._requests: set[asyncio.Task[None]] = set()
        # Sends and reads on the hot path: queued to a committer, not answered yet.
        self._commits: set[asyncio.Future[Any]] = set()
        self._connected = False
        self._hello_timer: asyncio.TimerHandle | None = None
        self._hello_task: asyncio.Task[None] | None = None
        self._pending: list[bytes | None] = []  # messages that came during the hello
        self._leaving: asyncio.Task[None] | None = None
        # Created on first use: most connections never need them.
        self._verify_lock: asyncio.Lock | None = None
        self._replay_lock: asyncio.Lock | None = None
        limits, now = settings.limits, time.monotonic()
        self._frame_rate = Bucket(limits.frames_per_s, limits.frames_burst, now)
        self._byte_rate = Bucket(limits.bytes_per_s, limits.bytes_burst, now)

    @property
    def verified(self) -> bool:
        """Attached to the user's rooms: the identity was found verified."""
        return self.protocol.verified

    # -- Peer

    def push(self, data: bytes) -> None:
        if self._close_code is not None:
            return
        if self.transport.backlog >= self.settings.send_queue_frames:
            log.warning("slow consumer: closing connection of device %s", self.device_id)
            self.close(CloseCode.SLOW_CONSUMER)
            return
        self.transport.send(data)

    def resync(self) -> None:
        # The client resumes by seq on reconnect, which is the one catch-up path we keep.
        self.close(CloseCode.SERVICE_RESTART)

    def close(self, code: CloseCode) -> None:
        if self._close_code is None:
            self._close_code = code
            METRICS.closes.inc(str(int(code)))
            self.transport.close(code, drop_backlog=code is CloseCode.SLOW_CONSUMER)

    def reply(self, frame: ServerFrame) -> None:
        METRICS.frames_out.inc(frame.T)
        if isinstance(frame, Error):
            METRICS.errors.inc(frame.code)
        self.push(encode(frame))

    def keepalive(self, now: float, interval_s: float) -> None:
        self.transport.keepalive(now, interval_s)

    async def drain(self, grace_s: float) -> None:
        """Graceful shutdown (:mod:`server.shutdown`): refuse new requests, let those in
        flight finish (a send queued for commit gets committed and acked), then close
        with 1012 once the backlog is written."""
        self.protocol.drain()
        if self._requests or self._commits:
            await asyncio.wait(self._in_flight(), timeout=grace_s)
        self.close(CloseCode.SERVICE_RESTART)

    # -- lifecycle (called by the transport)

    def opened(self) -> None:
        """The handshake succeeded: a hello must come within ``hello_timeout_s``."""
        METRICS.connections_opened.inc()
        self._live.add(self)
        loop = asyncio.get_running_loop()
        self._hello_timer = loop.call_later(self.settings.hello_timeout_s, self._hello_late)

    def _in_flight(self) -> list[asyncio.Future[Any]]:
        return [*self._requests, *self._commits]

    def lost(self) -> None:
        """The socket is closed: cancel what is in flight, leave the rooms."""
        if self._close_code is None:
            self._close_code = CloseCode.NORMAL
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        for task in self._requests:
            task.cancel()
        for future in self._commits:  # stops waiting for the answer, not the commit
            future.cancel()
        self._leaving = asyncio.create_task(self._leave(), name="ws-leave")

    async def _leave(self) -> None:
        try:
            if self._requests or self._commits:  # let cancellations run before leaving
                await asyncio.wait(self._in_flight())
            if self._connected:
                self._connected = False
                await self.svc.hub.disconnect(self)
        finally:
            self._live.remove(self)

    def received(self, data: bytes | None) -> None:
        """One message from the peer: ``bytes``, or ``None`` for a text message."""
        if self._close_code is not None:
            return
        if self._hello_task is not None:  # authenticating: read nothing more for now
            self._pending.append(data)
            self.transport.pause_reading()
            return
        protocol = self.protocol
        outcome = protocol.receive(data) if data is not None else protocol.receive_text()
        frame = outcome.frame
        METRICS.frames_in.inc("bad" if frame is None else frame.T)
        if outcome.reply is not None:
            self.reply(outcome.reply)
        if outcome.close is not None:
            self.close(outcome.close)
            return
        if frame is None:
            return
        wait = 0.0
        if not protocol.draining:
            now = time.monotonic()
            size = len(data) if data is not None else 0
            wait = self._frame_rate.take(now) or self._byte_rate.take(now, size)
            if wait:  # the time until this very frame is allowed, whole ms up
                wait = retry_after(wait)
        refusal = protocol.admit(frame, wait)
        if refusal is not None:
            self.reply(refusal)
        elif isinstance(frame, Hello):
            task = asyncio.create_task(self._hello(frame))
            self._hello_task = task
            self._requests.add(task)
            task.add_done_callback(self._hello_done)
        elif type(frame) is Send and (
            not self._requests and protocol.verified and frame.room in self.rooms
        ):
            self._send(frame)
        elif type(frame) is Read and protocol.verified and frame.room in self.rooms:
            # A read takes no seq: nothing to keep in order with the sends, and a read
            # in flight leaves the sends' hot path open.
            self._read(frame)
        else:
            # Tasks start in creation order and a send enqueues its commit before its
            # first real suspension, so one connection's sends get seqs in arrival order.
            task = asyncio.create_task(self._handle(frame))
            self._requests.add(task)
            task.add_done_callback(self._handled)

    def _send(self, frame: Send) -> None:
        """The hot path, without a task: a send to a room this verified connection is
        attached to (membership from memory, as ``require_member`` would decide) goes
        straight to the committer, and its answer is written when its batch has been
        committed and fanned out. Only while no request task of this connection is in
        flight: a send queued by such a task must get its seq first."""
        try:
            self._user_rates.sends.check(self.user_id, "messages per second")
        except ApiError as exc:
            self.reply(self._failure(frame, exc))
            self.protocol.done()
            return
        future = self.svc.committer.submit(outgoing(self, frame))
        self._commits.add(future)
        future.add_done_callback(lambda done: self._sent(frame, done))

    def _sent(self, frame: Send, future: asyncio.Future[AppendResult]) -> None:
        self._commits.discard(future)
        self.protocol.done()
        if future.cancelled():  # the connection is gone (the message is not)
            return
        reply: ServerFrame
        try:
            reply = send_ack(frame, future.result())
        except Exception as exc:
            reply = self._failure(frame, exc)
        self.reply(reply)

    def _read(self, frame: Read) -> None:
        """The other hot path, as ``on_read`` decides for an attached room: the read
        goes straight to the receipts' committer, acked once its batch committed."""
        future = self.svc.receipts.submit(ReadMark(frame.room, self.user_id, frame.seq))
        self._commits.add(future)
        future.add_done_callback(lambda done: self._marked(frame, done))

    def _marked(self, frame: Read, future: asyncio.Future[ReadResult]) -> None:
        self._commits.discard(future)
        self.protocol.done()
        if future.cancelled():  # the connection is gone (the marker is not)
            return
        reply: ServerFrame
        try:
            reply = Ack(frame.id, seq=future.result().upto)
        except Exception as exc:
            reply = self._failure(frame, exc)
        self.reply(reply)

    def _hello_late(self) -> None:
        self._hello_timer = None
        if self._hello_task is not None:
            return  # being authenticated: the storage is slow, not the client
        code = self.protocol.hello_deadline_passed()
        if code is not None:
            self.reply(Error(ErrorCode.UNAUTHENTICATED, "no valid hello in time"))
            self.close(code)

    def _hello_done(self, task: asyncio.Task[None]) -> None:
        self._requests.discard(task)
        self._hello_task = None
        if self._close_code is not None:
            return
        if self._hello_timer is not None:  # authenticated
            self._hello_timer.cancel()
            self._hello_timer = None
        pending, self._pending = self._pending, []
        self.transport.resume_reading()
        for data in pending:
            self.received(data)

    # -- frames

    async def _hello(self, f: Hello) -> None:
        try:
            session, user, room_ids = await authenticate_with_rooms(self.svc.store, f.token)
            if session.device_id != f.device:
                raise ApiError(ErrorCode.UNAUTHENTICATED, "this token belongs to another device")
            per_user, per_device = self._live.count(user.id, session.device_id)
            limits = self.settings.limits
            if per_user >= limits.connections_per_user or (
                per_device >= limits.connections_per_device
            ):
                self.reply(Error(ErrorCode.RATE_LIMITED, _TOO_MANY, f.id, 5.0))
                self.close(self.protocol.refuse(ErrorCode.RATE_LIMITED))
                return
            self.protocol.accept()
            self.user_id, self.device_id = user.id, session.device_id
            self.session_hash, self.session_expires_at = session.token_hash, session.expires_at
            self._live.authenticated(self)
            # Written in a batch with other hellos' (server.last_seen): nothing to await.
            self.svc.last_seen.note(self.device_id, now_ms())
            if user.verified:
                await self._join(f.id, room_ids)
            else:
                # Unverified: authenticated, but nothing of the messaging flows yet.
                self.reply(Welcome(f.id, user.id, self.device_id, False, ()))
        except ApiError as exc:
            self.reply(Error(exc.code, exc.message, f.id))
            self.close(self.protocol.refuse())
        except Exception as exc:  # storage or broker trouble: the client retries later
            log.warning("hello failed: %s", exc)
            self.reply(Error(ErrorCode.UNAVAILABLE, "service unavailable, retry", f.id, 1.0))
            self.close(self.protocol.refuse(ErrorCode.UNAVAILABLE))

    async def _join(self, re: int, room_ids: list[str] | None = None) -> None:
        """Attach a verified connection to its rooms, welcome it, replay its to-device
        queue. ``re`` is the hello's id, or 0 when verification came mid-connection;
        ``room_ids``: the user's rooms as the hello read them (else read here)."""
        store = self.svc.store
        if room_ids is None:
            room_ids = [room.id for room, _ in await store.rooms_of(self.user_id)]
        self._connected = True  # from here on, serve()'s cleanup disconnects us from the hub
        await self.svc.hub.connect(self, room_ids)
        # A membership change committed between that read and our subscriptions was
        # published where we did not listen yet: read again, now that we listen, and
        # correct. From here on, changes arrive live; earlier ones are in the store.
        # The first page of the to-device queue comes with that read.
        rooms, queued = await store.rooms_and_to_device(self.user_id, self.device_id, REPLAY_PAGE)
        member_of = {room.id for room, _ in rooms}
        for room_id in self.rooms - member_of:
            await self.svc.hub.detach(self, room_id)
        for room_id in member_of - self.rooms:
            await self.svc.hub.attach(self, room_id)
        for room, _ in rooms:  # where a catch-up from the database would start
            self.svc.hub.note_seen(room.id, room.last_seq)
        self.protocol.joined()
        infos = tuple(room_info(room, membership) for room, membership in rooms)
        self.reply(Welcome(re, self.user_id, self.device_id, True, infos))
        await self._replay_to_device(queued)

    async def _replay_to_device(self, first: list[ToDeviceItem] | None = None) -> None:
        """Push queued to-device messages, as much as the session's replay window
        allows: a large backlog must not get the device closed as a slow consumer. The
        rest follows as the device acknowledges what it got (see ``_handle``). ``first``:
        the queue's first ``REPLAY_PAGE`` items, read already (by the welcome)."""
        if self._replay_lock is None:
            self._replay_lock = asyncio.Lock()
        protocol = self.protocol
        async with self._replay_lock:
            space = protocol.replay_window - self.transport.backlog
            while limit := protocol.replay_limit(space):
                after = protocol.replay_after
                assert after is not None
                if first is not None and after == 0:  # its first ``limit`` are this page
                    page, first = first[:limit], None
                else:
                    page = await self.svc.store.to_device_pending(self.device_id, after, limit)
                for item in page:
                    self.reply(
                        ToDeviceMsg(
                            item.tid, item.sender_user, item.sender_device, item.ts, item.body
                        )
                    )
                space -= len(page)
                protocol.replayed(len(page), page[-1].tid if page else after, limit)

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._requests.discard(task)
        self.protocol.done()

    async def _handle(self, frame: ClientFrame) -> None:
        reply: ServerFrame
        try:
            if self.protocol.gated(frame):
                await self._require_verified()
            kind = type(frame)
            if kind is Send:
                self._user_rates.sends.check(self.user_id, "messages per second")
            elif kind is RoomCreate or kind is RoomInvite:
                await check_room_limits(
                    self.svc.store, self.settings.limits, self.user_id, self.rooms, frame
                )
            reply = await HANDLERS[kind](self.svc, self, frame)
            if self.protocol.replay_due(frame):
                await self._replay_to_device()  # room in the queue again: send more
        except Exception as exc:
            reply = self._failure(frame, exc)
        self.reply(reply)

    @staticmethod
    def _failure(frame: ClientFrame, exc: Exception) -> Error:
        """The error frame answering a request whose handling raised ``exc``."""
        if isinstance(exc, ApiError):
            return Error(exc.code, exc.message, frame.id, exc.retry_after)
        if isinstance(exc, StorageError):
            log.warning("storage error on %s: %s: %s", frame.T, type(exc).__name__, exc)
            answer = from_storage(exc)
            return Error(answer.code, answer.message, frame.id, answer.retry_after)
        log.error("handler for %s failed", frame.T, exc_info=exc)
        return Error(ErrorCode.INTERNAL, "internal error", frame.id)

    async def _require_verified(self) -> None:
        """Unverified callers are re-checked on each request, so that verification (by
        any node or the admin CLI) takes effect without reconnecting: the connection
        then gets a second welcome (``re`` 0) with its rooms."""
        if self._verify_lock is None:
            self._verify_lock = asyncio.Lock()
        async with self._verify_lock:
            if self.verified:
                return
            require_verified(await self.svc.store.user_by_id(self.user_id))
            await self._join(0)
