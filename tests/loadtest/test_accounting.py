"""The delivery accounting of the load generator (pure): a tool that checks for loss
must itself be checked to see loss, duplicates and reordering."""

from __future__ import annotations

import time
from typing import Any

import msgpack

from loadtest.gen import STAMP, Conn, GenConfig, Generator, UserSpec
from loadtest.report import hist_percentiles, merge


def _msg(room: str, seq: int) -> dict[str, Any]:
    body = STAMP.pack(time.time_ns(), 1) + b"x" * 20
    frame = {"t": "msg", "room": room, "seq": seq, "sender": "s", "device": "x", "cid": "c"}
    return msgpack.unpackb(msgpack.packb({**frame, "ts": 1, "body": body}))


class _Socket:
    """What a connection's picows transport is asked to send, unpacked."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, kind: object, data: bytes) -> None:
        self.sent.append(msgpack.unpackb(data))


def _welcome(conn: Conn, last_seq: int, rooms: tuple[str, ...] = ("r1",)) -> _Socket:
    """Connect ``conn`` as the network would, the welcome saying each room is at
    ``last_seq``; returns the socket it writes to."""
    socket = _Socket()
    conn.session.connect()
    conn.on_ws_connected(socket)  # type: ignore[arg-type]
    infos = [{"id": room, "last_seq": last_seq} for room in rooms]
    conn.handle({"t": "welcome", "re": socket.sent[-1]["id"], "rooms": infos})
    return socket


def _generator(rooms: tuple[str, ...] = ("r1",)) -> Generator:
    gen = Generator(GenConfig("ws://127.0.0.1:1/v1/ws"), [UserSpec("u", "d", "t", rooms)])
    _welcome(gen.conns[0], 1, rooms)
    return gen


def test_in_order_deliveries_are_complete() -> None:
    gen = _generator()
    for seq in (2, 3, 4):
        gen.on_msg(gen.conns[0], _msg("r1", seq))
    report = merge([gen.snapshot(full=True)])
    assert (report["delivered"], report["lost"], report["duplicates"]) == (3, 0, 0)
    assert report["expected"] == 3


def test_a_gap_is_loss_and_a_repeat_is_a_duplicate() -> None:
    gen = _generator()
    conn = gen.conns[0]
    for seq in (2, 4, 4, 5):  # 3 never arrives, 4 twice
        gen.on_msg(conn, _msg("r1", seq))
    report = merge([gen.snapshot(full=True)])
    assert report["delivered"] == 3
    assert report["duplicates"] == 1
    assert report["lost"] == 1
    assert report["expected"] == 4


def test_own_messages_fill_their_positions_through_the_ack() -> None:
    gen = _generator()
    conn = gen.conns[0]
    gen.send_one(conn)
    send = conn.transport.sent[-1]  # type: ignore[union-attr]
    gen.on_msg(conn, _msg("r1", 3))  # before our own ack of seq 2
    conn.handle({"t": "ack", "re": send["id"], "seq": 2})
    gen.on_msg(conn, _msg("r1", 4))
    report = merge([gen.snapshot(full=True)])
    assert (report["acked"], report["delivered"], report["lost"]) == (1, 2, 0)
    assert report["out_of_order"] == 0


def test_a_late_delivery_is_out_of_order() -> None:
    gen = _generator()
    conn = gen.conns[0]
    for seq in (3, 2):
        gen.on_msg(conn, _msg("r1", seq))
    report = merge([gen.snapshot(full=True)])
    assert report["out_of_order"] == 1
    assert report["lost"] == 0


def test_sync_after_a_reconnect_fills_the_gap_without_counting_duplicates() -> None:
    gen = _generator()
    conn = gen.conns[0]
    gen.on_msg(conn, _msg("r1", 2))
    conn.closing = True  # dropped (without the generator dialing again by itself)
    conn.on_ws_disconnected(conn.transport)  # type: ignore[arg-type]
    socket = _welcome(conn, 5)  # back: the room is at 5, the session syncs from 2
    gen.on_msg(conn, _msg("r1", 5))  # live again after the reconnect, 3 and 4 missed
    sync = socket.sent[-1]
    assert (sync["t"], sync["after"]) == ("sync", 2)
    items = [_msg("r1", s) for s in (3, 4, 5)]
    conn.handle({"t": "batch", "re": sync["id"], "room": "r1", "items": items, "more": False})
    report = merge([gen.snapshot(full=True)])
    assert (report["delivered"], report["caught_up"], report["lost"]) == (2, 2, 0)
    assert report["duplicates"] == 0


def test_loss_is_measured_against_the_highest_seq_any_process_saw() -> None:
    behind, ahead = _generator(), _generator()
    ahead.on_msg(ahead.conns[0], _msg("r1", 2))
    ahead.on_msg(ahead.conns[0], _msg("r1", 3))
    behind.on_msg(behind.conns[0], _msg("r1", 2))
    report = merge([behind.snapshot(full=True), ahead.snapshot(full=True)])
    assert report["lost"] == 1


def test_percentiles_of_a_histogram() -> None:
    hist = {k: 1 for k in range(100)}  # 0.1 ms buckets: 0.1 .. 10.0 ms
    assert hist_percentiles(hist) == {"p50": 5.0, "p90": 9.0, "p99": 9.9, "max": 10.0}
    assert hist_percentiles({})["p99"] == 0.0


async def test_read_all_reads_each_room_at_once_then_at_most_once_a_second() -> None:
    """As the web client: the tick after a delivery reads each room up to its highest
    seq; a room read less than a second ago waits for that second to end."""
    config = GenConfig("ws://127.0.0.1:1/v1/ws", read_all=True)
    gen = Generator(config, [UserSpec("u", "d", "t", ("r1", "r2"))])
    conn = gen.conns[0]
    socket = _welcome(conn, 1, ("r1", "r2"))

    def reads() -> list[tuple[str, int]]:
        return [(f["room"], f["seq"]) for f in socket.sent if f["t"] == "read"]

    for room, seq in (("r1", 2), ("r1", 3), ("r2", 2)):
        gen.on_msg(conn, _msg(room, seq))
    gen._send_reads()  # the render tick
    assert reads() == [("r1", 3), ("r2", 2)]
    for seq in (4, 5):
        gen.on_msg(conn, _msg("r1", seq))
    gen._send_reads()
    assert reads() == [("r1", 3), ("r2", 2)]  # r1 was read less than a second ago
    assert conn.read_due == {"r1"}
    assert gen.snapshot()["reads_held"] == 1  # a drain waits for it
    gen._send_due(conn, "r1")  # that second is over: one read for both
    assert reads() == [("r1", 3), ("r2", 2), ("r1", 5)]
    assert conn.read_due == set() and conn.unread == {}
    assert gen.tally.reads_sent == 3 and gen.snapshot()["reads_held"] == 0
