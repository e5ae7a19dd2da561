"""Local fan-out: which local connections belong to which room, and broker plumbing.

Invariants:
- ``conn in self._rooms[r]`` iff ``r in conn.rooms``; a room key exists only while it
  has a local connection, and the node is subscribed to that room's channel exactly
  while the key exists (and to a user's channel while the user has a connection here).
- A connection is attached to a room only after the database said its user is a
  member; it is detached when a ``member.left`` for its user passes through. So
  "attached" answers "is a member" from memory, without a database read.
- Fan-out never awaits a client: ``Peer.push`` only enqueues.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from .broker import Broker, room_channel, user_channel
from .envelope import Envelope, decode_envelope
from .metrics import METRICS, frame_type
from .presence import Presence
from .probe import probe_received
from .tasks import Background

__all__ = ["Hub", "ItemPublication", "Peer"]

# (room id, encoded item frame, seq, device not to deliver to, again): see publish_item.
ItemPublication = tuple[str, bytes, int, str | None, bool]

log = logging.getLogger("confrere.hub")

RESYNC_SPREAD_S = 1.0
# Publications of a hub start with this byte (never the first of a msgpack map) and
# the node's id, so each node recognises its own echo without decoding it.
_TAGGED = b"\xc1"


class Peer(Protocol):
    """A local connection as the hub sees it."""

    user_id: str
    device_id: str
    rooms: set[str]

    def push(self, data: bytes) -> None:
        """Queue bytes for the socket; never blocks (overflow disconnects the peer)."""

    def resync(self) -> None:
        """Broker publications may have been lost: make the client catch up by seq."""


class Hub:
    def __init__(self, broker: Broker, presence: Presence) -> None:
        self.broker = broker
        self.presence = presence
        self._rooms: dict[str, set[Peer]] = {}
        self._users: dict[str, set[Peer]] = {}
        self._tasks = Background(log, "broker subscription change failed")
        self._seen: dict[str, int] = {}  # room -> highest seq delivered here
        self._caught: dict[str, set[int]] = {}  # room -> seqs the catch-up handed out
        self._tag = _TAGGED + secrets.token_bytes(8)  # this node's publications
        # Whether to publish at all: on the in-process broker a publication of ours
        # would only come back as the echo we drop.
        self._shared = broker.shared
        self.deliveries = 0
        # Called for a "revoke" envelope on a user channel (server.revocation).
        self.on_revoke: Callable[[str, Envelope], None] | None = None

    async def start(self) -> None:
        await self.broker.start(self._on_message, self._on_reset)
        await self.presence.start()

    async def close(self) -> None:
        await self.presence.close()
        await self.broker.close()

    @property
    def connections(self) -> int:
        return sum(len(p) for p in self._users.values())

    # -- membership of local connections

    async def connect(self, peer: Peer, room_ids: Iterable[str]) -> None:
        peers = self._users.get(peer.user_id)
        if peers is None:
            peers = self._users[peer.user_id] = set()
        peers.add(peer)
        # One subscription for the user's channel and every room new on this node
        # (a broker command each was a large share of a hello's cost).
        channels = [room_channel(r) for r in room_ids if self._add(peer, r)]
        await self.broker.subscribe(user_channel(peer.user_id), *channels)
        await self.presence.connected(peer.user_id)

    async def disconnect(self, peer: Peer) -> None:
        for room_id in list(peer.rooms):
            await self.detach(peer, room_id)
        peers = self._users.get(peer.user_id)
        if peers is not None and peer in peers:
            await self.presence.disconnected(peer.user_id)
            peers.discard(peer)
            if not peers:
                del self._users[peer.user_id]
            await self._sync_user(peer.user_id)

    async def attach(self, peer: Peer, room_id: str) -> None:
        if self._add(peer, room_id):
            await self._sync_room(room_id)

    async def detach(self, peer: Peer, room_id: str) -> None:
        if self._remove(peer, room_id):
            await self._sync_room(room_id)

    # Subscriptions follow the maps, read when the broker call is made rather than when
    # it was decided: a change scheduled for later (from a broker callback, which cannot
    # await) and a change awaited now may run in either order, and whichever runs last
    # must leave the broker as the maps say. Brokers' subscribe/unsubscribe are
    # idempotent, so repeating one is harmless.

    async def _sync_room(self, room_id: str) -> None:
        if room_id in self._rooms:
            await self.broker.subscribe(room_channel(room_id))
        else:
            await self.broker.unsubscribe(room_channel(room_id))

    async def _sync_user(self, user_id: str) -> None:
        if user_id in self._users:
            await self.broker.subscribe(user_channel(user_id))
        else:
            await self.broker.unsubscribe(user_channel(user_id))

    def _add(self, peer: Peer, room_id: str) -> bool:
        """Attach; true if the room is new on this node (subscribe to its channel)."""
        peers = self._rooms.get(room_id)
        new = peers is None
        if peers is None:
            peers = self._rooms[room_id] = set()
        peers.add(peer)
        peer.rooms.add(room_id)
        return new

    def _remove(self, peer: Peer, room_id: str) -> bool:
        """Detach; true if the room has no local connection left (unsubscribe)."""
        peer.rooms.discard(room_id)
        peers = self._rooms.get(room_id)
        if peers is None:
            return False
        peers.discard(peer)
        if peers:
            return False
        del self._rooms[room_id]
        self._seen.pop(room_id, None)
        return True

    def is_attached(self, peer: Peer, room_id: str) -> bool:
        return room_id in peer.rooms

    # -- publishing (called by handlers after a commit)
    #
    # Local connections get a publication at once, from memory; the broker carries it
    # to the other nodes, tagged with this node's id so that its echo is dropped here.
    # A broker outage thus never stops fan-out between two members on the same node.

    async def publish_item(
        self,
        room_id: str,
        frame: bytes,
        seq: int,
        *,
        skip: str | None = None,
        join: tuple[str, ...] | None = None,
        leave: str | None = None,
        again: bool = False,
    ) -> None:
        """``again``: a retried cid's item, whose first fan-out may not have happened;
        a node that already delivered that far in the room drops it."""
        env = Envelope(
            "item", frame, room=room_id, skip=skip, join=join, leave=leave, seq=seq, again=again
        )
        if join:
            joined = Envelope("joined", frame, room=room_id)
            for user_id in join:
                self._deliver_joined(user_id, joined)
            if self._shared:
                data = self._tag + joined.encode()
                for user_id in join:
                    await self.broker.publish(user_channel(user_id), data)
        self._deliver_room(env)
        if self._shared:
            await self.broker.publish(room_channel(room_id), self._tag + env.encode())

    async def publish_items(self, items: Sequence[ItemPublication]) -> None:
        """Plain timeline items (no join or leave), in order; the broker is waited on
        once for them all (a batch of sends committed together)."""
        out: list[tuple[str, bytes]] = []
        tag, shared = self._tag, self._shared
        for room_id, frame, seq, skip, again in items:
            env = Envelope("item", frame, room=room_id, skip=skip, seq=seq, again=again)
            self._deliver_room(env)
            if shared:
                out.append((room_channel(room_id), tag + env.encode()))
        if out:
            await self.broker.publish_many(out)

    async def publish_ephemeral(self, room_id: str, frame: bytes, skip: str | None) -> None:
        env = Envelope("eph", frame, room=room_id, skip=skip)
        self._deliver_room(env)
        if self._shared:
            await self.broker.publish(room_channel(room_id), self._tag + env.encode())

    async def publish_ephemerals(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Ephemeral events to every attached connection of their rooms, ``(room id,
        frame)`` each; the broker is waited on once for them all."""
        out: list[tuple[str, bytes]] = []
        for room_id, frame in items:
            env = Envelope("eph", frame, room=room_id)
            self._deliver_room(env)
            if self._shared:
                out.append((room_channel(room_id), self._tag + env.encode()))
        if out:
            await self.broker.publish_many(out)

    async def publish_to_device(self, user_id: str, device_id: str, frame: bytes) -> None:
        env = Envelope("device", frame, device=device_id)
        self._deliver_device(user_id, env)
        if self._shared:
            await self.broker.publish(user_channel(user_id), self._tag + env.encode())

    # -- receiving (broker callbacks; synchronous: no await between lookup and push)

    def _on_message(self, channel: str, data: bytes) -> None:
        if data[:1] == _TAGGED:
            if data[: len(self._tag)] == self._tag:
                return  # our own publication: delivered locally already
            data = data[len(self._tag) :]
        try:
            env = decode_envelope(data)
        except Exception:
            log.exception("undecodable envelope on %s", channel)
            return
        if env.kind in ("item", "eph"):
            if self._caught and env.seq is not None and env.room in self._caught:
                caught = self._caught[env.room]
                if env.seq in caught:  # handed out from the database already
                    caught.discard(env.seq)
                    return
            self._deliver_room(env)
        elif env.kind == "joined":
            self._deliver_joined(channel[2:], env)
        elif env.kind == "device":
            self._deliver_device(channel[2:], env)
        elif env.kind == "probe":
            probe_received(env.frame)
        elif env.kind == "revoke" and self.on_revoke is not None:
            self.on_revoke(channel[2:], env)

    def _deliver_device(self, user_id: str, env: Envelope) -> None:
        for peer in list(self._users.get(user_id, ())):
            if peer.device_id == env.device:
                peer.push(env.frame)
                self.deliveries += 1
                METRICS.frames_out.inc("to_device")

    # -- what the catch-up (server.catchup) needs

    def local_rooms(self) -> list[str]:
        """Rooms with at least one local connection."""
        return list(self._rooms)

    def seen(self, room_id: str) -> int | None:
        """The highest seq of the room delivered here (live), if any."""
        return self._seen.get(room_id)

    def note_seen(self, room_id: str, seq: int) -> None:
        """The room's connections here have everything up to ``seq`` (a welcome read
        the room's ``last_seq`` after subscribing): the catch-up starts from it."""
        if room_id in self._rooms and seq > self._seen.get(room_id, 0):
            self._seen[room_id] = seq

    def deliver_item(
        self, room_id: str, seq: int, frame: bytes, leave: str | None, skip: str | None
    ) -> None:
        """Hand a timeline item read from the database to the room's local connections
        but ``skip``'s. Should the broker bring the same item later (a publication
        that waited in another node's queue), it is dropped: delivered once."""
        self._caught.setdefault(room_id, set()).add(seq)
        env = Envelope("item", frame, room=room_id, skip=skip, leave=leave, seq=seq)
        self._deliver_room(env)

    def forget_caught(self) -> None:
        """The broker has been healthy a while: no late publication is expected."""
        self._caught.clear()

    def _deliver_room(self, env: Envelope) -> None:
        assert env.room is not None
        peers = self._rooms.get(env.room)
        if not peers:
            return
        if env.seq is not None:
            seen = self._seen.get(env.room, 0)
            if env.again and env.seq <= seen:
                return  # delivered here already (or a later one was: clients sync gaps)
            if env.seq > seen:
                self._seen[env.room] = env.seq
        started = time.perf_counter()
        frame, skip, join, leave = env.frame, env.skip, env.join, env.leave
        leaving: list[Peer] = []
        delivered = 0
        for peer in list(peers):
            if peer.device_id == skip or (join and peer.user_id in join):
                continue
            peer.push(frame)
            delivered += 1
            if leave is not None and peer.user_id == leave:
                leaving.append(peer)
        self.deliveries += delivered
        METRICS.fanout.observe(time.perf_counter() - started)
        METRICS.frames_out.inc(frame_type(frame), delivered)
        for peer in leaving:
            if self._remove(peer, env.room):
                self._tasks.spawn(self._sync_room(env.room))

    def _deliver_joined(self, user_id: str, env: Envelope) -> None:
        assert env.room is not None
        for peer in list(self._users.get(user_id, ())):
            if env.room not in peer.rooms and self._add(peer, env.room):
                self._tasks.spawn(self._sync_room(env.room))
            peer.push(env.frame)
            self.deliveries += 1
            METRICS.frames_out.inc("event")

    def _on_reset(self) -> None:
        """Publications may have been lost: every local client must catch up by seq.
        Spread over ``RESYNC_SPREAD_S`` so that a large node's clients do not all
        reconnect in the same instant."""
        log.warning("broker reset: asking %d connections to resync", self.connections)
        loop = asyncio.get_running_loop()
        for peers in self._users.values():
            for peer in list(peers):
                loop.call_later(random.uniform(0, RESYNC_SPREAD_S), peer.resync)
