"""A client session piped into a server session without sockets or a loop, in the
style of h11's paired connections (``tests/helpers.py``): what one side transmits is
bytes, handed to the other side's ``receive`` by :meth:`Link.pump`.

:class:`Node` is the application behind the server sessions: rooms whose items get the
next seq, sends deduplicated by (device, cid), a to-device queue; the least a node must
do for the protocol's guarantees to be observable. Timers the client session asks for
are collected in :attr:`Link.timers`, for the test to fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protocol import ClientSession, ServerSession, decode_server_frame, encode
from protocol.client_session import (
    CatchUpLater,
    Deliver,
    Failed,
    HelloRefused,
    Reconnect,
    Replied,
    Request,
    RetryLater,
    SessionEvent,
    Stopped,
    Transmit,
    Welcomed,
)
from protocol.errors import ErrorCode
from protocol.frames import (
    Ack,
    Batch,
    ClientFrame,
    Error,
    Hello,
    Msg,
    Ping,
    Pong,
    RoomInfo,
    Send,
    ServerFrame,
    Sync,
    ToDeviceAck,
    ToDeviceMsg,
    Welcome,
)

__all__ = ["Link", "Node"]


@dataclass
class Node:
    """Rooms, their timelines and the devices' to-device queues."""

    timelines: dict[str, list[Msg]] = field(default_factory=dict)
    by_cid: dict[tuple[str, str], Msg] = field(default_factory=dict)
    queued: dict[str, dict[int, ToDeviceMsg]] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    verified: bool = True
    refuse_hello: ErrorCode | None = None
    next_tid: int = 1

    def post(self, room: str, sender: str, device: str, cid: str, body: bytes) -> Msg:
        """Commit a message (once per cid) and push it to the other attached links."""
        known = self.by_cid.get((device, cid))
        if known is not None:
            return known
        timeline = self.timelines.setdefault(room, [])
        msg = Msg(room, len(timeline) + 1, sender, device, cid, 1000 + len(timeline), body)
        timeline.append(msg)
        self.by_cid[(device, cid)] = msg
        for link in self.links:
            if link.connected and link.server.verified and link.device != device:
                link.push(msg)
        return msg

    def queue_to_device(self, device: str, body: bytes) -> int:
        tid = self.next_tid
        self.next_tid += 1
        self.queued.setdefault(device, {})[tid] = ToDeviceMsg(tid, "u0", "d0", 1, body)
        return tid

    def rooms(self) -> tuple[RoomInfo, ...]:
        return tuple(
            RoomInfo(room, "group", "open", "member", len(items), 0)
            for room, items in self.timelines.items()
        )


class Link:
    """One device's connection to ``node``: its client session, the server session of
    the current connection, and the bytes in flight between them."""

    def __init__(
        self,
        node: Node,
        client: ClientSession,
        device: str = "d1",
        max_inflight: int = 64,
        send_queue: int = 2048,
    ) -> None:
        self.node = node
        self.client = client
        self.device = device
        self.limits = (max_inflight, send_queue)
        self.server = ServerSession(*self.limits)
        self.connected = False
        self.ending: int | None = None  # close code the node sends once its frames are out
        self.to_server: list[bytes] = []
        self.to_client: list[bytes] = []
        self.delivered: list[Msg | object] = []
        self.replies: dict[Request, ServerFrame] = {}
        self.failures: list[tuple[Request, Error | None]] = []
        self.timers: list[RetryLater | CatchUpLater | Reconnect] = []
        self.stopped: Stopped | None = None
        self.refused: Error | None = None
        self.welcomes = 0
        self.held: list[ClientFrame] = []  # requests the node does not answer yet
        self.hold = False
        self.sent: list[ClientFrame] = []  # every frame the client transmitted
        node.links.append(self)

    # -- the wire

    def dial(self) -> None:
        """A new connection: a fresh server session, the client's hello on the wire."""
        self.server = ServerSession(*self.limits)
        self.connected = True
        self.ending = None
        self.to_server.clear()
        self.to_client.clear()
        self.client.connect()
        hello_id = self.client.opened()
        self.to_server.append(encode(Hello(hello_id, "token", self.device)))

    def drop(self, code: int | None = None) -> None:
        """The connection ends (``code`` None: as a network failure); what was in flight
        is lost."""
        self.connected = False
        self.to_server.clear()
        self.to_client.clear()
        self.held.clear()
        self.client.closed(code)
        self.act()

    def close(self, code: int) -> None:
        """The node closes with ``code`` after the frames it queued; it reads no more."""
        self.ending = code
        self.to_server.clear()

    def push(self, frame: ServerFrame) -> None:
        self.to_client.append(encode(frame))

    def pump(self) -> None:
        """Move bytes both ways until neither side has anything more to say."""
        while self.connected and (self.to_server or self.to_client):
            if self.to_server and self.ending is None:
                self._server_receives(self.to_server.pop(0))
            elif self.to_client:
                self.client.receive(decode_server_frame(self.to_client.pop(0)))
                self.act()
            else:
                self.to_server.clear()
        if self.connected and self.ending is not None:
            code, self.ending = self.ending, None
            self.drop(code)

    def act(self) -> None:
        for event in self.client.events():
            self._act(event)

    def fire(self, kind: type[RetryLater | CatchUpLater | Reconnect]) -> None:
        """The first pending timer of ``kind`` is due."""
        timer = next(t for t in self.timers if isinstance(t, kind))
        self.timers.remove(timer)
        if isinstance(timer, RetryLater):
            self.client.retry(timer.request)
        elif isinstance(timer, CatchUpLater):
            self.client.gap_expired(timer.room)
        else:
            self.dial()
        self.act()
        self.pump()

    def release(self) -> None:
        """Answer the requests the node held."""
        held, self.held = self.held, []
        for frame in held:
            self._answer(frame)
            self.server.done()
        self.pump()

    # -- the client's side

    def _act(self, event: SessionEvent) -> None:
        if isinstance(event, Transmit):
            frame = event.frame
            self.sent.append(frame)
            if self.connected:
                self.to_server.append(encode(frame))
        elif isinstance(event, Deliver):
            self.delivered.append(event.item)
        elif isinstance(event, Replied):
            self.replies[event.request] = event.frame
        elif isinstance(event, Failed):
            self.failures.append((event.request, event.error))
        elif isinstance(event, RetryLater | CatchUpLater | Reconnect):
            self.timers.append(event)
        elif isinstance(event, Stopped):
            self.stopped = event
        elif isinstance(event, HelloRefused):
            self.refused = event.error
        elif isinstance(event, Welcomed):
            self.welcomes += 1

    def request(self, make: Callable[[int], ClientFrame]) -> Request:
        """The application's request; its reply lands in ``replies[request]``."""
        request = self.client.request(make)
        self.act()
        self.pump()
        return request

    # -- the node's side

    def _server_receives(self, data: bytes) -> None:
        outcome = self.server.receive(data)
        if outcome.reply is not None:
            self.push(outcome.reply)
        if outcome.close is not None:
            self.close(outcome.close)
            return
        frame = outcome.frame
        if frame is None:
            return
        refusal = self.server.admit(frame)
        if refusal is not None:
            self.push(refusal)
        elif isinstance(frame, Hello):
            self._hello(frame)
        elif self.hold:
            self.held.append(frame)
        else:
            self._answer(frame)
            self.server.done()

    def _hello(self, hello: Hello) -> None:
        node = self.node
        if node.refuse_hello is not None:
            self.push(Error(node.refuse_hello, "refused", hello.id, 1.0))
            self.close(self.server.refuse(node.refuse_hello))
            return
        self.server.accept()
        if not node.verified:
            self.push(Welcome(hello.id, "u1", self.device, False, ()))
            return
        self._join(hello.id)

    def _join(self, re: int) -> None:
        self.server.joined()
        self.push(Welcome(re, "u1", self.device, True, self.node.rooms()))
        self._replay()

    def _replay(self) -> None:
        """As the gateway: as much of the queue as the replay window allows."""
        queued = self.node.queued.get(self.device, {})
        space = self.server.replay_window - len(self.to_client)
        while limit := self.server.replay_limit(space):
            after = self.server.replay_after or 0
            page = [m for tid, m in sorted(queued.items()) if tid > after][:limit]
            for msg in page:
                self.push(msg)
            space -= len(page)
            self.server.replayed(len(page), page[-1].tid if page else after, limit)

    def _answer(self, frame: ClientFrame) -> None:
        node = self.node
        if self.server.gated(frame):
            if not node.verified:
                self.push(Error(ErrorCode.IDENTITY_UNVERIFIED, "not verified", frame.id))
                return
            self._join(0)
        if isinstance(frame, Send):
            msg = node.post(frame.room, "u1", self.device, frame.cid, frame.body)
            self.push(Ack(frame.id, msg.seq, msg.ts))
        elif isinstance(frame, Sync):
            items = [m for m in node.timelines.get(frame.room, []) if m.seq > frame.after]
            page = tuple(items[: frame.limit])
            self.push(Batch(frame.id, frame.room, page, len(items) > frame.limit))
        elif isinstance(frame, ToDeviceAck):
            for tid in frame.tids:
                node.queued.get(self.device, {}).pop(tid, None)
            self.push(Ack(frame.id))
            if self.server.replay_due(frame):
                self._replay()
        elif isinstance(frame, Ping):
            self.push(Pong(frame.id))
        else:
            self.push(Ack(frame.id))
