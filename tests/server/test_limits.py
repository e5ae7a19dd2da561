"""Limits and rate limits over real sockets: each refusal carries its error code and,
for rates, a ``retry_after`` after which the same request succeeds; none of them is a
bad frame, and none closes the connection (except too many connections, 1013).
Also the WebSocket Origin check (cross-site WebSocket hijacking)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from attachment_kit import sample
from raw_ws import closed_with, raw_connection
from websockets.exceptions import InvalidStatus

from clients.python import log_in
from clients.python.attachments import upload_document
from clients.python.errors import ServerError
from harness import PASSWORD, ServerUnderTest, practitioner, running_server, sealed, settings_for
from protocol import CloseCode
from protocol.errors import ErrorCode
from protocol.frames import Ack, Error, Hello, Ping, Pong, RoomCreate, RoomInvite, Send
from server.limits import Bucket, Limits

TIGHT = replace(
    Limits(),
    sends_per_s=2.0,
    sends_burst=3.0,
    uploads_per_s=0.5,
    uploads_burst=1.0,
    rooms_per_user=2,
    members_per_room=3,
    connections_per_device=1,
)


@pytest.fixture
async def tight(tmp_path: Path) -> AsyncIterator[ServerUnderTest]:
    async with running_server(settings_for(tmp_path, limits=TIGHT)) as srv:
        yield srv


async def test_frames_per_second_per_connection(tmp_path: Path) -> None:
    limits = replace(Limits(), frames_per_s=5.0, frames_burst=5.0)
    async with (
        running_server(settings_for(tmp_path, limits=limits)) as srv,
        raw_connection(srv.url, await practitioner(srv.url, srv.store)) as ws,
    ):
        for i in range(10, 20):
            await ws.send(Ping(i))
        replies = await ws.replies(range(10, 20))
        refused = [r for r in replies if isinstance(r, Error)]
        assert sum(isinstance(r, Pong) for r in replies) >= 4  # the burst (1 went to hello)
        assert refused and all(r.code is ErrorCode.RATE_LIMITED for r in refused)
        waits = [r.retry_after or 0 for r in refused]
        # Each refusal is told its own turn: one more token each (0.2 s at 5/s).
        assert waits == sorted(waits) and len(set(waits)) == len(waits)
        wait = waits[-1]
        assert 0 < wait <= len(refused) / 5.0 + 0.01
        await asyncio.sleep(wait)  # what the server said: then it is allowed again
        await ws.send(Ping(99))
        assert isinstance(await ws.reply_to(99), Pong)


async def test_a_client_obeying_retry_after_is_refused_about_once_per_frame(
    tmp_path: Path,
) -> None:
    """50 frames at once against a burst of 10: each refused frame is told when *it*
    will be allowed (the frames refused before it count), so a client that waits
    ``retry_after`` before sending it again gets every frame through with about one
    refusal each, not a storm of retries that all come back at the same instant."""
    limits = replace(Limits(), frames_per_s=40.0, frames_burst=10.0)
    async with (
        running_server(settings_for(tmp_path, limits=limits)) as srv,
        raw_connection(srv.url, await practitioner(srv.url, srv.store)) as ws,
    ):
        ids = range(10, 60)
        for i in ids:
            await ws.send(Ping(i))
        answered: set[int] = set()
        refusals: list[float] = []
        resends: set[asyncio.Task[None]] = set()

        async def resend(i: int, after: float) -> None:
            await asyncio.sleep(after)  # what the server said
            await ws.send(Ping(i))

        async with asyncio.timeout(20):
            while len(answered) < len(ids):
                frame = await ws.recv()
                if isinstance(frame, Pong):
                    answered.add(frame.re)
                elif isinstance(frame, Error) and frame.re is not None:
                    assert frame.code is ErrorCode.RATE_LIMITED
                    assert frame.retry_after is not None and frame.retry_after >= 0.001
                    refusals.append(frame.retry_after)
                    task = asyncio.create_task(resend(frame.re, frame.retry_after))
                    resends.add(task)
                    task.add_done_callback(resends.discard)
        # 40 frames over the burst (and the hello's token): one refusal each, give or
        # take the few whose slot another retry took. Every frame got a different slot.
        assert len(refusals) <= 50, len(refusals)
        assert max(refusals) >= 0.8


async def test_bytes_per_second_per_connection(tmp_path: Path) -> None:
    limits = replace(Limits(), bytes_per_s=20_000.0, bytes_burst=30_000.0)
    async with running_server(settings_for(tmp_path, limits=limits)) as srv:
        alice = await practitioner(srv.url, srv.store)
        async with raw_connection(srv.url, alice) as ws:
            await ws.send(RoomCreate(2, "group", ()))
            ack = await ws.reply_to(2)
            assert isinstance(ack, Ack) and ack.room is not None
            body = sealed(b"x" * (12_000 - 125))
            for i in range(3, 6):
                await ws.send(Send(i, ack.room.id, f"c{i}", body))
            replies = await ws.replies(range(3, 6))
            assert isinstance(replies[0], Ack) and isinstance(replies[1], Ack)
            last = replies[2]
            assert isinstance(last, Error) and last.code is ErrorCode.RATE_LIMITED
            assert last.retry_after is not None and last.retry_after > 0


async def test_sends_per_second_per_user_across_devices(tight: ServerUnderTest) -> None:
    alice = await practitioner(tight.url, tight.store)
    phone = await log_in(tight.url, alice.email, PASSWORD, device_name="phone")
    async with raw_connection(tight.url, alice) as a, raw_connection(tight.url, phone) as p:
        await a.send(RoomCreate(2, "group", ()))
        ack = await a.reply_to(2)
        assert isinstance(ack, Ack) and ack.room is not None
        room = ack.room.id
        codes = []
        for i in range(3, 7):  # burst of 3, shared by both devices
            conn = a if i % 2 else p
            await conn.send(Send(i, room, f"c{i}", sealed(b"x")))
            reply = await conn.reply_to(i)
            codes.append(reply.code if isinstance(reply, Error) else "ok")
        assert codes == ["ok", "ok", "ok", ErrorCode.RATE_LIMITED]


async def test_rooms_per_user_and_members_per_room(tight: ServerUnderTest) -> None:
    alice = await practitioner(tight.url, tight.store)
    others = [await practitioner(tight.url, tight.store) for _ in range(3)]
    ids = [o.user_id for o in others]
    async with raw_connection(tight.url, alice) as ws:
        await ws.send(RoomCreate(2, "group", tuple(ids)))  # 4 members > 3
        too_many = await ws.reply_to(2)
        assert isinstance(too_many, Error) and too_many.code is ErrorCode.TOO_LARGE
        assert "members per room" in too_many.message
        await ws.send(RoomCreate(3, "group", tuple(ids[:2])))
        ack = await ws.reply_to(3)
        assert isinstance(ack, Ack) and ack.room is not None
        await ws.send(RoomInvite(4, ack.room.id, (ids[2],)))
        invite = await ws.reply_to(4)
        assert isinstance(invite, Error) and invite.code is ErrorCode.TOO_LARGE
        await ws.send(RoomCreate(5, "group", ()))
        assert isinstance(await ws.reply_to(5), Ack)  # second room
        await ws.send(RoomCreate(6, "group", ()))
        third = await ws.reply_to(6)
        assert isinstance(third, Error) and third.code is ErrorCode.TOO_LARGE
        assert "rooms per user" in third.message


async def test_connections_per_device(tight: ServerUnderTest) -> None:
    alice = await practitioner(tight.url, tight.store)
    async with raw_connection(tight.url, alice), raw_connection(tight.url) as second:
        await second.send(Hello(1, alice.token, alice.device_id))
        refused = await second.reply_to(1)
        assert isinstance(refused, Error) and refused.code is ErrorCode.RATE_LIMITED
        assert refused.retry_after == 5.0
        assert await closed_with(second) == CloseCode.TRY_AGAIN_LATER
    # Once the first connection is gone, the device connects again.
    async with raw_connection(tight.url, alice) as again:
        await again.send(Ping(5))
        assert isinstance(await again.reply_to(5), Pong)


async def test_uploads_per_user(tight: ServerUnderTest) -> None:
    alice = await practitioner(tight.url, tight.store)
    pdf = sample("application/pdf", 2000)
    await upload_document(alice, pdf, name="a.pdf")
    with pytest.raises(ServerError) as refused:
        await upload_document(alice, pdf, name="b.pdf")
    assert refused.value.code == ErrorCode.RATE_LIMITED
    async with httpx.AsyncClient(base_url=tight.url) as http:
        reply = await http.post(
            "/v1/attachments?kind=document&content_type=application/pdf",
            content=pdf,
            headers={"Authorization": f"Bearer {alice.token}"},
        )
    assert reply.status_code == 429 and int(reply.headers["retry-after"]) >= 1
    # The refusal before it booked the next token (in 2 s): this one gets the one after.
    assert reply.json()["code"] == "rate_limited" and 2.0 < reply.json()["retry_after"] <= 4.0


async def test_origin_same_site_by_default(server: ServerUnderTest) -> None:
    alice = await practitioner(server.url, server.store)
    host = server.url.removeprefix("http://")
    async with raw_connection(server.url, alice, origin=f"http://{host}") as ws:
        await ws.send(Ping(3))
        assert isinstance(await ws.reply_to(3), Pong)
    for evil in ("https://evil.example", "null", f"http://{host}.evil.example"):
        with pytest.raises(InvalidStatus) as refused:
            async with raw_connection(server.url, origin=evil):
                pass
        assert refused.value.response.status_code == 403


async def test_origin_allow_list(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, allowed_origins=("https://confrere.example.fr",))
    async with running_server(settings) as srv:
        host = srv.url.removeprefix("http://")
        async with raw_connection(srv.url, origin="https://confrere.example.fr"):
            pass
        with pytest.raises(InvalidStatus):  # the allow-list replaces same-origin
            async with raw_connection(srv.url, origin=f"http://{host}"):
                pass


def test_bucket_refills_at_its_rate_and_never_beyond_its_burst() -> None:
    bucket = Bucket(rate=10.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.1)
    assert bucket.take(0.1) == 0.0
    assert bucket.take(100.0, cost=3.0) == 0.0  # refilled to the burst, not beyond
    assert bucket.take(100.0) == pytest.approx(0.1)
    assert bucket.take(200.0, cost=50.0) == 0.0  # over the burst: costs the burst


def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFRERE_LIMIT_SENDS_PER_S", "12.5")
    monkeypatch.setenv("CONFRERE_LIMIT_MEMBERS_PER_ROOM", "300")
    limits = Limits.from_env()
    assert limits.sends_per_s == 12.5 and limits.members_per_room == 300
    assert limits.frames_per_s == Limits().frames_per_s  # the others keep their default
