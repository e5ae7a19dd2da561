"""A client session and a server session talking through bytes, without sockets: the
protocol's guarantees (SPEC §2, §6, §10) as two state machines keep them."""

from __future__ import annotations

import pytest
from session_pair import Link, Node

from harness import sealed
from protocol import ClientSession, ClientStatus, State
from protocol.client_session import CatchUpLater, Reconnect, RetryLater
from protocol.errors import CloseCode, ErrorCode
from protocol.frames import Ack, Batch, Msg, Ping, Pong, RoomLeave, Send, Sync, ToDeviceMsg, Typing


def _seqs(link: Link, room: str = "r") -> list[int]:
    return [m.seq for m in link.delivered if isinstance(m, Msg) and m.room == room]


def _open(node: Node, device: str = "d1", **kwargs: object) -> Link:
    link = Link(node, ClientSession(device=device), device, **kwargs)  # type: ignore[arg-type]
    link.dial()
    link.pump()
    return link


def _post(node: Node, count: int, room: str = "r", device: str = "d9") -> None:
    for n in range(count):
        node.post(room, "u9", device, f"{device}-{len(node.timelines.get(room, []))}-{n}", b"x")


def test_hello_opens_both_sides_and_requests_get_their_replies() -> None:
    link = _open(Node())
    assert link.client.status is ClientStatus.OPEN and link.server.state is State.OPEN
    assert link.client.verified and link.server.verified
    ping = link.request(Ping)
    assert isinstance(link.replies[ping], Pong)


def test_requests_made_before_the_welcome_go_out_after_it_in_order() -> None:
    node = Node()
    node.timelines["r"] = []
    link = Link(node, ClientSession(device="d1"))
    first = link.client.request(lambda i: Send(i, "r", "c1", sealed(b"1")))
    second = link.client.request(lambda i: Send(i, "r", "c2", sealed(b"2")))
    link.act()
    assert link.sent == []  # nothing but the hello before OPEN
    link.dial()
    link.pump()
    assert [(f.T, f.id) for f in link.sent] == [("send", 2), ("send", 3)]  # hello was 1
    assert (link.replies[first], link.replies[second]) == (Ack(2, 1, 1000), Ack(3, 2, 1001))
    assert _seqs(link) == [1, 2]  # our own messages, through their acks


def test_every_message_once_and_in_order_across_a_drop() -> None:
    node = Node()
    alice = _open(node, "d1")
    _post(node, 3)
    alice.pump()
    assert _seqs(alice) == [1, 2, 3]
    alice.drop()  # network failure: the policy reconnects
    assert alice.client.status is ClientStatus.BACKOFF
    _post(node, 2)  # committed while alice is away
    alice.fire(Reconnect)
    assert _seqs(alice) == [1, 2, 3, 4, 5]
    resync = [f for f in alice.sent if isinstance(f, Sync)]
    assert [(f.room, f.after) for f in resync] == [("r", 3)]


def test_a_send_whose_ack_was_lost_is_resent_with_its_cid_and_stored_once() -> None:
    node = Node()
    node.timelines["r"] = []
    alice = _open(node)
    send = alice.client.request(lambda i: Send(i, "r", "cid-1", sealed(b"hello")))
    alice.act()
    alice._server_receives(alice.to_server.pop(0))  # committed, ack on its way...
    alice.drop()  # ...and lost with the connection
    assert send not in alice.replies and alice.failures == []
    alice.fire(Reconnect)
    sends = [f for f in alice.sent if isinstance(f, Send)]
    assert [f.cid for f in sends] == ["cid-1", "cid-1"] and sends[0].id != sends[1].id
    assert len(node.timelines["r"]) == 1
    reply = alice.replies[send]
    assert isinstance(reply, Ack) and reply.seq == 1
    assert _seqs(alice) == [1]  # our own message, once


def test_a_request_that_is_not_idempotent_fails_when_cut_off() -> None:
    alice = _open(Node())
    leave = alice.client.request(lambda i: RoomLeave(i, "r"))
    alice.act()
    alice.drop(CloseCode.SERVICE_RESTART)
    assert alice.failures == [(leave, None)]
    alice.fire(Reconnect)
    assert [f.T for f in alice.sent] == ["room.leave"]  # never sent again


def test_a_live_gap_is_synced_after_the_grace_and_delivered_in_order() -> None:
    node = Node()
    alice = _open(node)
    _post(node, 1)
    alice.pump()
    _post(node, 2)
    del alice.to_client[0]  # seq 2 lost on the way (a broker reset)
    alice.pump()
    assert _seqs(alice) == [1]  # 3 held behind the gap
    assert [t for t in alice.timers if isinstance(t, CatchUpLater)] == [CatchUpLater("r", 0.2)]
    alice.fire(CatchUpLater)
    assert _seqs(alice) == [1, 2, 3]
    assert [(f.room, f.after) for f in alice.sent if isinstance(f, Sync)] == [("r", 1)]


def test_a_gap_filled_by_a_late_frame_needs_no_sync() -> None:
    node = Node()
    alice = _open(node)
    _post(node, 2)
    alice.to_client.reverse()  # 2 then 1: published by concurrent handlers
    alice.pump()
    assert _seqs(alice) == [1, 2]
    alice.fire(CatchUpLater)
    assert not any(isinstance(f, Sync) for f in alice.sent)


def test_catch_up_pages_until_the_room_is_complete() -> None:
    node = Node()
    _post(node, 1200)
    alice = _open(node)  # from seq 1: the whole history, in pages of 500
    assert _seqs(alice) == list(range(1, 1201))
    assert [f.after for f in alice.sent if isinstance(f, Sync)] == [0, 500, 1000]


def test_to_device_messages_are_acknowledged_once_taken_and_not_shown_again() -> None:
    node = Node()
    tids = [node.queue_to_device("d1", b"k") for _ in range(2)]
    alice = _open(node)
    assert [m.tid for m in alice.delivered if isinstance(m, ToDeviceMsg)] == tids
    assert not any(f.T == "to_device.ack" for f in alice.sent)  # not before taken
    alice.client.taken(tids[0])
    alice.act()
    ack = alice.to_server.pop(0)  # lost with the connection below
    assert ack
    alice.drop()
    alice.fire(Reconnect)  # the node replays both: tid 1 is re-acked, not shown again
    shown = [m.tid for m in alice.delivered if isinstance(m, ToDeviceMsg)]
    assert shown == tids
    assert list(node.queued["d1"]) == [tids[1]]
    assert alice.client.state.to_device_unacked == set()
    assert not alice.client.acking


def test_the_replay_never_fills_more_than_half_the_send_queue() -> None:
    node = Node()
    tids = [node.queue_to_device("d1", b"k") for _ in range(10)]
    alice = _open(node, send_queue=8)  # a replay window of 4, the welcome in the queue
    shown = [m.tid for m in alice.delivered if isinstance(m, ToDeviceMsg)]
    assert shown == tids[:3]
    for tid in tids:  # each acknowledgement makes room for more
        alice.client.taken(tid)
        alice.act()
        alice.pump()
    shown = [m.tid for m in alice.delivered if isinstance(m, ToDeviceMsg)]
    assert shown == tids and node.queued["d1"] == {}


def test_a_refused_hello_stops_the_session_for_good() -> None:
    node = Node(refuse_hello=ErrorCode.UNAUTHENTICATED)
    alice = _open(node)
    assert alice.refused is not None and alice.refused.code == ErrorCode.UNAUTHENTICATED
    assert alice.client.status is ClientStatus.STOPPED
    assert alice.stopped is not None and alice.stopped.error == alice.refused
    assert alice.timers == []


def test_storage_unavailable_at_hello_closes_1013_and_the_client_backs_off() -> None:
    node = Node(refuse_hello=ErrorCode.UNAVAILABLE)
    alice = Link(node, ClientSession(device="d1", random=lambda: 0.5))
    delays = []
    for _ in range(4):
        alice.dial()
        alice.pump()
        timer = alice.timers.pop()
        assert isinstance(timer, Reconnect) and timer.close == CloseCode.TRY_AGAIN_LATER
        delays.append(timer.delay)
    assert delays == [0.125, 0.25, 0.5, 1.0]  # half of 250 ms doubling (random() = 0.5)
    node.refuse_hello = None
    alice.dial()
    alice.pump()
    alice.drop()
    assert alice.timers == [Reconnect(0.125, None)]  # the series restarts after a welcome


def test_a_draining_node_refuses_requests_and_idempotent_ones_are_retried() -> None:
    node = Node()
    alice = _open(node)
    alice.server.drain()
    sync = alice.request(lambda i: Sync(i, "r", 0, 10))
    typing = alice.request(lambda i: Typing(i, "r", True))
    assert alice.timers == [RetryLater(sync, 1.0)]
    assert [(r, e.code if e else None) for r, e in alice.failures] == [
        (typing, ErrorCode.UNAVAILABLE)
    ]
    alice.drop(CloseCode.SERVICE_RESTART)
    alice.fire(Reconnect)  # another node
    alice.fire(RetryLater)
    assert isinstance(alice.replies[sync], Batch)


def test_the_in_flight_cap_answers_rate_limited_and_the_request_is_retried() -> None:
    node = Node()
    alice = _open(node, max_inflight=2)
    alice.hold = True
    syncs = [alice.request(lambda i: Sync(i, "r", 0, 10)) for _ in range(3)]
    assert alice.timers == [RetryLater(syncs[2], 1.0)]
    alice.release()
    alice.hold = False
    alice.fire(RetryLater)
    assert all(isinstance(alice.replies[s], Batch) for s in syncs)
    assert alice.server.in_flight == 0


def test_an_unverified_connection_is_gated_until_the_identity_is_verified() -> None:
    node = Node(verified=False)
    _post(node, 2)
    alice = _open(node)
    assert alice.client.status is ClientStatus.OPEN and not alice.client.verified
    assert _seqs(alice) == []
    sync = alice.request(lambda i: Sync(i, "r", 0, 10))
    assert [(r, e.code if e else None) for r, e in alice.failures] == [
        (sync, ErrorCode.IDENTITY_UNVERIFIED)
    ]
    node.verified = True  # by an administrator, meanwhile
    ping = alice.request(Ping)  # a ping does not look: still gated
    assert isinstance(alice.replies[ping], Pong) and not alice.server.verified
    again = alice.request(lambda i: Sync(i, "r", 0, 10))
    assert alice.server.verified and alice.client.verified and alice.welcomes == 2
    assert isinstance(alice.replies[again], Batch)
    assert _seqs(alice) == [1, 2]  # the second welcome's rooms, caught up


def test_a_revoked_session_fails_what_is_pending_and_never_reconnects() -> None:
    alice = _open(Node())
    alice.hold = True
    sync = alice.request(lambda i: Sync(i, "r", 0, 10))
    alice.drop(CloseCode.UNAUTHENTICATED)
    assert alice.client.status is ClientStatus.STOPPED
    assert alice.failures == [(sync, None)] and alice.timers == []


@pytest.mark.parametrize("bad", [b"\xc1"])
def test_bad_frames_close_4400_and_the_client_reconnects(bad: bytes) -> None:
    alice = _open(Node())
    for _ in range(20):
        alice.to_server.append(bad)
    alice.pump()
    assert alice.client.status is ClientStatus.BACKOFF
    assert alice.timers and alice.timers[-1].close == CloseCode.BAD_REQUEST  # type: ignore[union-attr]
