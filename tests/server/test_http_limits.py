"""What one HTTP connection may make a node hold, over raw sockets
(:mod:`server.http_protocol`): the request head's size, field count and time, the
body's time, and a refusal sent before the body that closes instead of reading it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from attachment_kit import wait_until

from harness import ServerUnderTest, practitioner, running_server, settings_for
from server.config import HttpLimits


class RawHttp:
    """One TCP connection to the node, bytes in and out."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, srv: ServerUnderTest) -> RawHttp:
        port = int(srv.url.rsplit(":", 1)[1])
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, limit_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """One response: status, headers (lower-cased names), body."""
        async with asyncio.timeout(limit_s):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    async def closed_within(self, limit_s: float) -> bool:
        """Whether the node closed the connection (EOF or reset) within ``limit_s``."""
        try:
            async with asyncio.timeout(limit_s):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


GET = b"GET /healthz HTTP/1.1\r\nHost: node\r\n"


async def test_request_heads_are_bounded_in_size_and_fields(server: ServerUnderTest) -> None:
    limits = server.settings.http
    raw = await RawHttp.open(server)
    try:
        await raw.send(GET + b"\r\n" + GET + b"\r\n")  # keep-alive, pipelined: fine
        for _ in range(2):
            status, headers, _ = await raw.response()
            assert status == 200
            assert "server" not in headers  # no "Server: uvicorn"
        await raw.send(GET + b"X-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
        status, _, body = await raw.response()
        assert status == 431 and json.loads(body)["code"] == "too_large"
        assert await raw.closed_within(5)
    finally:
        raw.close()

    raw = await RawHttp.open(server)
    try:
        fields = b"".join(b"X-F%d: 1\r\n" % i for i in range(limits.max_headers + 1))
        await raw.send(GET + fields + b"\r\n")
        status, _, body = await raw.response()
        assert status == 431 and "header fields" in json.loads(body)["message"]
        assert await raw.closed_within(5)
    finally:
        raw.close()

    # An endless head is refused once past the bound (what follows is dropped unread,
    # for a moment, then the socket closes): the node never holds 10 MB of it.
    raw = await RawHttp.open(server)
    try:
        await raw.send(b"GET /healthz HTTP/1.1\r\nX-Endless: ")
        with contextlib.suppress(ConnectionError):
            for _ in range(10_000_000 // 65536):
                await raw.send(b"a" * 65536)
        status, _, _ = await raw.response()
        assert status == 431
        assert await raw.closed_within(5)
    finally:
        raw.close()


@pytest.fixture
async def impatient(tmp_path: Path) -> ServerUnderTest:  # type: ignore[misc]
    http = replace(HttpLimits(), head_timeout_s=0.5, body_timeout_s=0.5, min_body_rate=1000.0)
    async with running_server(settings_for(tmp_path, http=http)) as srv:
        yield srv


async def test_heads_and_bodies_must_arrive_in_time(impatient: ServerUnderTest) -> None:
    started = time.monotonic()
    # Slowloris: 20 connections each holding an incomplete head, one byte at a time.
    slow = [await RawHttp.open(impatient) for _ in range(20)]
    idle = await RawHttp.open(impatient)  # and one that sends nothing at all
    try:
        for conn in slow:
            await conn.send(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        for conn in slow:
            await conn.send(b"a")
            status, _, body = await conn.response(5)
            assert status == 408 and json.loads(body)["code"] == "bad_frame"
            assert await conn.closed_within(5)
        assert await idle.closed_within(5)
        assert time.monotonic() - started < 5  # 0.5 s each, not "still open a minute later"
    finally:
        for conn in [*slow, idle]:
            conn.close()

    # A body that stops coming (a JSON body, then an upload).
    account = await practitioner(impatient.url, impatient.store)
    for head in (
        b"POST /v1/devices HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + account.token.encode() + b"\r\nContent-Length: 100\r\n\r\n",
        b"POST /v1/attachments?kind=document&content_type=application/pdf HTTP/1.1\r\n"
        b"Host: node\r\nAuthorization: Bearer " + account.token.encode() + b"\r\n"
        b"Content-Length: 1000000\r\n\r\n%PDF-",
    ):
        raw = await RawHttp.open(impatient)
        try:
            await raw.send(head + b"{")
            status, _, body = await raw.response(5)
            assert status == 408 and "body" in json.loads(body)["message"]
            assert await raw.closed_within(5)
        finally:
            raw.close()

    # Nothing of the abandoned upload is left (the node cleans up when it sees the cut).
    async def nothing_left() -> bool:
        return await impatient.store.unreferenced_attachments(2**62, 10) == []

    await wait_until(nothing_left)


async def test_a_refusal_before_the_body_closes_instead_of_draining_it(
    server: ServerUnderTest,
) -> None:
    account = await practitioner(server.url, server.store)
    auth = b"Authorization: Bearer " + account.token.encode() + b"\r\n"
    for head in (
        b"POST /v1/devices HTTP/1.1\r\nHost: node\r\n" + auth + b"Content-Length: 100000\r\n",
        b"POST /v1/attachments?kind=document&content_type=application/pdf HTTP/1.1\r\n"
        b"Host: node\r\n" + auth + b"Content-Length: 60000000\r\n",
    ):
        raw = await RawHttp.open(server)
        try:
            await raw.send(head + b"\r\n" + b"x" * 1000)  # and the client keeps sending
            status, _, body = await raw.response()
            assert status == 413 and json.loads(body)["code"] == "too_large"
            assert await raw.closed_within(5)  # not waiting for the other 60 MB
        finally:
            raw.close()
