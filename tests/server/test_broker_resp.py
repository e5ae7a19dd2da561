"""The Redis broker's lean connection (server/broker/resp.py): replies parsed as they
arrive, in order, and a pipeline whose replies stay matched to their batches."""

from __future__ import annotations

from typing import Any

import hiredis
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from server.broker.resp import Pipeline, RespConnection, pack
from services import RedisServer


class Recorder:
    def __init__(self) -> None:
        self.replies: list[Any] = []
        self.lost: list[BaseException] = []

    def connection(self) -> RespConnection:
        return RespConnection(self.replies.append, self.lost.append)


def _message(channel: bytes, data: bytes) -> bytes:
    return b"*3\r\n$7\r\nmessage\r\n" + pack(channel, data)[4:]  # the same two bulks


def test_replies_are_handed_on_in_order_whatever_the_chunks() -> None:
    recorder = Recorder()
    conn = recorder.connection()
    wire = _message(b"r:1", b"one") + b"-ERR refused\r\n" + _message(b"r:2", b"\r\ntwo")
    for i in range(0, len(wire), 7):  # a reply split over reads, several in one read
        conn.data_received(wire[i : i + 7])
    assert recorder.replies[0] == [b"message", b"r:1", b"one"]
    assert isinstance(recorder.replies[1], hiredis.ReplyError)
    assert recorder.replies[2] == [b"message", b"r:2", b"\r\ntwo"]
    assert len(recorder.replies) == 3
    assert recorder.lost == []


def test_unparsable_bytes_lose_the_connection_once() -> None:
    recorder = Recorder()
    conn = recorder.connection()
    conn.data_received(_message(b"r:1", b"ok") + b"?not resp\r\n" + _message(b"r:1", b"after"))
    assert recorder.replies == [[b"message", b"r:1", b"ok"]]
    assert len(recorder.lost) == 1
    with pytest.raises(RedisConnectionError):
        conn.write(pack("PING"))
    conn.connection_lost(None)  # the transport's own report changes nothing
    assert len(recorder.lost) == 1


def test_a_reply_its_owner_rejects_loses_the_connection() -> None:
    lost: list[BaseException] = []

    def reject(reply: Any) -> None:
        raise ValueError("unexpected")

    conn = RespConnection(reject, lost.append)
    conn.data_received(b"+PONG\r\n+PONG\r\n")
    assert [type(exc) for exc in lost] == [ValueError]


async def test_pipeline_counts_refused_commands_and_keeps_replies_matched(
    redis_url: str,
) -> None:
    pipeline = Pipeline(aioredis.Redis.from_url(redis_url), reply_timeout_s=10.0)
    try:
        batch = [pack("PUBLISH", "r:x", b"1"), pack("NO-SUCH-COMMAND"), pack("PING")]
        assert await pipeline.execute(batch) == 1
        assert await pipeline.execute([pack("PUBLISH", "r:x", b"2")] * 3000) == 0
        assert await pipeline.execute([pack("PING")]) == 0
    finally:
        await pipeline.close()


async def test_pipeline_reconnects_after_losing_its_connection(own_redis: RedisServer) -> None:
    pipeline = Pipeline(aioredis.Redis.from_url(own_redis.url), reply_timeout_s=10.0)
    admin = aioredis.Redis.from_url(own_redis.url)
    try:
        assert await pipeline.execute([pack("PING")]) == 0
        assert await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        outcomes: list[int | str] = []
        for _ in range(2):  # the loss may be noticed by the first batch after it
            try:
                outcomes.append(await pipeline.execute([pack("PING")]))
            except RedisConnectionError:
                outcomes.append("lost")
        assert outcomes in ([0, 0], ["lost", 0])
    finally:
        await pipeline.close()
        await admin.aclose()
