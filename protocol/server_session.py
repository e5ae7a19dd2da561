"""Server side of one connection as a sans-I/O state machine (SPEC.md §2).

States and transitions (the only place they are decided)::

    AWAIT_HELLO --hello--> AWAIT_HELLO, hello pending (being authenticated)
    AWAIT_HELLO --accept()--> OPEN, gated (authenticated, identity not verified yet)
    OPEN, gated --joined()--> OPEN, verified (attached to rooms: the messaging flows)
    AWAIT_HELLO or OPEN --refuse(code)--> CLOSED
    AWAIT_HELLO --deadline--> CLOSED
    any --close()--> CLOSED
    AWAIT_HELLO or OPEN --drain()--> the same, draining (node shutting down)

Invariants:
- Before OPEN, the only frame handed to the application is ``Hello``; any other frame
  is answered with ``unauthenticated`` and never reaches the application. One hello
  per connection.
- A gated connection gets no room traffic; each of its requests but ``ping`` must find
  the identity verified first (:meth:`ServerSession.gated`), which ends the gate.
- At most ``max_inflight`` requests are handled at once; while draining none is
  admitted (``unavailable``, retry after 1 s).
- Queued to-device messages are pushed after the verified welcome, by pages, never
  more than ``replay_window`` frames in the send queue at once; the rest follows as the
  device acknowledges (:meth:`ServerSession.replay_limit`).
- A connection that has sent ``MAX_BAD_FRAMES`` bad frames is closed with 4400.
- After CLOSED, nothing is handed to the application.

The I/O layer feeds bytes to :meth:`ServerSession.receive` and acts on the returned
:class:`Outcome`: send ``reply`` if set, close with ``close`` if set, and if ``frame``
is set, asks :meth:`admit` whether to handle it now (then :meth:`done` when it is). It
calls :meth:`accept` once it has authenticated a hello, :meth:`joined` once the
connection is attached to the user's rooms.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .codec import decode_client_frame
from .errors import BadFrame, CloseCode, ErrorCode, LocalProtocolError
from .frames import ClientFrame, Error, Hello, Ping, ToDeviceAck
from .limits import MAX_BAD_FRAMES

__all__ = ["REPLAY_PAGE", "Outcome", "ServerSession", "State"]

REPLAY_PAGE = 256  # to-device messages read from storage at once
_TOO_FAST = "too many frames or bytes per second on this connection"

# How a refused or failed hello closes the connection (SPEC §2 item 2).
_HELLO_CLOSES = {
    ErrorCode.UNAUTHENTICATED: CloseCode.UNAUTHENTICATED,
    ErrorCode.UNAVAILABLE: CloseCode.TRY_AGAIN_LATER,
    ErrorCode.RATE_LIMITED: CloseCode.TRY_AGAIN_LATER,
}


class State(enum.Enum):
    AWAIT_HELLO = "await_hello"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with one received message."""

    frame: ClientFrame | None = None
    reply: Error | None = None
    close: CloseCode | None = None


class ServerSession:
    __slots__ = (
        "_replay_after",
        "bad_frames",
        "draining",
        "hello_pending",
        "in_flight",
        "max_inflight",
        "replay_window",
        "state",
        "verified",
    )

    def __init__(self, max_inflight: int = 64, send_queue: int = 2048) -> None:
        self.state = State.AWAIT_HELLO
        self.bad_frames = 0
        self.hello_pending = False
        self.verified = False
        self.draining = False
        self.in_flight = 0
        self.max_inflight = max_inflight
        self.replay_window = send_queue // 2
        self._replay_after: int | None = None  # to-device replay cursor; None: none due

    def receive(self, data: bytes) -> Outcome:
        if self.state is State.CLOSED:
            return Outcome()
        try:
            frame = decode_client_frame(data)
        except BadFrame as exc:
            return self._strike(Error(exc.code, exc.message, exc.re))
        if self.state is State.AWAIT_HELLO:
            if not isinstance(frame, Hello):
                return self._strike(Error(ErrorCode.UNAUTHENTICATED, "send hello first", frame.id))
            if self.hello_pending:
                return self._strike(Error(ErrorCode.CONFLICT, "hello already sent", frame.id))
            self.hello_pending = True
            return Outcome(frame=frame)
        if isinstance(frame, Hello):
            return self._strike(Error(ErrorCode.CONFLICT, "already authenticated", frame.id))
        return Outcome(frame=frame)

    def receive_text(self) -> Outcome:
        """A text message: the protocol is binary only."""
        if self.state is State.CLOSED:
            return Outcome()
        return self._strike(
            Error(ErrorCode.BAD_FRAME, "text frames are not accepted: send binary msgpack")
        )

    def admit(self, frame: ClientFrame, wait: float = 0.0) -> Error | None:
        """Whether a frame that :meth:`receive` passed is handled now; if not, the error
        to answer it with. ``wait``: seconds the connection's rate limits ask for (0 if
        none). An admitted request other than the hello counts as in flight until
        :meth:`done`. Not a bad frame either way (SPEC §2 item 6, 9)."""
        if self.draining:
            return Error(ErrorCode.UNAVAILABLE, "node shutting down", frame.id, 1.0)
        if wait:
            return Error(ErrorCode.RATE_LIMITED, _TOO_FAST, frame.id, round(wait, 3))
        if isinstance(frame, Hello):
            return None
        if self.in_flight >= self.max_inflight:
            return Error(ErrorCode.RATE_LIMITED, "too many requests in flight", frame.id, 1.0)
        self.in_flight += 1
        return None

    def done(self) -> None:
        """An admitted request has been answered (or abandoned)."""
        self.in_flight -= 1

    def accept(self) -> None:
        """The hello was authenticated: requests may flow, gated until :meth:`joined`."""
        if self.state is not State.AWAIT_HELLO or not self.hello_pending:
            raise LocalProtocolError(f"accept() in state {self.state.value}")
        self.state = State.OPEN

    def gated(self, frame: ClientFrame) -> bool:
        """The identity must be found verified before ``frame`` is handled (§2 item 4)."""
        return not self.verified and not isinstance(frame, Ping)

    def joined(self) -> None:
        """The connection is attached to its user's rooms and welcomed as verified: the
        device's queued to-device messages are due, from the start."""
        if self.state is not State.OPEN:
            raise LocalProtocolError(f"joined() in state {self.state.value}")
        self.verified = True
        self._replay_after = 0

    def refuse(self, code: ErrorCode = ErrorCode.UNAUTHENTICATED) -> CloseCode:
        """The hello was answered with error ``code`` (refused, or it could not be
        handled): the connection must close with the returned code."""
        self.state = State.CLOSED
        return _HELLO_CLOSES.get(code, CloseCode.TRY_AGAIN_LATER)

    def hello_deadline_passed(self) -> CloseCode | None:
        """Called when the hello timer fires; returns the close code if still waiting."""
        if self.state is State.AWAIT_HELLO:
            self.state = State.CLOSED
            return CloseCode.UNAUTHENTICATED
        return None

    def drain(self) -> None:
        """The node is shutting down: admit nothing more."""
        self.draining = True

    def close(self) -> None:
        self.state = State.CLOSED

    # -- to-device replay (SPEC §2 item 3, §5.7)

    @property
    def replay_after(self) -> int | None:
        """The tid after which the next replay page starts; None when none is due."""
        return self._replay_after

    def replay_due(self, frame: ClientFrame) -> bool:
        """After handling ``frame``: is there room to push more of the queue now?"""
        return self._replay_after is not None and isinstance(frame, ToDeviceAck)

    def replay_limit(self, space: int) -> int:
        """How many queued messages to read next, given ``space``: the replay window
        less what the send queue holds and what this round pushed already. 0: stop."""
        if self._replay_after is None or space <= 0:
            return 0
        return min(space, REPLAY_PAGE)

    def replayed(self, count: int, last_tid: int, limit: int) -> None:
        """A page of ``count`` messages (of at most ``limit``) was pushed."""
        self._replay_after = None if count < limit else last_tid

    def _strike(self, reply: Error) -> Outcome:
        self.bad_frames += 1
        if self.bad_frames >= MAX_BAD_FRAMES:
            self.state = State.CLOSED
            return Outcome(reply=reply, close=CloseCode.BAD_REQUEST)
        return Outcome(reply=reply)
