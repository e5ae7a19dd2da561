"""Client side of one device's connection, across reconnects, as a sans-I/O state machine
(SPEC.md §10): per-room order by seq, catch-up by ``sync``, requests retried by their
idempotence, to-device acknowledgements, and what to do when the connection ends.

States (:class:`ClientStatus`) and the only transitions (``_TRANSITIONS``)::

    IDLE ─connect()─► CONNECTING ─opened()─► AWAIT_WELCOME ─welcome{re: hello}─► OPEN
                          ▲                      │                              │
                          │ connect()            │ closed(code)                 │ closed(code)
                          │                      ▼                              │
                       BACKOFF ◄──── the close policy says reconnect ◄──────────┘
                                                 │ it says stop, or the hello is refused
    any state ──stop()──────────────────────────►▼
                                              STOPPED   (final)

The I/O layer calls ``connect()`` and dials, sends a hello with the id ``opened()``
returns, feeds every decoded server frame to ``receive()``, and after each call acts on
``events()``, in order: :class:`Transmit` (send its ``frame``), :class:`Deliver`
(hand to the application; tell ``taken()`` when it takes a to-device message),
:class:`Replied` / :class:`Failed` (settle an application request), :class:`Welcomed`,
:class:`HelloRefused`, :class:`Stopped`, and timers: :class:`RetryLater` (then
``retry()``), :class:`CatchUpLater` (then ``gap_expired()``), :class:`Reconnect` (then
``connect()`` and dial). It reports the end of a connection, or of a failed dial, with
``closed(code)``, and a request without a reply after its timeout with ``timed_out()``.
The session reads neither a clock nor a socket. Frames may be decoded by
:mod:`protocol.codec` or by hand: ``live()`` and ``welcomed()`` take what a frame says,
for a client whose hot path cannot afford a frame object per delivery (the load
generator).

Invariants:
- ``state.last_seq[room]``, once set, only grows, by one: an item is delivered once, when its seq
  is ``last_seq + 1``; items further ahead are held until the gap fills.
- An application request is in exactly one place: queued (sent at the next OPEN), in
  flight (keyed by the id of its current attempt), waiting for its ``retry``, or settled
  by exactly one ``Replied`` or ``Failed``. Ids never repeat within a session.
- Nothing but the hello is transmitted outside OPEN.
- When a connection ends, idempotent requests in flight (``IDEMPOTENT``) are queued
  again with new ids (a ``send`` keeps its cid); the others fail, outcome unknown.
- At most one catch-up ``sync`` per room is pending; it reads from the current
  ``last_seq`` at each page.
- A to-device ``tid`` is handed to the application once per session; it is acknowledged
  (``to_device.ack``) only after the application took it (``taken``), and stays in
  ``state.to_device_unacked`` until the server confirms the acknowledgement.
"""

from __future__ import annotations

import enum
import random as _random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ErrorCode, LocalProtocolError
from .frames import (
    Ack,
    Batch,
    ClientFrame,
    Error,
    Event,
    Msg,
    Send,
    ServerFrame,
    Sync,
    ToDeviceAck,
    ToDeviceMsg,
    Welcome,
)
from .limits import MAX_SYNC_LIMIT
from .reconnect import FINAL_HELLO_ERRORS, Backoff, on_close

__all__ = [
    "IDEMPOTENT",
    "RETRYABLE",
    "CatchUpLater",
    "ClientSession",
    "ClientStatus",
    "Deliver",
    "DeviceState",
    "Failed",
    "HelloRefused",
    "Item",
    "Purpose",
    "Reconnect",
    "Replied",
    "Request",
    "RetryLater",
    "SessionEvent",
    "Stopped",
    "Transmit",
    "Welcomed",
]

Item = Msg | Event  # a timeline item (seq >= 1)

# Requests a client may send again when their outcome is unknown (SPEC §10.4): the
# server gives the same result (``send`` by its cid) or the repeat is harmless.
IDEMPOTENT = frozenset(
    {
        "send",
        "sync",
        "read",
        "room.get",
        "to_device.ack",
        "keys.upload",
        "keys.sign",
        "keys.query",
        "keys.report",
    }
)
# Error codes after which an idempotent request is sent again, after ``retry_after``.
RETRYABLE = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED})
DEFAULT_RETRY_AFTER = 0.5


class ClientStatus(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"  # dialing: WebSocket handshake
    AWAIT_WELCOME = "await_welcome"  # hello sent
    OPEN = "open"  # welcomed: requests flow
    BACKOFF = "backoff"  # connection ended; dial again after the Reconnect delay
    STOPPED = "stopped"  # for good: closed by the application or refused by the server


_S = ClientStatus
_TRANSITIONS: dict[ClientStatus, frozenset[ClientStatus]] = {
    _S.IDLE: frozenset({_S.CONNECTING, _S.STOPPED}),
    _S.CONNECTING: frozenset({_S.AWAIT_WELCOME, _S.BACKOFF, _S.STOPPED}),
    _S.AWAIT_WELCOME: frozenset({_S.OPEN, _S.BACKOFF, _S.STOPPED}),
    _S.OPEN: frozenset({_S.BACKOFF, _S.STOPPED}),
    _S.BACKOFF: frozenset({_S.CONNECTING, _S.STOPPED}),
    _S.STOPPED: frozenset(),
}


@dataclass
class DeviceState:
    """What a device must remember to resume without loss or duplicates (SPEC §10.1);
    clients persist it across restarts."""

    last_seq: dict[str, int] = field(default_factory=dict)
    # To-device ids handed to the application but not yet acknowledged to the server.
    to_device_unacked: set[int] = field(default_factory=set)


class Purpose(enum.Enum):
    APP = "app"  # made by the application: settled by Replied or Failed
    CATCH_UP = "catch_up"  # the session's own sync of a room
    TO_DEVICE_ACK = "to_device_ack"  # the session's acknowledgement of to-device ids


class Request:
    """One request across its attempts; ``make(id)`` builds the frame of an attempt."""

    __slots__ = ("attempts", "frame", "id", "make", "purpose", "tag")

    def __init__(
        self, make: Callable[[int], ClientFrame], tag: Any = None, purpose: Purpose = Purpose.APP
    ) -> None:
        self.make = make
        self.tag = tag  # the I/O layer's own (a future to settle, a timestamp, ...)
        self.purpose = purpose
        self.id = 0  # of the current attempt; 0 before the first
        self.frame: ClientFrame | None = None  # of the current attempt
        self.attempts = 0

    @property
    def idempotent(self) -> bool:
        return self.frame is not None and self.frame.T in IDEMPOTENT

    def __repr__(self) -> str:
        kind = self.frame.T if self.frame is not None else "?"
        return f"<Request {kind} id={self.id} attempts={self.attempts}>"


# -- events: what the I/O layer does next


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``frame`` now: the attempt of ``request`` with a new id."""

    request: Request
    frame: ClientFrame


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand to the application: timeline items in seq order, ephemeral events, new
    to-device messages (tell :meth:`ClientSession.taken` once the application has one)."""

    item: Msg | Event | ToDeviceMsg


@dataclass(frozen=True, slots=True)
class Replied:
    request: Request
    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class Failed:
    """A request failed for good: refused by ``error``, or (``error`` None) cut off by
    the end of the connection or of the session, outcome unknown. The session's own
    requests fail here too (worth a log line)."""

    request: Request
    error: Error | None


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Call :meth:`ClientSession.retry` with ``request`` after ``delay`` seconds."""

    request: Request
    delay: float


@dataclass(frozen=True, slots=True)
class CatchUpLater:
    """A gap opened in ``room``: call :meth:`ClientSession.gap_expired` after ``delay``
    (a late live frame often fills it by itself)."""

    room: str
    delay: float


@dataclass(frozen=True, slots=True)
class Welcomed:
    """A welcome was taken: the hello's (``opened``: the session is OPEN now), or the
    one with ``re`` 0 that says the identity was verified since. The I/O layer reads
    the rooms of the welcome it just passed."""

    opened: bool


@dataclass(frozen=True, slots=True)
class HelloRefused:
    """The hello got ``error``; a close follows (the session has stopped if final)."""

    error: Error


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The connection ended and the policy says dial again: call
    :meth:`ClientSession.connect` after ``delay`` seconds (or sooner, when the I/O
    layer knows the network is back)."""

    delay: float
    close: int | None


@dataclass(frozen=True, slots=True)
class Stopped:
    """The session ended for good: the close code or the hello's error that ended it
    (both None when the application stopped it)."""

    close: int | None = None
    error: Error | None = None


SessionEvent = (
    Transmit
    | Deliver
    | Replied
    | Failed
    | RetryLater
    | CatchUpLater
    | Welcomed
    | HelloRefused
    | Reconnect
    | Stopped
)


class ClientSession:
    """See the module docstring. ``from_start``: deliver a room first seen from seq 1
    (else from what follows the welcome, or the first live item). ``gap_grace``: seconds
    a gap may stay open before a catch-up sync; None never syncs a live gap (only what
    a welcome says is behind: the load generator counts a live gap as a loss).
    ``items``: False for a client that keeps only seqs (its own acked messages fill
    their positions without being built and delivered)."""

    __slots__ = (
        "_acks",
        "_attempt",
        "_backoff",
        "_catching_up",
        "_device",
        "_gap_timers",
        "_held",
        "_hello_id",
        "_in_flight",
        "_next_id",
        "_out",
        "_queue",
        "_random",
        "_td_waiting",
        "from_start",
        "gap_grace",
        "items",
        "state",
        "status",
        "user",
        "verified",
    )

    def __init__(
        self,
        state: DeviceState | None = None,
        *,
        device: str = "",
        from_start: bool = True,
        gap_grace: float | None = 0.2,
        items: bool = True,
        backoff: Backoff | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.state = state if state is not None else DeviceState()
        self.status = ClientStatus.IDLE
        self.from_start = from_start
        self.gap_grace = gap_grace
        self.items = items
        self.user = ""  # from the welcome
        self.verified = False
        self._device = device
        self._backoff = backoff or Backoff()
        self._random = random
        self._attempt = 0  # dials since the last welcome
        self._next_id = 1
        self._hello_id = 0
        self._out: list[SessionEvent] = []
        self._queue: list[Request] = []  # waiting for OPEN, in order
        self._in_flight: dict[int, Request] = {}
        self._held: dict[str, dict[int, Item | None]] = {}  # room -> seq -> item beyond a gap
        self._catching_up: dict[str, Request] = {}
        self._gap_timers: set[str] = set()
        self._td_waiting: set[int] = set()  # handed to the application, not taken yet
        self._acks = 0  # to_device.ack requests not confirmed yet

    def events(self) -> list[SessionEvent]:
        """What the I/O layer does next, in order, since the last call (see the events)."""
        out = self._out
        self._out = []
        return out

    # -- connection lifecycle

    def connect(self) -> None:
        """The I/O layer starts dialing (first time, or when a Reconnect delay is over)."""
        if self.status is ClientStatus.BACKOFF or self.status is ClientStatus.IDLE:
            self._move(ClientStatus.CONNECTING)
        else:
            raise LocalProtocolError(f"connect() in state {self.status.value}")

    def opened(self) -> int:
        """The WebSocket is open: returns the id for the hello the I/O layer sends now."""
        self._move(ClientStatus.AWAIT_WELCOME)
        self._hello_id = self._take_id()
        return self._hello_id

    def closed(self, code: int | None) -> None:
        """The connection ended (or the dial failed: ``code`` None, as a lost network)."""
        if self.status is ClientStatus.STOPPED or self.status is ClientStatus.IDLE:
            return
        if self.status is ClientStatus.BACKOFF:
            raise LocalProtocolError("closed() twice for one connection")
        requeued: list[Request] = []
        for request in self._in_flight.values():
            if request.idempotent:
                requeued.append(request)
            elif request.purpose is Purpose.APP:
                self._out.append(Failed(request, None))
        self._in_flight.clear()
        self._queue[:0] = requeued
        policy = on_close(code)
        if not policy.reconnect:
            self._stop(Stopped(close=code))
            return
        self._move(ClientStatus.BACKOFF)
        delay = self._backoff.delay(self._attempt, self._random)
        self._attempt += 1
        self._out.append(Reconnect(delay, code))

    def stop(self) -> None:
        """The application closes: everything pending fails, nothing reconnects."""
        if self.status is not ClientStatus.STOPPED:
            self._stop(Stopped())

    @property
    def acking(self) -> bool:
        """Acknowledgements of to-device messages are still unconfirmed."""
        return self._acks > 0

    @property
    def catching_up(self) -> int:
        """Rooms being synced."""
        return len(self._catching_up)

    # -- the application's requests

    def request(self, make: Callable[[int], ClientFrame], tag: Any = None) -> Request:
        """Send ``make(id)`` now if OPEN, else at the next OPEN; its reply comes as
        ``Replied``/``Failed`` with this request. Refused once the session stopped."""
        if self.status is ClientStatus.STOPPED:
            raise LocalProtocolError("request() on a stopped session")
        request = Request(make, tag)
        self._submit(request)
        return request

    def retry(self, request: Request) -> None:
        """A RetryLater delay is over."""
        if self.status is not ClientStatus.STOPPED:
            self._submit(request)

    def timed_out(self, request: Request) -> None:
        """No reply came in time: outcome unknown. An idempotent request is sent again
        with a new id, another one fails; a request not in flight is left alone."""
        if self._in_flight.get(request.id) is request:
            del self._in_flight[request.id]
            if request.idempotent:
                self._submit(request)
            elif request.purpose is Purpose.APP:
                self._out.append(Failed(request, None))

    def taken(self, tid: int) -> None:
        """The application took to-device message ``tid``: acknowledge it."""
        self._td_waiting.discard(tid)
        self.state.to_device_unacked.add(tid)
        self._acknowledge(tid)

    def gap_expired(self, room: str) -> None:
        """A CatchUpLater delay is over: sync the room if its gap is still open."""
        self._gap_timers.discard(room)
        if room in self._held and self.status is not ClientStatus.STOPPED:
            self._catch_up(room)

    # -- incoming

    def receive(self, frame: ServerFrame) -> None:
        """One decoded server frame. A frame that could not be decoded but whose ``re``
        could be read: pass ``Error(BAD_FRAME, why, re)``, which fails that request."""
        out = self._out
        if isinstance(frame, Msg):
            self._timeline(frame.room, frame.seq, frame)
        elif isinstance(frame, Event):
            if frame.seq > 0:
                self._timeline(frame.room, frame.seq, frame)
            else:
                out.append(Deliver(frame))  # ephemeral: as it comes
        elif isinstance(frame, ToDeviceMsg):
            self._to_device(frame)
        elif isinstance(frame, Welcome):
            self.welcomed(
                frame.re, frame.user, frame.verified, [(r.id, r.last_seq) for r in frame.rooms]
            )
        elif frame.re is not None:
            self._reply(frame.re, frame)

    def live(self, room: str, seq: int, item: Item | None) -> list[Item | None] | None:
        """A timeline item (``item`` may be None for a client that keeps only seqs):
        None if it was delivered or held already, else the items now deliverable in seq
        order (empty: held beyond a gap)."""
        last_seq = self.state.last_seq
        last = last_seq.get(room)
        if last is None:
            last = last_seq[room] = 0 if self.from_start else seq - 1
        held = self._held.get(room)
        if seq != last + 1:
            if seq <= last:
                return None
            if held is None:
                held = self._held[room] = {}
            elif seq in held:
                return None
            held[seq] = item
            return []
        last_seq[room] = seq
        if held is None:
            return [item]
        out = [item]
        while (nxt := held.pop(seq + 1, _NONE)) is not _NONE:
            seq += 1
            out.append(nxt)
        last_seq[room] = seq
        if not held:
            del self._held[room]
        return out

    def fill(self, room: str, seq: int) -> bool:
        """:meth:`live` for a client that keeps only seqs (``items=False``): whether the
        position was new. The common case, the next seq with nothing held, costs no
        allocation: the load generator calls this once per delivery."""
        last_seq = self.state.last_seq
        last = last_seq.get(room)
        if last is not None and seq == last + 1 and room not in self._held:
            last_seq[room] = seq
            return True
        return self.live(room, seq, None) is not None

    def held(self, room: str) -> dict[int, Item | None]:
        """Items of ``room`` waiting beyond a gap (read-only view for reports)."""
        return self._held.get(room, _EMPTY)

    def welcomed(
        self, re: int, user: str, verified: bool, rooms: Iterable[tuple[str, int]]
    ) -> None:
        """A welcome: the hello's (``re`` its id) opens the session; one with ``re`` 0 on
        an open session says the identity was verified since. ``rooms``: (id, last_seq)."""
        if self.status is ClientStatus.AWAIT_WELCOME and re == self._hello_id:
            self._move(ClientStatus.OPEN)
            self._attempt = 0
        elif not (self.status is ClientStatus.OPEN and re == 0):
            return  # a stray welcome: nothing to do
        self.user, self.verified = user, verified
        last_seq = self.state.last_seq
        for room, top in rooms:
            last = last_seq.get(room)
            if last is None:
                last = last_seq[room] = 0 if self.from_start else top
            if top > last:
                self._catch_up(room)
        if re:
            queued, self._queue = self._queue, []
            for request in queued:
                self._transmit(request)
        self._out.append(Welcomed(opened=re != 0))

    # -- internals

    def _move(self, to: ClientStatus) -> None:
        if to not in _TRANSITIONS[self.status]:
            raise LocalProtocolError(f"client session: {self.status.value} -> {to.value}")
        self.status = to

    def _take_id(self) -> int:
        rid = self._next_id
        self._next_id = rid + 1
        return rid

    def _submit(self, request: Request) -> None:
        if self.status is ClientStatus.OPEN:
            self._transmit(request)
        else:
            self._queue.append(request)

    def _transmit(self, request: Request) -> None:
        rid = self._take_id()
        frame = request.make(rid)
        request.id, request.frame = rid, frame
        request.attempts += 1
        self._in_flight[rid] = request
        self._out.append(Transmit(request, frame))

    def _stop(self, why: Stopped) -> None:
        self._move(ClientStatus.STOPPED)
        for request in (*self._in_flight.values(), *self._queue):
            if request.purpose is Purpose.APP:
                self._out.append(Failed(request, None))
        self._in_flight.clear()
        self._queue.clear()
        self._acks = 0
        self._out.append(why)

    def _timeline(self, room: str, seq: int, item: Item) -> None:
        items = self.live(room, seq, item)
        if items:
            self._out.extend(Deliver(i) for i in items if i is not None)
        elif items is not None:  # held beyond a gap
            self._gap_opened(room)

    def _gap_opened(self, room: str) -> None:
        grace = self.gap_grace
        if grace is None or room in self._catching_up or room in self._gap_timers:
            return
        self._gap_timers.add(room)
        self._out.append(CatchUpLater(room, grace))

    def _catch_up(self, room: str) -> None:
        if room in self._catching_up:
            return
        last_seq = self.state.last_seq

        def page(rid: int) -> Sync:
            return Sync(rid, room, last_seq.get(room, 0), MAX_SYNC_LIMIT)

        request = Request(page, room, Purpose.CATCH_UP)
        self._catching_up[room] = request
        self._submit(request)

    def _to_device(self, msg: ToDeviceMsg) -> None:
        tid = msg.tid
        if tid in self.state.to_device_unacked:
            self._acknowledge(tid)  # the application has it; our ack was lost
        elif tid not in self._td_waiting:
            self._td_waiting.add(tid)
            self._out.append(Deliver(msg))

    def _acknowledge(self, tid: int) -> None:
        self._acks += 1
        tids = (tid,)
        self._submit(Request(lambda rid: ToDeviceAck(rid, tids), tids, Purpose.TO_DEVICE_ACK))

    def _reply(self, re: int, frame: ServerFrame) -> None:
        request = self._in_flight.pop(re, None)
        if request is None:
            if (
                isinstance(frame, Error)
                and self.status is ClientStatus.AWAIT_WELCOME
                and re == self._hello_id
            ):
                self._out.append(HelloRefused(frame))
                if frame.code in FINAL_HELLO_ERRORS:
                    self._stop(Stopped(error=frame))
            return  # a late reply to an attempt given up on
        if isinstance(frame, Error):
            self._refused(request, frame)
        elif request.purpose is Purpose.APP:
            if isinstance(frame, Ack) and isinstance(request.frame, Send) and frame.seq:
                self._own(request.frame, frame)
            self._out.append(Replied(request, frame))
        elif request.purpose is Purpose.CATCH_UP:
            if isinstance(frame, Batch):
                self._synced(request, frame)
        else:
            self._acks -= 1
            self.state.to_device_unacked.difference_update(request.tag)

    def _own(self, send: Send, ack: Ack) -> None:
        # The server does not echo a device's own message: its ack stands for it (§6.4).
        assert ack.seq is not None
        if not self.items:
            self.live(send.room, ack.seq, None)
            return
        own = Msg(
            send.room,
            ack.seq,
            self.user,
            self._device,
            send.cid,
            ack.ts or 0,
            send.body,
            send.edits,
        )
        self._timeline(send.room, ack.seq, own)

    def _refused(self, request: Request, error: Error) -> None:
        if error.code in RETRYABLE and request.idempotent:
            delay = error.retry_after or DEFAULT_RETRY_AFTER
            self._out.append(RetryLater(request, delay))
            return
        if request.purpose is Purpose.CATCH_UP:
            room = request.tag
            del self._catching_up[room]
            self._held.pop(room, None)  # e.g. forbidden after a removal: stop following
        elif request.purpose is Purpose.TO_DEVICE_ACK:
            self._acks -= 1
        self._out.append(Failed(request, error))

    def _synced(self, request: Request, batch: Batch) -> None:
        room = request.tag
        for item in batch.items:
            self._timeline(room, item.seq, item)
        if batch.more:
            self._transmit(request)  # next page, from the new last_seq
            return
        del self._catching_up[room]
        if room in self._held:  # a gap that opened after the sync's read
            self._gap_opened(room)


_NONE: Any = object()
_EMPTY: dict[int, Any] = {}
