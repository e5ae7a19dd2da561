"""The load generator: many cheap WebSocket clients in one process (picows), and the
accounting of every delivery.

A worker process runs one :class:`Generator`; the coordinating command drives it
through a pipe (see :mod:`loadtest.workers`). It speaks just enough of the Confrère
protocol (hello, send, read, typing, sync) with frames packed by hand, or the floor
server's even smaller one, and checks each delivery:

- latency: every body starts with the sender's wall-clock time (ns, 8 bytes) and the
  benchmark step (1 byte); receivers subtract it from their own clock (same machine);
- loss, duplicates, order: per (connection, room), ``last`` is the highest seq up to
  which every position was either delivered or is the connection's own message (its
  ack says so), ``ahead`` the positions filled beyond it. A live delivery at or below
  ``last`` or already in ``ahead`` is a duplicate; one below the highest live seq seen
  is out of order. After a reconnect, ``sync`` fills the gap (those items count as
  caught up, not as live deliveries), and so does a gap still open ``GAP_GRACE_S``
  after it appeared, as SPEC.md §10.3 has clients do (an item committed but never
  published live: its node died in between). At the end every position up to the
  room's final seq must be filled: what is not was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import resource
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

__all__ = ["GenConfig", "Generator", "UserSpec", "hist_add"]

log = logging.getLogger("loadtest.gen")

GAP_GRACE_S = 0.2  # the reference client's gap_grace

SUBPROTOCOL_HEADERS = {"Sec-WebSocket-Protocol": "confrere.v1"}
STAMP = struct.Struct("<qB")  # sender wall clock (ns), benchmark step
_stamp = STAMP.unpack_from
PAD = os.urandom(70_000)

_pack = msgpack.Packer(use_bin_type=True).pack
_unpack = msgpack.unpackb


def hist_add(into: dict[int, int], other: dict[int, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


@dataclass(frozen=True, slots=True)
class UserSpec:
    """One practitioner to connect: ``rooms`` are room ids."""

    user_id: str
    device_id: str
    token: str
    rooms: tuple[str, ...]


@dataclass(slots=True)
class GenConfig:
    url: str  # ws://host:port/path
    floor: bool = False  # speak the floor server's protocol
    source_ips: tuple[str, ...] = ("127.0.0.1",)
    payload_min: int = 100
    payload_max: int = 100
    read_fraction: float = 0.0  # share of deliveries answered with a read receipt
    typing_fraction: float = 0.0  # share of sends preceded by a typing notice
    burst: float = 0.0  # chance that a send is followed at once by another from the same user
    churn_per_min: float = 0.0  # share of connections dropped (and resumed) each minute
    connect_concurrency: int = 200


Pending = tuple[int, str | None, int, dict[str, Any] | None]


class RoomState:
    """Per (connection, room): see the module docstring."""

    __slots__ = ("ahead", "gap_check", "last", "max_live", "synced")

    def __init__(self, last: int) -> None:
        self.last = last
        self.ahead: set[int] = set()
        self.gap_check = False  # a gap check is scheduled
        self.max_live = last
        # Positions filled by a sync after a reconnect: the same items may also arrive
        # live (published after the node attached us, committed before the sync read),
        # and that overlap is the protocol working, not a duplicate.
        self.synced: set[int] | None = None

    def fill(self, seq: int) -> bool:
        """Mark position ``seq`` filled; false if it already was."""
        if seq <= self.last or seq in self.ahead:
            return False
        if seq == self.last + 1:
            self.last = seq
            ahead = self.ahead
            while ahead and self.last + 1 in ahead:
                self.last += 1
                ahead.discard(self.last)
        else:
            self.ahead.add(seq)
        return True


@dataclass(slots=True)
class Tally:
    """This process's counters; ``snapshot`` sends them to the coordinator."""

    sent: int = 0
    acked: int = 0
    errors: int = 0
    delivered: int = 0  # live deliveries (first time), all steps
    caught_up: int = 0  # positions filled by sync after a reconnect
    duplicates: int = 0
    out_of_order: int = 0
    ephemeral: int = 0  # receipts and typing notices received
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0  # not asked for by us
    churned: int = 0  # dropped on purpose (mobile churn)
    resent: int = 0  # sends repeated after a reconnect (no ack had come)
    close_codes: dict[str, int] = field(default_factory=dict)  # closes by the server
    ack_latency: dict[int, int] = field(default_factory=dict)
    steps: dict[int, list[Any]] = field(
        default_factory=dict
    )  # step -> [sent, acked, delivered, hist]
    seconds: dict[int, list[Any]] = field(default_factory=dict)  # second -> [delivered, hist 1 ms]
    acked_by_room: dict[str, int] = field(default_factory=dict)
    # Send -> arrival of the messages a sync brought (after a reconnect): with the live
    # deliveries' maximum, the longest gap a reader saw.
    longest_sync_gap_us: int = 0
    stalled: int = 0  # connections made to stop reading (the fault schedule's)
    longest_stalled_gap_us: int = 0  # the longest wait of those (their own doing)
    stored_twice: int = 0  # a cid whose retry was acked with another seq: must be 0
    # Positions only the closing sync of every room filled: stored, never delivered
    # live nor caught up before the end (a hole in live delivery, not a loss).
    recovered_at_end: int = 0

    def step(self, k: int) -> list[Any]:
        s = self.steps.get(k)
        if s is None:
            s = self.steps[k] = [0, 0, 0, {}]
        return s


class Conn(WSListener):
    """One simulated device."""

    __slots__ = (
        "closing",
        "connected",
        "final",
        "gen",
        "index",
        "next_id",
        "pending",
        "rooms",
        "spec",
        "stalled",
        "syncing",
        "transport",
        "unacked",
        "welcomed",
    )

    def __init__(self, gen: Generator, index: int, spec: UserSpec) -> None:
        self.gen = gen
        self.index = index
        self.spec = spec
        self.transport: WSTransport | None = None
        self.rooms: dict[str, RoomState] = {}
        self.next_id = 1
        # request id -> (sent at ns, room of a send or None, step, the send frame)
        self.pending: dict[int, Pending] = {}
        self.unacked: list[Pending] = []  # sends cut off by a disconnect: sent again
        self.welcomed: asyncio.Future[None] | None = None
        self.connected = False
        self.closing = False
        self.syncing = 0
        self.stalled = False  # made to stop reading once: its gaps are counted apart
        self.final = False  # the closing sync: what it fills was missing until the end

    # -- picows callbacks

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        spec = self.spec
        rid = self.next_id  # ids start at 1: 0 is the unsolicited welcome's (SPEC §3)
        self.next_id = rid + 1
        if self.gen.config.floor:
            hello = {"t": "hello", "id": rid, "rooms": list(spec.rooms)}
        else:
            hello = {"t": "hello", "id": rid, "token": spec.token, "device": spec.device_id}
        transport.send(WSMsgType.BINARY, _pack(hello))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        was = self.connected
        self.connected = False
        self.transport = None
        # As the SDK does, sends that got no ack are sent again after resuming, with
        # the same cid: the server answers a stored one with its original seq.
        self.unacked.extend(p for p in self.pending.values() if p[1] is not None)
        self.pending.clear()
        self.syncing = 0
        gen = self.gen
        if self.welcomed is not None and not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError("closed before welcome"))
        if was and not self.closing:
            gen.tally.disconnects += 1
            gen.connected -= 1
            gen.reconnect_later(self, 1.0)
        elif was:  # closed by us (close_all); churn already counted it out
            gen.connected -= 1

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.BINARY:
            if frame.msg_type is WSMsgType.CLOSE:
                if self.connected and not self.closing:
                    code = str(frame.get_close_code().value)
                    codes = self.gen.tally.close_codes
                    codes[code] = codes.get(code, 0) + 1
                transport.disconnect()
            return
        d = _unpack(frame.get_payload_as_memoryview())
        t = d["t"]
        gen = self.gen
        if t == "msg":
            gen.on_msg(self, d)
        elif t == "ack":
            gen.on_ack(self, d)
        elif t == "event":
            gen.tally.ephemeral += 1
        elif t == "batch":
            gen.on_batch(self, d)
        elif t == "welcome":
            self.on_welcome(d)
        elif t == "error":
            gen.tally.errors += 1
            gen.errors.append(f"{d.get('code')}: {d.get('message')}")
            pending = self.pending.pop(d.get("re", -1), None)
            if pending is not None and pending[3] is not None:
                self.retry_later(pending, d.get("code"), d.get("retry_after"))

    # -- protocol

    def on_welcome(self, d: dict[str, Any]) -> None:
        first = not self.rooms
        for info in d.get("rooms", ()):
            room, last_seq = info["id"], info.get("last_seq", 0)
            state = self.rooms.get(room)
            if state is None:
                self.rooms[room] = RoomState(last_seq)
            elif last_seq > state.last:
                self.sync(room, state.last)
        self.connected = True
        self.gen.connected += 1
        self.gen.tally.connects += 1
        self.resend_unacked()
        if self.welcomed is not None and not self.welcomed.done():
            self.welcomed.set_result(None)
        del first

    def request(
        self, frame: dict[str, Any], room: str | None, step: int = 0, sent_ns: int = 0
    ) -> int:
        rid = self.next_id
        self.next_id = rid + 1
        frame["id"] = rid
        assert self.transport is not None
        kept = frame if room or frame["t"] == "sync" else None  # what a retry needs
        self.pending[rid] = (sent_ns or time.time_ns(), room, step, kept)
        self.transport.send(WSMsgType.BINARY, _pack(frame))
        return rid

    def resend_unacked(self) -> None:
        unacked, self.unacked = self.unacked, []
        for sent_ns, room, step, frame in unacked:
            if frame is not None:
                self.gen.tally.resent += 1
                self.request(frame, room, step, sent_ns)

    def retry_later(self, pending: Pending, code: Any, retry_after: Any) -> None:
        """A send or sync refused: as SPEC §10.4 clients do, the same request again
        (same cid) after ``retry_after`` when waiting helps; dropped otherwise."""
        frame = pending[3]
        assert frame is not None
        if frame["t"] == "sync":
            self.syncing -= 1
        if code not in ("unavailable", "rate_limited"):
            return
        delay = float(retry_after) if isinstance(retry_after, int | float) else 0.5
        asyncio.get_running_loop().call_later(delay, self._retry, pending)

    def _retry(self, pending: Pending) -> None:
        sent_ns, room, step, frame = pending
        assert frame is not None
        if not self.connected or self.transport is None:
            if room is not None:
                self.unacked.append(pending)  # sent again after the reconnect
            return
        if frame["t"] == "sync":
            self.syncing += 1
        self.request(frame, room, step, sent_ns)

    def sync(self, room: str, after: int) -> None:
        self.syncing += 1
        self.request({"t": "sync", "room": room, "after": after, "limit": 500}, None)


class Generator:
    """Holds this process's connections, offers load, keeps the tally."""

    def __init__(self, config: GenConfig, users: list[UserSpec]) -> None:
        self.config = config
        self.conns = [Conn(self, i, u) for i, u in enumerate(users)]
        self.tally = Tally()
        self.connected = 0
        self.errors: list[str] = []
        self.anomalies: list[str] = []  # samples of duplicates and gaps, for diagnosis
        self.acked_cids: dict[str, int] = {}  # cid -> seq of its first ack
        self.run_tag = os.urandom(4).hex() + "-"
        self.rate = 0.0  # messages per second offered by this process
        self.step = 0
        self.t0 = time.time_ns()
        self.read_every = int(1 / config.read_fraction) if config.read_fraction > 0 else 0
        self._read_count = 0
        self._rng = random.Random(os.getpid())
        self._tasks: set[asyncio.Task[None]] = set()
        self._sender: asyncio.Task[None] | None = None
        self._churner: asyncio.Task[None] | None = None
        self.on_change: Callable[[], None] | None = None

    # -- connections

    async def connect_all(self) -> float:
        """Open every connection (bounded concurrency); returns seconds taken."""
        started = time.perf_counter()
        sem = asyncio.Semaphore(self.config.connect_concurrency)

        async def one(conn: Conn) -> None:
            async with sem:
                await self.open(conn)

        await asyncio.gather(*(one(c) for c in self.conns))
        return time.perf_counter() - started

    async def open(self, conn: Conn, attempts: int = 5) -> None:
        config = self.config
        ip = config.source_ips[conn.index % len(config.source_ips)]
        for attempt in range(attempts):
            conn.closing = False
            conn.welcomed = asyncio.get_running_loop().create_future()
            try:
                await ws_connect(
                    lambda c=conn: c,
                    config.url,
                    extra_headers=SUBPROTOCOL_HEADERS,
                    local_addr=(ip, 0),
                    read_buffer_init_size=2048,
                    websocket_handshake_timeout=60,
                )
                await asyncio.wait_for(conn.welcomed, 60)
                return
            except Exception as exc:
                if conn.transport is not None:
                    conn.closing = True
                    conn.transport.disconnect(False)
                if attempt == attempts - 1:
                    self.tally.connect_failures += 1
                    self.errors.append(f"connect: {type(exc).__name__}: {exc}")
                    return
                await asyncio.sleep(0.5 * (attempt + 1) * self._rng.random() + 0.1)

    def reconnect_later(self, conn: Conn, delay: float) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._reconnect(conn, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect(self, conn: Conn, delay: float) -> None:
        """Until it is back, as SPEC §2.2 clients do: a node down or a database
        restarting (hellos refused with 1013) outlasts a few attempts, and a client that
        gave up would miss every later message of its rooms."""
        await asyncio.sleep(delay * (0.5 + self._rng.random()))
        wait = 1.0
        while True:
            await self.open(conn)
            if conn.connected:
                return
            await asyncio.sleep(wait * self._rng.random())
            wait = min(wait * 2, 5.0)

    async def close_all(self) -> None:
        self.set_rate(0.0, self.step)
        for task in (self._churner, *self._tasks):
            if task is not None:
                task.cancel()
        for conn in self.conns:
            conn.closing = True
            if conn.transport is not None:
                conn.transport.send_close(WSCloseCode.OK)
                conn.transport.disconnect()
        deadline = time.monotonic() + 10
        while self.connected > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    # -- offered load

    def set_rate(self, rate: float, step: int) -> None:
        self.rate = rate
        self.step = step
        if rate > 0 and self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        elif rate <= 0 and self._sender is not None:
            self._sender.cancel()
            self._sender = None

    def set_churn(self, per_min: float) -> None:
        self.config.churn_per_min = per_min
        if per_min > 0 and self._churner is None:
            self._churner = asyncio.get_running_loop().create_task(self._churn_loop())
        elif per_min <= 0 and self._churner is not None:
            self._churner.cancel()
            self._churner = None

    async def _send_loop(self) -> None:
        senders = [c for c in self.conns if c.spec.rooms]
        if not senders:
            return
        rng = self._rng
        rng.shuffle(senders)
        turn = 0
        started = time.monotonic()
        done = 0.0
        rate = self.rate
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            if self.rate != rate:  # new step: restart the schedule
                rate, started, done = self.rate, now, 0.0
            due = int((now - started) * rate - done)
            done += due
            burst = self.config.burst
            while due > 0:
                conn = senders[turn % len(senders)]
                turn += 1
                if not conn.connected:
                    due -= 1
                    continue
                while due > 0:
                    self.send_one(conn)
                    due -= 1
                    if not (burst and rng.random() < burst):
                        break

    def send_one(self, conn: Conn) -> None:
        config, rng = self.config, self._rng
        rooms = conn.spec.rooms
        room = rooms[0] if len(rooms) == 1 else rooms[rng.randrange(len(rooms))]
        if config.typing_fraction and rng.random() < config.typing_fraction:
            conn.request({"t": "typing", "room": room, "on": True}, None)
        size = config.payload_min
        if config.payload_max > size:
            size = rng.randint(size, config.payload_max)
        step = self.step
        body = STAMP.pack(time.time_ns(), step) + PAD[: max(0, size - STAMP.size)]
        cid = f"{self.run_tag}{conn.next_id}"  # (device, cid) is unique forever
        frame = {"t": "send", "room": room, "cid": cid, "body": body}
        conn.request(frame, room, step)
        self.tally.sent += 1
        self.tally.step(step)[0] += 1

    async def _churn_loop(self) -> None:
        """Drop a share of the connections each minute, spread over the minute; each
        comes back 1-5 s later and catches up by sync (mobile network changes)."""
        rng = self._rng
        while True:
            await asyncio.sleep(1.0)
            per_s = self.config.churn_per_min / 60 * len(self.conns)
            count = int(per_s) + (1 if rng.random() < per_s - int(per_s) else 0)
            for _ in range(count):
                conn = self.conns[rng.randrange(len(self.conns))]
                if conn.connected and conn.transport is not None:
                    conn.closing = True
                    conn.connected = False  # no more sends on it from now
                    self.connected -= 1
                    conn.transport.disconnect(False)
                    self.tally.churned += 1
                    self.reconnect_later(conn, 3.0)

    def final_sync(self) -> int:
        """Sync every room of every connection from what it has: the end of a run.
        Whatever this fills had been stored but never reached the connection."""
        count = 0
        for conn in self.conns:
            if conn.connected and conn.transport is not None:
                conn.final = True
                for room, state in conn.rooms.items():
                    conn.sync(room, state.last)
                    count += 1
        return count

    def stall(self, seconds: float) -> bool:
        """Stop reading one connection for ``seconds`` (a client whose app froze): the
        server queues for it, and closes it (4008) if the queue overflows; it then
        reconnects and catches up like any dropped connection."""
        for conn in self.conns:
            if conn.connected and conn.transport is not None:
                sock = conn.transport.underlying_transport
                sock.pause_reading()
                conn.stalled = True
                self.tally.stalled += 1
                asyncio.get_running_loop().call_later(seconds, _resume, sock)
                return True
        return False

    # -- receiving

    def on_msg(self, conn: Conn, d: dict[str, Any]) -> None:
        # The hot path of the generator: one call per delivery, kept to a few dict
        # operations (the step's and the second's histograms).
        now = time.time_ns()
        room = d["room"]
        seq = d["seq"]
        state = conn.rooms.get(room)
        tally = self.tally
        if state is None:  # a room we did not know of: follow it from here
            state = conn.rooms[room] = RoomState(seq - 1)
        if seq == state.last + 1 and not state.ahead:
            state.last = state.max_live = seq
        elif not state.fill(seq):
            synced = state.synced
            if synced is not None and seq in synced:
                synced.discard(seq)
            else:
                tally.duplicates += 1
                if len(self.anomalies) < 20:
                    self.anomalies.append(
                        f"duplicate: room {room} seq {seq} to device {conn.spec.device_id}"
                        f" (complete up to {state.last}, connected {conn.connected})"
                    )
            return
        elif seq < state.max_live:
            tally.out_of_order += 1
        else:
            state.max_live = seq
        if state.ahead and not state.gap_check:  # a gap: sync it if it stays open
            self._watch_gap(conn, room, state)
        sent_ns, step = _stamp(d["body"])
        us = (now - sent_ns) // 1000
        key = us // 100
        tally.delivered += 1
        if conn.stalled:  # its reader froze on purpose: not the server's latency
            if us > tally.longest_stalled_gap_us:
                tally.longest_stalled_gap_us = us
            return
        s = tally.steps.get(step) or tally.step(step)
        s[2] += 1
        h = s[3]
        h[key] = h.get(key, 0) + 1
        sec = (now - self.t0) // 1_000_000_000
        per = tally.seconds.get(sec)
        if per is None:
            per = tally.seconds[sec] = [0, {}]
        per[0] += 1
        ms = us // 1000
        h = per[1]
        h[ms] = h.get(ms, 0) + 1
        if self.read_every:
            self._read_count += 1
            if self._read_count % self.read_every == 0 and conn.connected:
                conn.request({"t": "read", "room": room, "seq": seq}, None)

    def _watch_gap(self, conn: Conn, room: str, state: RoomState) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven without a loop (the accounting's own tests)
            return
        state.gap_check = True
        loop.call_later(GAP_GRACE_S, self._gap_check, conn, room)

    def _gap_check(self, conn: Conn, room: str) -> None:
        state = conn.rooms.get(room)
        if state is None:
            return
        state.gap_check = False
        if state.ahead and conn.connected:
            conn.sync(room, state.last)

    def on_ack(self, conn: Conn, d: dict[str, Any]) -> None:
        pending = conn.pending.pop(d["re"], None)
        if pending is None:
            return
        sent_ns, room, step, frame = pending
        if room is None:
            return  # read, typing
        tally = self.tally
        seq = d.get("seq")
        cid = frame.get("cid") if frame is not None else None
        # A cid acked twice (a retry) must get one seq: else it was stored twice.
        device_cid = f"{conn.index}:{cid}"  # a cid is unique per device
        if (
            cid is not None
            and seq is not None
            and self.acked_cids.setdefault(device_cid, seq) != seq
        ):
            tally.stored_twice += 1
        us = (time.time_ns() - sent_ns) // 1000
        key = us // 100
        tally.ack_latency[key] = tally.ack_latency.get(key, 0) + 1
        tally.acked += 1
        tally.step(step)[1] += 1
        tally.acked_by_room[room] = tally.acked_by_room.get(room, 0) + 1
        seq = d.get("seq")
        if seq is not None:
            state = conn.rooms.get(room)
            if state is not None:
                state.fill(seq)
                if state.ahead and not state.gap_check:
                    state.gap_check = True
                    asyncio.get_running_loop().call_later(GAP_GRACE_S, self._gap_check, conn, room)

    def on_batch(self, conn: Conn, d: dict[str, Any]) -> None:
        conn.pending.pop(d["re"], None)
        conn.syncing -= 1
        room = d["room"]
        state = conn.rooms.get(room)
        if state is None:
            return
        last = state.last
        if state.synced is None:
            state.synced = set()
        now = time.time_ns()
        for item in d["items"]:
            seq = item.get("seq")
            if seq is not None and state.fill(seq):
                state.synced.add(seq)
                if conn.final:
                    self.tally.recovered_at_end += 1
                # Events (membership changes) fill positions too; only messages count.
                if item.get("t") == "msg":
                    self.tally.caught_up += 1
                    body = item.get("body")
                    gap = (now - _stamp(body)[0]) // 1000 if body else 0
                    if conn.stalled:
                        if gap > self.tally.longest_stalled_gap_us:
                            self.tally.longest_stalled_gap_us = gap
                    elif gap > self.tally.longest_sync_gap_us:
                        self.tally.longest_sync_gap_us = gap
            last = max(last, seq or 0)
        if d.get("more") and conn.connected:
            conn.sync(room, last)

    # -- reporting

    def snapshot(self, full: bool = False) -> dict[str, Any]:
        t = self.tally
        usage = resource.getrusage(resource.RUSAGE_SELF)
        snap: dict[str, Any] = {
            "connections": self.connected,
            "sent": t.sent,
            "acked": t.acked,
            "errors": t.errors,
            "delivered": t.delivered,
            "caught_up": t.caught_up,
            "duplicates": t.duplicates,
            "out_of_order": t.out_of_order,
            "ephemeral": t.ephemeral,
            "connects": t.connects,
            "connect_failures": t.connect_failures,
            "disconnects": t.disconnects,
            "churned": t.churned,
            "stalled": t.stalled,
            "stored_twice": t.stored_twice,
            "recovered_at_end": t.recovered_at_end,
            "longest_sync_gap_us": t.longest_sync_gap_us,
            "longest_stalled_gap_us": t.longest_stalled_gap_us,
            "resent": t.resent,
            "close_codes": t.close_codes,
            "syncing": sum(c.syncing for c in self.conns),
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_kib": usage.ru_maxrss,
            "steps": {k: [s[0], s[1], s[2]] for k, s in t.steps.items()},
            "error_samples": self.errors[:5],
        }
        if full:
            latency: dict[int, int] = {}
            for step in t.steps.values():
                hist_add(latency, step[3])
            snap["latency"] = latency
            snap["ack_latency"] = t.ack_latency
            snap["step_hists"] = {k: s[3] for k, s in t.steps.items()}
            snap["seconds"] = {k: [v[0], v[1]] for k, v in t.seconds.items()}
            snap["t0_ns"] = self.t0
            snap["acked_by_room"] = t.acked_by_room
            positions: dict[str, list[int]] = {}  # room -> [states, filled, max seq]
            for conn in self.conns:
                for room, state in conn.rooms.items():
                    p = positions.get(room)
                    if p is None:
                        p = positions[room] = [0, 0, 0]
                    p[0] += 1
                    p[1] += state.last + len(state.ahead)
                    top = max(state.ahead) if state.ahead else state.last
                    p[2] = max(p[2], top)
            snap["positions"] = positions
            gaps = [
                f"gap: room {room} device {conn.spec.device_id}: complete up to {state.last},"
                f" then {sorted(state.ahead)[:5]}"
                for conn in self.conns
                for room, state in conn.rooms.items()
                if state.ahead
            ]
            snap["anomalies"] = self.anomalies + gaps[:20]
        return snap


def _resume(sock: Any) -> None:
    if not sock.is_closing():
        sock.resume_reading()


@contextlib.contextmanager
def quiet_picows() -> Any:
    logging.getLogger("picows").setLevel(logging.CRITICAL)
    yield
