"""The server connection state machine, driven without any I/O."""

from __future__ import annotations

import pytest

from harness import sealed
from protocol import CloseCode, LocalProtocolError, ServerSession, State, encode
from protocol.errors import ErrorCode
from protocol.frames import Hello, Ping, Send
from protocol.limits import MAX_BAD_FRAMES

HELLO = encode(Hello(1, "token", "device"))


def test_only_hello_passes_before_authentication() -> None:
    session = ServerSession()
    out = session.receive(encode(Send(2, "r", "c", sealed(b"x"))))
    assert out.frame is None and out.reply is not None
    assert out.reply.code == ErrorCode.UNAUTHENTICATED and out.reply.re == 2
    out = session.receive(HELLO)
    assert isinstance(out.frame, Hello) and out.reply is None
    assert session.state is State.AWAIT_HELLO


def test_frames_flow_once_accepted() -> None:
    session = ServerSession()
    session.receive(HELLO)
    session.accept()
    assert session.state is State.OPEN
    assert isinstance(session.receive(encode(Ping(3))).frame, Ping)
    again = session.receive(HELLO)
    assert (
        again.frame is None and again.reply is not None and again.reply.code == ErrorCode.CONFLICT
    )


def test_a_second_hello_while_the_first_is_checked_is_refused() -> None:
    session = ServerSession()
    session.receive(HELLO)
    out = session.receive(HELLO)
    assert out.frame is None and out.reply is not None and out.reply.code == ErrorCode.CONFLICT


def test_refused_hello_closes_with_4401_and_nothing_passes_after() -> None:
    session = ServerSession()
    session.receive(HELLO)
    assert session.refuse() == CloseCode.UNAUTHENTICATED
    assert session.state is State.CLOSED
    assert session.receive(encode(Ping(1))).frame is None


def test_accept_without_hello_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        ServerSession().accept()


def test_hello_deadline_only_closes_a_waiting_connection() -> None:
    waiting = ServerSession()
    assert waiting.hello_deadline_passed() == CloseCode.UNAUTHENTICATED
    open_ = ServerSession()
    open_.receive(HELLO)
    open_.accept()
    assert open_.hello_deadline_passed() is None
    assert open_.state is State.OPEN


def test_repeated_bad_frames_close_with_4400() -> None:
    session = ServerSession()
    session.receive(HELLO)
    session.accept()
    for _ in range(MAX_BAD_FRAMES - 1):
        out = session.receive(b"\xc1")
        assert out.close is None and out.reply is not None
    out = session.receive_text()
    assert out.close == CloseCode.BAD_REQUEST
    assert session.state is State.CLOSED
