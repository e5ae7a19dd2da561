"""The load generator: many cheap WebSocket clients in one process (picows), and the
accounting of every delivery.

A worker process runs one :class:`Generator`; the coordinating command drives it
through a pipe (see :mod:`loadtest.workers`). Each simulated device is a
:class:`~protocol.client_session.ClientSession` (the SDK's: requests and their retries,
resends after a reconnect, catch-up by sync, the close-code policy and its backoff)
behind a picows socket; the hot frames (``msg``, ``ack``) are unpacked by hand, and the
floor server's smaller frames pass the same way. It checks each delivery:

- latency: every body starts with the sender's wall-clock time (ns, 8 bytes) and the
  benchmark step (1 byte); receivers subtract it from their own clock (same machine);
- loss, duplicates, order: per (connection, room), ``last`` is the highest seq up to
  which every position was either delivered or is the connection's own message (its
  ack says so), ``ahead`` the positions filled beyond it: the session's ``last_seq`` and
  held items (it never syncs a live gap here, ``gap_grace=None``: that gap is a loss to
  report). A live delivery the session had already is a duplicate; one below the
  highest live seq seen is out of order. After a reconnect, ``sync`` fills the gap
  (those items count as caught up, not as live deliveries). At the end every position
  up to the room's final seq must be filled: what is not was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import random
import resource
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import msgpack
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from protocol import ClientSession, ClientStatus
from protocol.client_session import (
    Deliver,
    Failed,
    Reconnect,
    Replied,
    Request,
    RetryLater,
    SessionEvent,
    Stopped,
    Transmit,
    Welcomed,
)
from protocol.codec import server_frame
from protocol.frames import Ack, Event, Msg, Read, Send, ServerFrame, Typing

__all__ = ["GenConfig", "Generator", "UserSpec", "hist_add"]

log = logging.getLogger("loadtest.gen")

SUBPROTOCOL_HEADERS = {"Sec-WebSocket-Protocol": "confrere.v1"}
# The web client renders what arrived once per animation frame and then marks the open
# room read up to its latest message, sending at most one `read` per room per second
# (SPEC.md §4.4; what was read meanwhile goes when that second ends): read-all does the
# same, every room of the connection being open.
READ_TICK_S = 0.016
READ_EVERY_S = 1.0
# A body has the shape of an end-to-end room message (SPEC.md §11.2, which the server
# checks): version 0x01, then the stamp where the session id would be, padded to at
# least the shortest message (MIN_BODY).
STAMP = struct.Struct("<xqB")  # 0x01, sender wall clock (ns), benchmark step
MIN_BODY = 125  # version, session id, index, nonce, AEAD tag, signature


def _stamp(body: bytes) -> tuple[int, int]:
    sent_ns, step = STAMP.unpack_from(body)
    return sent_ns, step


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
    # Every delivery read, as the web client does: per connection, the tick after a
    # delivery, one receipt per room up to the highest seq delivered in it, and at most
    # one per room per READ_EVERY_S (the rest at the end of that second).
    read_all: bool = False
    typing_fraction: float = 0.0  # share of sends preceded by a typing notice
    burst: float = 0.0  # chance that a send is followed at once by another from the same user
    churn_per_min: float = 0.0  # share of connections dropped (and resumed) each minute
    connect_concurrency: int = 200


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
    reads_sent: int = 0  # read receipts sent (first attempts)
    reads_acked: int = 0
    connects: int = 0
    connect_failures: int = 0
    connect_retries: int = 0  # dial attempts that failed and were tried again
    last_welcome_ns: int = 0  # wall clock of the latest welcome (a storm's end)
    disconnects: int = 0  # not asked for by us
    churned: int = 0  # dropped on purpose (mobile churn)
    resent: int = 0  # sends repeated after a reconnect (no ack had come) or a retryable error
    stalled: int = 0  # connections made to stop reading (loadtest.faults)
    longest_stalled_gap_us: int = 0  # the longest wait of those (their own doing)
    close_codes: dict[str, int] = field(default_factory=dict)  # closes by the server
    ack_latency: dict[int, int] = field(default_factory=dict)
    read_ack_latency: dict[int, int] = field(default_factory=dict)
    steps: dict[int, list[Any]] = field(
        default_factory=dict
    )  # step -> [sent, acked, delivered, hist]
    seconds: dict[int, list[Any]] = field(default_factory=dict)  # second -> [delivered, hist 1 ms]
    acked_by_room: dict[str, int] = field(default_factory=dict)
    # step -> [GC pause ms summed, longest GC pause ms, longest event-loop lag ms]: this
    # process's own stalls, which delay every delivery it measures meanwhile.
    stalls: dict[int, list[float]] = field(default_factory=dict)

    def step(self, k: int) -> list[Any]:
        s = self.steps.get(k)
        if s is None:
            s = self.steps[k] = [0, 0, 0, {}]
        return s


class Conn(WSListener):
    """One simulated device: its client session behind a picows socket."""

    __slots__ = (
        "close_code",
        "closing",
        "connected",
        "gen",
        "index",
        "next_delay",
        "read_at",
        "read_due",
        "session",
        "spec",
        "stalled",
        "synced",
        "top",
        "transport",
        "unread",
        "welcomed",
    )

    def __init__(self, gen: Generator, index: int, spec: UserSpec) -> None:
        self.gen = gen
        self.index = index
        self.spec = spec
        # Resumes rooms from what the welcome says (no history); a live gap stays open.
        self.session = ClientSession(
            device=spec.device_id,
            from_start=False,
            gap_grace=None,
            items=False,
            random=gen.rng.random,
        )
        self.transport: WSTransport | None = None
        self.top: dict[str, int] = {}  # room -> highest live seq (out-of-order check)
        self.unread: dict[str, int] = {}  # room -> highest seq delivered, not yet receipted
        self.read_at: dict[str, float] = {}  # room -> when its last receipt went (loop time)
        self.read_due: set[str] = set()  # rooms whose receipt waits for its second to end
        # Positions filled by a sync after a reconnect: the same items may also arrive
        # live (published after the node attached us, committed before the sync read),
        # and that overlap is the protocol working, not a duplicate.
        self.synced: dict[str, set[int]] = {}
        self.welcomed: asyncio.Future[None] | None = None
        self.connected = False
        self.closing = False
        self.close_code: int | None = None
        self.next_delay = 0.0  # the session's last Reconnect delay
        self.stalled = False  # made to stop reading once: its waits are counted apart

    # -- picows callbacks

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.close_code = None
        spec = self.spec
        hello_id = self.session.opened()
        if self.gen.config.floor:
            hello = {"t": "hello", "id": hello_id, "rooms": list(spec.rooms)}
        else:
            hello = {"t": "hello", "id": hello_id, "token": spec.token, "device": spec.device_id}
        transport.send(WSMsgType.BINARY, _pack(hello))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if transport is not self.transport:
            return  # an attempt given up on, already reported by Generator.open
        was = self.connected
        self.connected = False
        self.transport = None
        gen = self.gen
        if self.welcomed is not None and not self.welcomed.done():
            self.welcomed.set_exception(ConnectionError("closed before welcome"))
        if was and not self.closing:
            gen.tally.disconnects += 1
            gen.connected -= 1
        elif was:  # closed by us (close_all); churn already counted it out
            gen.connected -= 1
        # Sends that got no ack are queued again by the session, sent after resuming
        # with the same cid: the server answers a stored one with its original seq.
        self.ended(self.close_code)
        if was and not self.closing and self.session.status is ClientStatus.BACKOFF:
            gen.reconnect_later(self, self.next_delay)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.BINARY:
            if frame.msg_type is WSMsgType.CLOSE:
                code = frame.get_close_code().value
                if self.connected and not self.closing:
                    codes = self.gen.tally.close_codes
                    codes[str(code)] = codes.get(str(code), 0) + 1
                self.close_code = code
                transport.disconnect()
            return
        d = _unpack(frame.get_payload_as_memoryview())
        if d["t"] == "msg":  # the hot path: one per delivery
            self.gen.on_msg(self, d)
        else:
            self.handle(d)

    # -- protocol

    def handle(self, d: dict[str, Any]) -> None:
        """One server frame, unpacked."""
        t = d["t"]
        gen = self.gen
        if t == "msg":
            gen.on_msg(self, d)
        elif t == "ack":
            self.session.receive(Ack(d["re"], d.get("seq"), d.get("ts")))
            self.act()
        elif t == "event":
            gen.tally.ephemeral += 1
        elif t == "welcome":
            rooms = [(r["id"], r.get("last_seq", 0)) for r in d.get("rooms", ())]
            self.session.welcomed(d["re"], d.get("user", ""), d.get("verified", True), rooms)
            self.act()
        else:  # batch, error, pong: rare, decoded in full
            reply = server_frame(d)
            if reply.T == "error":
                gen.tally.errors += 1
                gen.errors.append(f"{d.get('code')}: {d.get('message')}")
            self.session.receive(reply)
            self.act(synced=reply.T == "batch")

    def request(self, make: Callable[[int], Any], tag: Any = None) -> None:
        self.session.request(make, tag)
        self.act()

    def ended(self, code: int | None) -> float | None:
        """The connection or the attempt ended: the delay before dialing again, or None
        if the session says never (it is told once per connection)."""
        status = self.session.status
        if status is ClientStatus.BACKOFF:
            return self.next_delay
        if status is ClientStatus.STOPPED:
            return None
        self.session.closed(code)
        self.act()
        return self.next_delay if self.session.status is ClientStatus.BACKOFF else None

    def act(self, synced: bool = False) -> None:
        """Do what the session asks (``synced``: deliveries come from a sync)."""
        for event in self.session.events():
            self._act(event, synced)

    def _act(self, event: SessionEvent, synced: bool) -> None:
        gen = self.gen
        if isinstance(event, Transmit):
            request = event.request
            if self.transport is not None:
                self.transport.send(WSMsgType.BINARY, _pack(event.frame.to_wire()))
            if request.attempts > 1 and isinstance(request.frame, Send):
                gen.tally.resent += 1
        elif isinstance(event, Replied):
            gen.on_reply(event.request, event.frame)
        elif isinstance(event, Deliver):
            item = event.item  # else our own message, its position filled by its ack
            if synced and isinstance(item, Msg | Event):
                self.synced.setdefault(item.room, set()).add(item.seq)
                if isinstance(item, Msg):  # events (membership) fill positions, not counted
                    gen.tally.caught_up += 1
        elif isinstance(event, Welcomed):
            if event.opened:
                self.connected = True
                gen.connected += 1
                gen.tally.connects += 1
                gen.tally.last_welcome_ns = time.time_ns()
                if self.welcomed is not None and not self.welcomed.done():
                    self.welcomed.set_result(None)
        elif isinstance(event, RetryLater):
            asyncio.get_running_loop().call_later(event.delay, self.retry, event.request)
        elif isinstance(event, Reconnect):
            self.next_delay = event.delay
        elif isinstance(event, Failed | Stopped):
            pass  # counted as error frames; a stopped session is not dialed again

    def retry(self, request: Request) -> None:
        self.session.retry(request)
        self.act()


class Generator:
    """Holds this process's connections, offers load, keeps the tally."""

    def __init__(self, config: GenConfig, users: list[UserSpec]) -> None:
        self.config = config
        self.rng = random.Random(os.getpid())
        self.conns = [Conn(self, i, u) for i, u in enumerate(users)]
        self.tally = Tally()
        self.connected = 0
        self.errors: list[str] = []
        self.anomalies: list[str] = []  # samples of duplicates and gaps, for diagnosis
        self.run_tag = os.urandom(4).hex() + "-"
        self.rate = 0.0  # messages per second offered by this process
        self.step = 0
        self.t0 = time.time_ns()
        self.read_every = int(1 / config.read_fraction) if config.read_fraction > 0 else 0
        self._read_count = 0
        self._unread: set[Conn] = set()  # connections with deliveries to receipt
        self._read_timer: asyncio.TimerHandle | None = None
        self._reads_due = 0  # receipts waiting for their room's second to end
        self._cids = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._sender: asyncio.Task[None] | None = None
        self._churner: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._gc_started = 0.0
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

    async def open(self, conn: Conn, attempts: int = 10) -> None:
        """Dial until welcomed, waiting what the session's backoff says between
        attempts; give up after ``attempts`` (counted as a connect failure)."""
        config = self.config
        ip = config.source_ips[conn.index % len(config.source_ips)]
        for attempt in range(attempts):
            conn.closing = False
            conn.welcomed = asyncio.get_running_loop().create_future()
            conn.session.connect()
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
                transport, conn.transport = conn.transport, None
                if transport is not None:
                    conn.closing = True
                    transport.disconnect(False)
                delay = conn.ended(conn.close_code)
                if delay is None or attempt == attempts - 1:
                    self.tally.connect_failures += 1
                    self.errors.append(f"connect: {type(exc).__name__}: {exc}")
                    return
                self.tally.connect_retries += 1
                await asyncio.sleep(delay)

    def reconnect_later(self, conn: Conn, delay: float) -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._reconnect(conn, delay))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconnect(self, conn: Conn, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.open(conn)

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
            self._ticker = asyncio.get_running_loop().create_task(self._watch_stalls())
            gc.callbacks.append(self._on_gc)
        elif rate <= 0 and self._sender is not None:
            self._sender.cancel()
            self._sender = None
            if self._ticker is not None:
                self._ticker.cancel()
                self._ticker = None
            gc.callbacks.remove(self._on_gc)

    def _stalls(self) -> list[float]:
        s = self.tally.stalls.get(self.step)
        if s is None:
            s = self.tally.stalls[self.step] = [0.0, 0.0, 0.0]
        return s

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """A collection's pause (gc.callbacks), while load is offered."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            ms = (time.perf_counter() - self._gc_started) * 1000
            s = self._stalls()
            s[0] += ms
            s[1] = max(s[1], ms)

    async def _watch_stalls(self) -> None:
        """The event loop's lag, while load is offered: how much later than asked a
        10 ms sleep returns (this process's own pauses and waits for its core)."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + 0.01
            await asyncio.sleep(0.01)
            lag = max(0.0, loop.time() - asked) * 1000  # uvloop's timers may fire 1 ms early
            s = self._stalls()
            s[2] = max(s[2], lag)

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
        rng = self.rng
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
        config, rng = self.config, self.rng
        rooms = conn.spec.rooms
        room = rooms[0] if len(rooms) == 1 else rooms[rng.randrange(len(rooms))]
        if config.typing_fraction and rng.random() < config.typing_fraction:
            conn.request(partial(Typing, room=room, on=True))
        size = config.payload_min
        if config.payload_max > size:
            size = rng.randint(size, config.payload_max)
        step = self.step
        sent_ns = time.time_ns()
        stamp = b"\x01" + STAMP.pack(sent_ns, step)[1:]
        body = stamp + PAD[: max(size, MIN_BODY) - STAMP.size]
        self._cids += 1
        cid = f"{self.run_tag}{self._cids}"  # (device, cid) is unique forever
        conn.request(partial(Send, room=room, cid=cid, body=body), (sent_ns, step))
        self.tally.sent += 1
        self.tally.step(step)[0] += 1

    async def _churn_loop(self) -> None:
        """Drop a share of the connections each minute, spread over the minute; each
        comes back 1-5 s later and catches up by sync (mobile network changes)."""
        rng = self.rng
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
                    self.reconnect_later(conn, 3.0 * (0.5 + rng.random()))

    # -- receiving

    def on_msg(self, conn: Conn, d: dict[str, Any]) -> None:
        # The hot path of the generator: one call per delivery, kept to a few dict
        # operations (the session's order, the step's and the second's histograms).
        now = time.time_ns()
        room = d["room"]
        seq = d["seq"]
        tally = self.tally
        if not conn.session.fill(room, seq):
            synced = conn.synced.get(room)
            if synced is not None and seq in synced:
                synced.discard(seq)
            else:
                tally.duplicates += 1
                if len(self.anomalies) < 20:
                    self.anomalies.append(
                        f"duplicate: room {room} seq {seq} to device {conn.spec.device_id}"
                        f" (complete up to {conn.session.state.last_seq[room]},"
                        f" connected {conn.connected})"
                    )
            return
        top = conn.top
        if seq < top.get(room, 0):
            tally.out_of_order += 1
        else:
            top[room] = seq
        sent_ns, step = _stamp(d["body"])
        us = (now - sent_ns) // 1000
        key = us // 100
        tally.delivered += 1
        if conn.stalled:  # its reader froze on purpose: not the server's latency
            tally.longest_stalled_gap_us = max(tally.longest_stalled_gap_us, us)
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
        if self.config.read_all:
            if seq > conn.unread.get(room, 0):
                conn.unread[room] = seq
            self._unread.add(conn)
            if self._read_timer is None:
                self._read_timer = asyncio.get_running_loop().call_later(
                    READ_TICK_S, self._send_reads
                )
        elif self.read_every:
            self._read_count += 1
            if self._read_count % self.read_every == 0 and conn.connected:
                self.send_read(conn, room, seq)

    def _send_reads(self) -> None:
        """The tick of read-all: each connection receipts each room it got deliveries
        in, up to the highest, if no receipt went for that room in the last
        READ_EVERY_S; else that room's receipt goes when the second is over."""
        self._read_timer = None
        conns, self._unread = self._unread, set()
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in conns:
            if not conn.connected:
                conn.unread.clear()
                continue
            for room in [r for r in conn.unread if r not in conn.read_due]:
                last = conn.read_at.get(room)
                if last is None or now >= last + READ_EVERY_S:
                    self._send_unread(conn, room, now)
                else:
                    conn.read_due.add(room)
                    self._reads_due += 1
                    loop.call_at(last + READ_EVERY_S, self._send_due, conn, room)

    def _send_due(self, conn: Conn, room: str) -> None:
        conn.read_due.discard(room)
        self._reads_due -= 1
        if conn.connected and room in conn.unread:
            self._send_unread(conn, room, asyncio.get_running_loop().time())

    def _send_unread(self, conn: Conn, room: str, now: float) -> None:
        conn.read_at[room] = now
        self.send_read(conn, room, conn.unread.pop(room))

    def send_read(self, conn: Conn, room: str, seq: int) -> None:
        conn.request(partial(Read, room=room, seq=seq), time.time_ns())
        self.tally.reads_sent += 1

    def stall(self, seconds: float) -> bool:
        """Stop reading one connection for ``seconds`` (an app that froze): the server
        queues for it and closes it (4008) if the queue overflows; it then reconnects
        and catches up like any dropped connection."""
        for conn in self.conns:
            if conn.connected and conn.transport is not None:
                sock = conn.transport.underlying_transport
                sock.pause_reading()
                conn.stalled = True
                self.tally.stalled += 1
                asyncio.get_running_loop().call_later(seconds, _resume, sock)
                return True
        return False

    def on_reply(self, request: Request, frame: ServerFrame) -> None:
        """A request of ours got its reply; a send's ack carries its latency (its
        position was filled by the session through the ack)."""
        if not isinstance(frame, Ack) or request.tag is None:
            return  # an error (counted as such), typing
        tally = self.tally
        if isinstance(request.frame, Read):
            us = (time.time_ns() - request.tag) // 1000
            tally.read_ack_latency[us // 100] = tally.read_ack_latency.get(us // 100, 0) + 1
            tally.reads_acked += 1
            return
        sent_ns, step = request.tag
        assert isinstance(request.frame, Send)
        room = request.frame.room
        us = (time.time_ns() - sent_ns) // 1000
        key = us // 100
        tally.ack_latency[key] = tally.ack_latency.get(key, 0) + 1
        tally.acked += 1
        tally.step(step)[1] += 1
        tally.acked_by_room[room] = tally.acked_by_room.get(room, 0) + 1

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
            "reads_sent": t.reads_sent,
            "reads_acked": t.reads_acked,
            # Receipts still to go (the tick, or a room's second): a drain waits for them.
            "reads_held": self._reads_due + (self._read_timer is not None),
            "connects": t.connects,
            "connect_failures": t.connect_failures,
            "connect_retries": t.connect_retries,
            "last_welcome_ns": t.last_welcome_ns,
            "disconnects": t.disconnects,
            "churned": t.churned,
            "resent": t.resent,
            "stalled": t.stalled,
            "longest_stalled_gap_us": t.longest_stalled_gap_us,
            "close_codes": t.close_codes,
            "syncing": sum(c.session.catching_up for c in self.conns),
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_kib": usage.ru_maxrss,
            "steps": {k: [s[0], s[1], s[2]] for k, s in t.steps.items()},
            "stalls": {k: [round(v, 1) for v in s] for k, s in t.stalls.items()},
            "error_samples": self.errors[:5],
        }
        if full:
            latency: dict[int, int] = {}
            for step in t.steps.values():
                hist_add(latency, step[3])
            snap["latency"] = latency
            snap["ack_latency"] = t.ack_latency
            snap["read_ack_latency"] = t.read_ack_latency
            snap["step_hists"] = {k: s[3] for k, s in t.steps.items()}
            snap["seconds"] = {k: [v[0], v[1]] for k, v in t.seconds.items()}
            snap["t0_ns"] = self.t0
            snap["acked_by_room"] = t.acked_by_room
            positions: dict[str, list[int]] = {}  # room -> [states, filled, max seq]
            gaps: list[str] = []
            for conn in self.conns:
                session = conn.session
                for room, last in session.state.last_seq.items():
                    ahead = session.held(room)
                    p = positions.get(room)
                    if p is None:
                        p = positions[room] = [0, 0, 0]
                    p[0] += 1
                    p[1] += last + len(ahead)
                    p[2] = max(p[2], max(ahead) if ahead else last)
                    if ahead and len(gaps) < 20:
                        gaps.append(
                            f"gap: room {room} device {conn.spec.device_id}: complete up to"
                            f" {last}, then {sorted(ahead)[:5]}"
                        )
            snap["positions"] = positions
            snap["anomalies"] = self.anomalies + gaps
        return snap


def _resume(sock: Any) -> None:
    if not sock.is_closing():
        sock.resume_reading()


@contextlib.contextmanager
def quiet_picows() -> Any:
    logging.getLogger("picows").setLevel(logging.CRITICAL)
    yield
