"""The client connection state machine, driven without any I/O (SPEC §10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol import ClientSession, ClientStatus, LocalProtocolError
from protocol.client_session import (
    IDEMPOTENT,
    Deliver,
    Failed,
    Reconnect,
    Replied,
    Stopped,
    Transmit,
    Welcomed,
)
from protocol.errors import CloseCode
from protocol.frames import (
    CLIENT_FRAMES,
    Ack,
    Event,
    Msg,
    Ping,
    Pong,
    Read,
    Send,
    Sync,
    ToDeviceAck,
    ToDeviceMsg,
    Typing,
)
from protocol.reconnect import CLOSE_POLICY, UNKNOWN_CLOSE, Backoff, on_close

SPEC = Path(__file__).parents[2] / "protocol" / "SPEC.md"


def _msg(seq: int, room: str = "r") -> Msg:
    return Msg(room, seq, "u2", "d2", f"c{seq}", seq, b"x")


def _open(session: ClientSession, rooms: tuple[tuple[str, int], ...] = ()) -> None:
    session.connect()
    hello = session.opened()
    session.welcomed(hello, "u1", True, rooms)
    session.events()


def test_transitions_outside_the_table_are_our_bug() -> None:
    session = ClientSession()
    with pytest.raises(LocalProtocolError):
        session.opened()  # not dialing
    _open(session)
    with pytest.raises(LocalProtocolError):
        session.connect()  # already open
    session.closed(1006)
    with pytest.raises(LocalProtocolError):
        session.closed(1006)  # reported twice
    session.stop()
    assert session.status is ClientStatus.STOPPED
    with pytest.raises(LocalProtocolError):
        session.request(Ping)


def test_items_are_delivered_once_in_seq_order() -> None:
    session = ClientSession()
    _open(session)
    for seq in (1, 3, 3, 2, 1, 4):
        session.receive(_msg(seq))
    delivered = [e.item for e in session.events() if isinstance(e, Deliver)]
    assert [m.seq for m in delivered if isinstance(m, Msg)] == [1, 2, 3, 4]
    assert session.state.last_seq == {"r": 4}


def test_a_room_first_seen_live_starts_there_unless_from_start() -> None:
    later = ClientSession(from_start=False)
    assert later.live("r", 7, None) == [None]
    assert later.state.last_seq == {"r": 7}
    full = ClientSession()
    assert full.live("r", 7, None) == []  # held: 1..6 come first
    assert full.held("r") == {7: None}


def test_ephemeral_events_pass_as_they_come_and_membership_events_are_ordered() -> None:
    session = ClientSession()
    _open(session)
    typing = Event("typing", "r", 0, user="u2", on=True)
    joined = Event("member.joined", "r", 2, user="u3")
    session.receive(joined)
    session.receive(typing)
    session.receive(_msg(1))
    order = [e.item for e in session.events() if isinstance(e, Deliver)]
    assert order == [typing, _msg(1), joined]


def test_a_welcome_says_which_rooms_to_catch_up() -> None:
    session = ClientSession()
    session.state.last_seq.update({"known": 5, "current": 9})
    session.connect()
    hello = session.opened()
    session.welcomed(hello, "u1", True, [("known", 8), ("current", 9), ("new", 3)])
    syncs = [e.frame for e in session.events() if isinstance(e, Transmit)]
    assert syncs == [Sync(2, "known", 5, 500), Sync(3, "new", 0, 500)]
    resumed = ClientSession(from_start=False)
    _open(resumed, (("new", 3),))
    assert resumed.state.last_seq == {"new": 3} and resumed.catching_up == 0


def test_ids_never_repeat_and_a_timed_out_request_is_sent_again_if_idempotent() -> None:
    session = ClientSession()
    _open(session)  # hello was id 1
    read = session.request(lambda i: Read(i, "r", 3))
    typing = session.request(lambda i: Typing(i, "r", True))
    session.timed_out(read)
    session.timed_out(typing)
    events = session.events()
    sent = [e.frame for e in events if isinstance(e, Transmit)]
    assert sent == [Read(2, "r", 3), Typing(3, "r", True), Read(4, "r", 3)]
    assert [e for e in events if isinstance(e, Failed)] == [Failed(typing, None)]
    session.receive(Ack(2))  # the late reply to the first attempt: ignored
    assert session.events() == []
    session.receive(Ack(4))
    assert session.events() == [Replied(read, Ack(4))]


def test_the_session_feeds_our_own_acked_message_through_the_order() -> None:
    session = ClientSession(device="d1")
    _open(session)
    send = session.request(lambda i: Send(i, "r", "cid", b"mine"))
    session.receive(_msg(2))
    session.receive(Ack(send.id, 1, 77))
    events = session.events()
    own = Msg("r", 1, "u1", "d1", "cid", 77, b"mine")
    assert [e.item for e in events if isinstance(e, Deliver)] == [own, _msg(2)]
    assert Replied(send, Ack(send.id, 1, 77)) in events


def test_to_device_is_handed_over_once_and_acknowledged_after_it_is_taken() -> None:
    session = ClientSession()
    _open(session)
    note = ToDeviceMsg(7, "u2", "d2", 1, b"key")
    session.receive(note)
    session.receive(note)  # replayed and live: once
    assert session.events() == [Deliver(note)]
    session.taken(7)
    (ack,) = session.events()
    assert isinstance(ack, Transmit) and ack.frame == ToDeviceAck(2, (7,))
    assert session.acking and session.state.to_device_unacked == {7}
    session.receive(note)  # our ack crossed it: acknowledged again, not shown
    (again,) = session.events()
    assert isinstance(again, Transmit) and again.frame == ToDeviceAck(3, (7,))
    session.receive(Ack(2))
    session.receive(Ack(3))
    assert session.events() == [] and not session.acking
    assert session.state.to_device_unacked == set()


def test_stop_fails_everything_pending_and_says_why() -> None:
    session = ClientSession()
    queued = session.request(Ping)  # before any connection
    _open(session)
    in_flight = session.request(lambda i: Send(i, "r", "c", b"x"))
    session.events()
    session.stop()
    events = session.events()
    assert {e.request for e in events if isinstance(e, Failed)} == {queued, in_flight}
    assert events[-1] == Stopped()


def test_a_welcome_with_re_0_reports_verification_without_reopening() -> None:
    session = ClientSession()
    session.connect()
    hello = session.opened()
    session.welcomed(hello, "u1", False, ())
    assert session.events() == [Welcomed(opened=True)] and not session.verified
    session.receive(Pong(99))  # a stray reply: nothing
    assert session.events() == []
    session.welcomed(0, "u1", True, [("r", 2)])
    events = session.events()
    assert session.verified and events[-1] == Welcomed(opened=False)
    assert isinstance(events[0], Transmit) and isinstance(events[0].frame, Sync)


def test_backoff_has_full_jitter_under_a_doubling_cap() -> None:
    backoff = Backoff()
    assert [backoff.delay(n, lambda: 0.999999) for n in range(9)] == pytest.approx(
        [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0], rel=1e-5
    )
    assert backoff.delay(3, lambda: 0.0) == 0.0  # anywhere from now...
    assert backoff.delay(10_000, lambda: 0.5) == 2.5  # ...and never overflows


def test_only_a_revoked_session_stops_a_client() -> None:
    stops = {code for code, policy in CLOSE_POLICY.items() if not policy.reconnect}
    assert stops == {CloseCode.UNAUTHENTICATED}
    assert on_close(None) == CLOSE_POLICY[1006] and on_close(4999) is UNKNOWN_CLOSE
    session = ClientSession()
    _open(session)
    session.closed(CloseCode.UNAUTHENTICATED)
    assert session.events() == [Stopped(close=CloseCode.UNAUTHENTICATED)]


def test_the_close_policy_covers_spec_table_2_1() -> None:
    text = SPEC.read_text()
    table = text[text.index("### 2.1 Close codes") : text.index("### 2.2")]
    codes = {int(c) for c in re.findall(r"^\| (\d{4}) \|", table, re.M)}
    assert codes and codes <= set(CLOSE_POLICY)
    for code in codes:
        row = re.search(rf"^\| {code} \|.*$", table, re.M)
        assert row is not None
        says_stop = "do not reconnect" in row.group(0)
        assert CLOSE_POLICY[code].reconnect is not says_stop, code


def test_idempotent_requests_are_real_frame_types() -> None:
    assert set(CLIENT_FRAMES) >= IDEMPOTENT


def test_a_reconnect_resends_idempotent_requests_and_fails_the_others() -> None:
    session = ClientSession(random=lambda: 0.0)
    _open(session)
    send = session.request(lambda i: Send(i, "r", "c", b"x"))
    typing = session.request(lambda i: Typing(i, "r", True))
    session.events()
    session.closed(CloseCode.SLOW_CONSUMER)
    assert session.events() == [Failed(typing, None), Reconnect(0.0, CloseCode.SLOW_CONSUMER)]
    session.connect()
    hello = session.opened()
    session.welcomed(hello, "u1", True, ())
    (resent, welcomed) = session.events()
    assert isinstance(resent, Transmit) and resent.request is send
    assert resent.frame == Send(send.id, "r", "c", b"x") and send.attempts == 2
    assert welcomed == Welcomed(opened=True)


def test_the_browser_client_keeps_the_same_close_policy() -> None:
    source = (Path(__file__).parents[2] / "clients" / "web" / "app" / "client.js").read_text()
    block = source[source.index("const RECONNECT_ON_CLOSE = {") :]
    block = block[: block.index("};")]
    table = {
        int(code): flag == "true" for code, flag in re.findall(r"(\d{4}): (true|false)", block)
    }
    assert table == {code: policy.reconnect for code, policy in CLOSE_POLICY.items()}
