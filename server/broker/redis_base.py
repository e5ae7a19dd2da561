"""What the Redis brokers share, plain Redis (``redis.py``) and Redis Cluster
(``redis_cluster.py``): the pipelined publisher with its bounded queue, and subscriber
links that reconnect, resubscribe and signal a reset.

Publishing: ``publish`` queues (bounded) and returns once its publication was sent to
Redis, or dropped: one task sends everything queued in one pipeline per round trip, so
concurrent publishers share the wait. A node acks a send only after that, so an acked
message was handed to Redis, not left in the queue of a node that died before
flushing it (its readers on other nodes would not have seen it until the room's next
message). Awaiting one PUBLISH per message would cap a node at a few
thousand messages/s and pile up connections; the pipeline carries tens of thousands.
While Redis is down, sends are still committed and acked, publications over the bound
are dropped and counted, and clients catch up after the reset. A failed pipeline is
dropped (and counted), never retried: it may have been partly delivered, and delivery
is at most once.

Subscribing: a *link* is one subscriber connection to one Redis server (a lean one,
``resp``: its publications are parsed in C and handed on as the bytes arrive; redis-py's
``PubSub.get_message`` cost a coroutine, a timeout and a dict per publication); the
plain broker has one link, the cluster broker one per master, and ``_route`` says which
link a channel belongs on. A link has no read timeout; liveness is checked by a PING
after each idle period (``IDLE_PING_S``), and a link whose PING stays unanswered for
twice that is dead. Connecting and confirming subscriptions have the same bound, so a
server that accepts connections but never answers cannot hold the repair up.

Any failure of a link (an error, a dead peer, Redis dropping us for falling behind
with ``client-output-buffer-limit pubsub``, or Redis unsubscribing us from a channel we
did not leave, as it does when the channel's slot moves to another master) wakes one
repair task. It drops the broken links, refreshes the routes (the cluster's slot map),
opens the links that are missing, subscribes every channel that is not where it
belongs, proves it with a round trip, and then calls ``on_reset`` so the node has its
clients resync: the publications in between are gone, and the database has them all.
It retries with bounded backoff until everything is in place; links that are fine keep
delivering meanwhile, so one master down does not stop the others' channels.
redis-py's own reconnect-and-resubscribe is never relied upon: it would hide the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from abc import ABC, abstractmethod
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError

from .base import MessageHandler, ResetHandler
from .resp import RespConnection, pack, reply_error

__all__ = [
    "FAILURES",
    "IDLE_PING_S",
    "ChannelRevoked",
    "Link",
    "Publication",
    "RedisBrokerBase",
    "no_retry",
]

log = logging.getLogger("confrere.broker.redis")

Publication = tuple[str, bytes]

FAILURES: tuple[type[BaseException], ...] = (
    RedisError,
    RedisClusterException,  # not a RedisError: slot not covered, no node to ask...
    OSError,
    asyncio.TimeoutError,
)

_SUBSCRIBE_CHUNK = 1000
_PIPELINE_MAX = 2000
IDLE_PING_S = 5.0  # a link that stayed quiet this long sends a PING
_BACKOFF_MIN_S = 0.05
_BACKOFF_MAX_S = 2.0


def no_retry() -> Retry:
    """For connections whose failures we handle: redis-py must not retry behind our back
    (a retried pipeline could deliver twice; a silently reconnected subscriber would
    hide a gap)."""
    return Retry(NoBackoff(), 0)


class ChannelRevoked(RedisError):
    """Redis unsubscribed us from a channel we did not leave (its slot moved)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Link:
    """One subscriber connection (a lean one: ``resp``), whose replies are handled as
    they arrive; a watchdog task proves it alive when it is quiet.

    ``channels`` is what has been sent to Redis (subscribed, or on its way); a lock keeps
    the wire in the order of its changes. The first failure is kept in ``failure``, the
    watchdog stops and ``on_failure`` is called; the link is then only closed, never
    reused.
    """

    def __init__(
        self,
        key: str,
        client: aioredis.Redis,
        *,
        sharded: bool,
        on_message: MessageHandler,
        on_failure: Callable[[], None],
        idle_ping_s: float = IDLE_PING_S,
    ) -> None:
        self.key = key
        self._idle_ping_s = idle_ping_s
        self._answer_within_s = 2 * idle_ping_s
        self.channels: set[str] = set()
        self.failure: BaseException | None = None
        self._client = client
        self._conn: RespConnection | None = None
        self._sharded = sharded
        self._subscribe_command = "SSUBSCRIBE" if sharded else "SUBSCRIBE"
        self._unsubscribe_command = "SUNSUBSCRIBE" if sharded else "UNSUBSCRIBE"
        self._on_message = on_message
        self._on_failure = on_failure
        self._lock = asyncio.Lock()
        self._leaving: Counter[str] = Counter()
        self._pongs: dict[bytes, asyncio.Future[None]] = {}
        self._tokens = itertools.count()
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.key or "redis"

    async def open(self) -> None:
        """Connect and start reading; raises if the server cannot be reached."""
        async with asyncio.timeout(self._answer_within_s):  # the handshake reads too
            self._conn = await RespConnection.open(self._client, self._on_reply, self.fail)
        if self._conn.lost is not None:
            raise self._conn.lost
        self._watchdog = asyncio.create_task(self._watch(), name=f"redis-subscriber {self.name}")
        self._watchdog.add_done_callback(self._watchdog_done)

    async def close(self) -> None:
        if self.failure is None:
            self.failure = ConnectionError("subscriber link closed")
        self._stop(self.failure)
        if self._watchdog is not None:
            await asyncio.wait([self._watchdog])  # cancelled or finished: never raises
        if self._conn is not None:
            self._conn.close()
        with contextlib.suppress(*FAILURES):
            await self._client.aclose()

    def fail(self, exc: BaseException) -> None:
        if self.failure is not None:
            return
        self.failure = exc
        self._stop(exc)
        self._on_failure()

    def _stop(self, exc: BaseException) -> None:
        if self._conn is not None:
            self._conn.abort(exc)  # calls fail() again: a no-op by then
        if self._watchdog is not None and not self._watchdog.done():
            self._watchdog.cancel()
        for waiter in self._pongs.values():
            if not waiter.done():
                waiter.set_exception(exc)
        self._pongs.clear()

    def _watchdog_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            self.fail(task.exception() or ConnectionError("subscriber watchdog stopped"))

    def _write(self, *command: str | bytes) -> None:
        assert self._conn is not None
        self._conn.write(pack(*command))

    def _groups(self, channels: list[str]) -> Iterable[list[str]]:
        """Channels in batches one (S)SUBSCRIBE may carry: a sharded command must name
        channels of one slot only."""
        if self._sharded:
            by_slot: dict[int, list[str]] = defaultdict(list)
            for channel in channels:
                by_slot[key_slot(channel.encode())].append(channel)
            groups: Iterable[list[str]] = by_slot.values()
        else:
            groups = [channels]
        for group in groups:
            for i in range(0, len(group), _SUBSCRIBE_CHUNK):
                yield group[i : i + _SUBSCRIBE_CHUNK]

    async def add(self, channels: Iterable[str], wanted: Callable[[str], bool]) -> int:
        """Subscribe to those of ``channels`` not yet sent that ``wanted`` accepts;
        returns how many were sent. Errors fail the link instead of raising."""
        async with self._lock:
            if self.failure is not None:
                return 0
            todo = [c for c in channels if c not in self.channels and wanted(c)]
            self.channels.update(todo)
            try:
                for group in self._groups(todo):
                    self._write(self._subscribe_command, *group)
            except FAILURES as exc:
                self.fail(exc)
            return len(todo)

    async def remove(self, channels: Iterable[str]) -> None:
        async with self._lock:
            todo = [c for c in channels if c in self.channels]
            self.channels.difference_update(todo)
            if self.failure is not None or not todo:
                return
            self._leaving.update(todo)
            try:
                for group in self._groups(todo):
                    self._write(self._unsubscribe_command, *group)
            except FAILURES as exc:
                self.fail(exc)

    async def confirm(self) -> None:
        """One round trip: returns once Redis has answered everything sent before, and
        raises if it refused any of it (the link has failed then)."""
        if self.failure is not None:
            raise ConnectionError(f"{self.name}: {self.failure}")
        token = f"confirm-{next(self._tokens)}".encode()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs[token] = waiter
        try:
            async with asyncio.timeout(self._answer_within_s):
                async with self._lock:  # after any (S)SUBSCRIBE being written
                    self._write("PING", token)
                await waiter
        except Exception as exc:
            self._pongs.pop(token, None)
            self.fail(exc)
            raise

    async def _watch(self) -> None:
        """Prove a quiet link alive: a PING after ``idle_ping_s`` without a byte from
        Redis; dead if nothing comes back within twice that."""
        conn = self._conn
        assert conn is not None
        while True:
            conn.heard = False
            await asyncio.sleep(self._idle_ping_s)
            if conn.heard:
                continue
            conn.heard = False
            self._write("PING", b"idle")
            await asyncio.sleep(self._answer_within_s)
            if not conn.heard:
                raise TimeoutError(f"{self.name} left a PING unanswered")

    def _on_reply(self, reply: Any) -> None:
        """Each reply of the connection, in order (a pub/sub push is a list)."""
        if type(reply) is list or isinstance(reply, list):  # RESP3 pushes subclass list
            kind = reply[0]
            if kind == b"message" or kind == b"smessage":
                channel = reply[1].decode()
                try:
                    self._on_message(channel, reply[2])
                except Exception:  # a bug in one delivery must not stop the fan-out
                    log.exception("broker message handler failed")
            elif kind == b"pong":
                self._pong(reply[1])
            elif kind == b"unsubscribe" or kind == b"sunsubscribe":
                channel = _text(reply[1])
                if self._leaving[channel] > 0:
                    self._leaving[channel] -= 1
                    if not self._leaving[channel]:
                        del self._leaving[channel]
                else:
                    raise ChannelRevoked(f"{self.name} unsubscribed us from {channel!r}")
        elif isinstance(reply, hiredis.ReplyError):
            raise reply_error(reply)
        elif isinstance(reply, bytes):  # PING's answer while subscribed to nothing
            self._pong(reply)

    def _pong(self, token: bytes) -> None:
        waiter = self._pongs.pop(token, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class RedisBrokerBase(ABC):
    """The Broker protocol over links and a pipelined publisher; subclasses say how to
    connect, publish a batch and route channels."""

    shared = True

    _sharded = False

    def __init__(self, *, max_queued: int, idle_ping_s: float) -> None:
        self._max_queued = max_queued
        self._idle_ping_s = idle_ping_s
        self._channels: set[str] = set()
        self._links: dict[str, Link] = {}
        self._queue: deque[Publication] = deque()
        self._sent: asyncio.Future[None] | None = None  # resolved when the queue drains
        self._wake = asyncio.Event()
        self._trouble = asyncio.Event()
        self._on_message: MessageHandler | None = None
        self._on_reset: ResetHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._to_subscribe: list[str] = []  # for the next subscribe round
        self._subscribe_waiters: list[asyncio.Future[None]] = []
        self._subscriber: asyncio.Task[None] | None = None
        self._closed = False
        self.published = 0
        self.dropped = 0
        self.losses = 0  # subscriber links lost
        self.resets = 0
        self._publish_failing = False
        self._links_broken = False

    @property
    def degraded(self) -> bool:
        return self._publish_failing or self._links_broken

    def _link_failed(self) -> None:
        self._links_broken = True
        self._trouble.set()

    # -- what subclasses provide

    @abstractmethod
    async def _open_publisher(self) -> None:
        """Connect the publisher side; raise if the broker cannot be reached."""

    @abstractmethod
    async def _close_connections(self) -> None:
        """Close the publisher side (and anything else but the links)."""

    @abstractmethod
    async def _send(self, batch: list[Publication]) -> int:
        """Send ``batch`` in one round trip; return how many failed, or raise if all did
        (or if it cannot tell). The publish loop backs off only when all did."""

    @abstractmethod
    def _subscriber_client(self, key: str) -> aioredis.Redis:
        """A client for link ``key``: no read timeout, no retry."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the broker is unreachable."""

    async def _refresh_routes(self) -> None:  # noqa: B027 (optional hook)
        """Learn where channels live now (the cluster's slot map)."""

    def _route(self, channel: str) -> str:
        """The key of the link ``channel`` belongs on; raises if none can serve it."""
        return ""

    def _link_keys(self) -> Collection[str]:
        """Links to keep open, with or without channels."""
        return ("",)

    # -- lifecycle

    async def start(self, on_message: MessageHandler, on_reset: ResetHandler) -> None:
        """Connect; raises if the broker cannot be reached at start-up."""
        self._on_message, self._on_reset = on_message, on_reset
        await self._open_publisher()
        await self._refresh_routes()
        for key in self._link_keys():
            try:
                self._links[key] = await self._open_link(key)
            except FAILURES as exc:
                if not self._sharded:
                    raise
                log.warning("redis %s not reachable at start-up: %s", key, exc)
                self._link_failed()  # the repair task keeps trying
        self._tasks = [
            asyncio.create_task(self._repair_loop(), name="redis-subscriber-repair"),
            asyncio.create_task(self._publish_loop(), name="redis-publisher"),
        ]

    async def close(self) -> None:
        self._closed = True
        self._all_sent()
        if self._subscriber is not None:
            self._subscriber.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *FAILURES):
                await task
        links, self._links = list(self._links.values()), {}
        for link in links:
            await link.close()
        await self._close_connections()

    # -- publishing

    async def publish(self, channel: str, data: bytes) -> None:
        await self.publish_many(((channel, data),))

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        queued = False
        for message in messages:
            if len(self._queue) >= self._max_queued or self._closed:
                self.dropped += 1  # Redis is down or far behind; clients resync after reset
            else:
                self._queue.append(message)
                queued = True
        if not queued:
            return
        if self._sent is None:
            self._sent = asyncio.get_running_loop().create_future()
        sent = self._sent
        self._wake.set()
        if self._publish_failing:
            return  # Redis is known to be down: no point waiting (the catch-up covers)
        await asyncio.shield(sent)

    def _all_sent(self) -> None:
        """Everything queued so far went out (or was dropped): wake its publishers."""
        sent, self._sent = self._sent, None
        if sent is not None and not sent.done():
            sent.set_result(None)

    async def _publish_loop(self) -> None:
        delay = _BACKOFF_MIN_S
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                count = min(len(self._queue), _PIPELINE_MAX)
                batch = [self._queue.popleft() for _ in range(count)]
                try:
                    failed = await self._send(batch)
                except FAILURES as exc:
                    failed = count
                    if not self._publish_failing:  # once per outage, not per batch
                        log.warning("redis unreachable, publications dropped until back: %s", exc)
                else:
                    if failed:
                        log.warning("publish of %d of %d messages failed", failed, count)
                    if self._publish_failing and failed < count:
                        log.warning("redis reachable again: publishing")
                self._publish_failing = failed == count
                self.published += count - failed
                self.dropped += failed
                if not self._queue:
                    self._all_sent()
                if failed == count:  # nothing got through: Redis is down, wait a little
                    self._all_sent()  # nobody waits for a backoff: dropped is dropped
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _BACKOFF_MAX_S)
                else:
                    delay = _BACKOFF_MIN_S

    # -- subscribing

    async def subscribe(self, *channels: str) -> None:
        # Concurrent calls share one (S)SUBSCRIBE per link (a round, as publishing
        # does): in a reconnect storm thousands of hellos subscribe within a second,
        # and a command and a socket write each were a tenth of a hello's cost. A call
        # returns once Redis has processed a command carrying its channels: a hello
        # reads its rooms' positions after subscribing, and a publication Redis handled
        # before the SUBSCRIBE would reach neither that read nor the connection.
        new = [c for c in channels if c not in self._channels]
        if not new:
            return
        self._channels.update(new)
        self._to_subscribe.extend(new)
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._subscribe_waiters.append(sent)
        if self._subscriber is None:
            self._subscriber = asyncio.create_task(self._subscribe_rounds(), name="redis-subscribe")
        await sent

    async def _subscribe_rounds(self) -> None:
        waiters: list[asyncio.Future[None]] = []
        try:
            while self._to_subscribe:
                channels, self._to_subscribe = self._to_subscribe, []
                waiters, self._subscribe_waiters = self._subscribe_waiters, []
                by_link: dict[str, tuple[Link, list[str]]] = {}
                for channel in channels:
                    try:
                        link = self._links.get(self._route(channel))
                    except FAILURES:
                        link = None
                    if link is None or link.failure is not None:
                        self._trouble.set()  # the repair task places it
                        continue
                    by_link.setdefault(link.key, (link, []))[1].append(channel)
                # A channel unsubscribed meanwhile is no longer wanted: add() skips it.
                for key, (link, group) in by_link.items():
                    await link.add(group, self._wanted_on(key))
                # A link that fails here is repaired like any other (resubscribed, then
                # its rooms' clients told to resync): nothing to raise to the callers.
                await asyncio.gather(
                    *(link.confirm() for link, _ in by_link.values()), return_exceptions=True
                )
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
        finally:
            self._subscriber = None
            for waiter in (*waiters, *self._subscribe_waiters):
                if not waiter.done():  # the round was cancelled: the broker closes
                    waiter.set_exception(ConnectionError("redis broker closed"))

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        for link in list(self._links.values()):
            if channel in link.channels:
                await link.remove((channel,))

    def _deliver(self, channel: str, data: bytes) -> None:
        # A publication can cross an UNSUBSCRIBE on the wire: only subscribed channels pass.
        if channel in self._channels and self._on_message is not None:
            self._on_message(channel, data)

    def _wanted_on(self, key: str) -> Callable[[str], bool]:
        def wanted(channel: str) -> bool:
            if channel not in self._channels:
                return False
            try:
                return self._route(channel) == key
            except FAILURES:
                return False

        return wanted

    async def _open_link(self, key: str) -> Link:
        link = Link(
            key,
            self._subscriber_client(key),
            sharded=self._sharded,
            on_message=self._deliver,
            on_failure=self._link_failed,
            idle_ping_s=self._idle_ping_s,
        )
        try:
            await link.open()
        except BaseException:
            await link.close()
            raise
        return link

    async def _repair_loop(self) -> None:
        while not self._closed:
            await self._trouble.wait()
            delay = _BACKOFF_MIN_S
            while not self._closed:
                self._trouble.clear()
                try:
                    complete = await self._repair()
                except FAILURES as exc:
                    log.info("redis subscriber repair failed: %s; retrying", exc)
                    complete = False
                except Exception:  # a bug must not end the repairs for good
                    log.exception("redis subscriber repair failed; retrying")
                    complete = False
                if complete:
                    if not self._trouble.is_set():
                        self._links_broken = False
                        break
                    continue  # something changed meanwhile: another pass, at once
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX_S)

    async def _repair(self) -> bool:
        """One pass: put every channel where it belongs; True if nothing is left to do."""
        for key, link in list(self._links.items()):
            if link.failure is not None:
                log.warning(
                    "redis subscriber %s lost (%s); resubscribing its %d channels",
                    link.name,
                    link.failure,
                    len(link.channels),
                )
                del self._links[key]
                self.losses += 1
                await link.close()
        await self._refresh_routes()
        keys = set(self._link_keys())
        for key in [k for k in self._links if k not in keys]:  # no longer a master
            await self._links.pop(key).close()
        complete = True
        plan: dict[str, list[str]] = defaultdict(list)
        for channel in self._channels:
            try:
                plan[self._route(channel)].append(channel)
            except FAILURES as exc:
                log.info("no redis node serves %r yet: %s", channel, exc)
                complete = False
        for key, link in list(self._links.items()):
            wanted = self._wanted_on(key)
            stray = [c for c in link.channels if not wanted(c)]  # slot moved elsewhere
            if stray:
                await link.remove(stray)
        missing = [k for k in sorted(keys | plan.keys()) if k not in self._links]
        opened = await asyncio.gather(
            *(self._open_link(key) for key in missing), return_exceptions=True
        )
        for key, result in zip(missing, opened, strict=True):
            if isinstance(result, Link):
                self._links[key] = result
            elif isinstance(result, Exception):
                log.info("redis %s not reachable yet: %s", key or "server", result)
                complete = False
            else:
                raise result
        sent: list[tuple[Link, int]] = []
        for key, link in list(self._links.items()):
            count = await link.add(plan.get(key, ()), self._wanted_on(key))
            if count:
                sent.append((link, count))
        confirmed = await asyncio.gather(
            *(link.confirm() for link, _ in sent), return_exceptions=True
        )
        restored = 0
        for (link, count), outcome in zip(sent, confirmed, strict=True):
            if outcome is None:
                restored += count
            elif isinstance(outcome, Exception):
                log.info("redis %s refused subscriptions: %s", link.name, outcome)
                complete = False
            else:
                raise outcome
        if any(link.failure is not None for link in self._links.values()):
            complete = False
        if restored:
            self.resets += 1
            log.warning("redis subscriber back with %d channels: resyncing clients", restored)
            if self._on_reset is not None:
                self._on_reset()
        return complete
