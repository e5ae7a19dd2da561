"""Server side of one connection as a sans-I/O state machine.

States and transitions (the only place they are decided)::

    AWAIT_HELLO --hello accepted--> OPEN --close()--> CLOSED
    AWAIT_HELLO --hello refused / deadline--> CLOSED

Invariants:
- Before OPEN, the only frame handed to the application is ``Hello``; any other frame
  is answered with ``unauthenticated`` and never reaches the application.
- A connection that has sent ``MAX_BAD_FRAMES`` bad frames is closed with 4400.
- After CLOSED, nothing is handed to the application.

The I/O layer feeds bytes to :meth:`ServerSession.receive` and acts on the returned
:class:`Outcome`: send ``reply`` if set, dispatch ``frame`` if set, close with
``close`` if set. It calls :meth:`accept` once it has authenticated a hello.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .codec import decode_client_frame
from .errors import BadFrame, CloseCode, ErrorCode, LocalProtocolError
from .frames import ClientFrame, Error, Hello
from .limits import MAX_BAD_FRAMES

__all__ = ["Outcome", "ServerSession", "State"]


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
    __slots__ = ("bad_frames", "hello_pending", "state")

    def __init__(self) -> None:
        self.state = State.AWAIT_HELLO
        self.bad_frames = 0
        self.hello_pending = False

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

    def accept(self) -> None:
        """The hello was authenticated: application frames may flow."""
        if self.state is not State.AWAIT_HELLO or not self.hello_pending:
            raise LocalProtocolError(f"accept() in state {self.state.value}")
        self.state = State.OPEN

    def refuse(self) -> CloseCode:
        """The hello was not authenticated: the connection must close with 4401."""
        self.state = State.CLOSED
        return CloseCode.UNAUTHENTICATED

    def hello_deadline_passed(self) -> CloseCode | None:
        """Called when the hello timer fires; returns the close code if still waiting."""
        if self.state is State.AWAIT_HELLO:
            self.state = State.CLOSED
            return CloseCode.UNAUTHENTICATED
        return None

    def close(self) -> None:
        self.state = State.CLOSED

    def _strike(self, reply: Error) -> Outcome:
        self.bad_frames += 1
        if self.bad_frames >= MAX_BAD_FRAMES:
            self.state = State.CLOSED
            return Outcome(reply=reply, close=CloseCode.BAD_REQUEST)
        return Outcome(reply=reply)
