"""Graceful shutdown of a real node process: on SIGTERM it stops taking requests,
finishes those in flight, closes every WebSocket with 1012 and exits; every send it
acknowledged is in the database afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import websockets
from attachment_kit import wait_until
from websockets.exceptions import ConnectionClosed

from clients.python import Account
from harness import connected, practitioner, sealed
from loadtest.server_process import ServerProcess
from protocol import SUBPROTOCOL, CloseCode, decode_server_frame, encode
from protocol.errors import ErrorCode
from protocol.frames import Ack, Error, Hello, Send, Welcome
from storage import open_store

WINDOW = 32  # sends in flight per connection


class Sender:
    """A raw connection pipelining sends; remembers what was acked and the close."""

    def __init__(self, url: str, account: Account, room: str) -> None:
        self.url, self.account, self.room = url, account, room
        self.acked: dict[str, int] = {}  # cid -> seq
        self.refused: list[ErrorCode] = []
        self.close_code: int | None = None
        self.sent = 0

    async def run(self) -> None:
        ws_url = self.url.replace("http://", "ws://") + "/v1/ws"
        async with websockets.connect(ws_url, subprotocols=[SUBPROTOCOL]) as ws:  # type: ignore[list-item]
            await ws.send(encode(Hello(1, self.account.token, self.account.device_id)))
            assert isinstance(decode_server_frame(await ws.recv()), Welcome)  # type: ignore[arg-type]
            room_of: dict[int, str] = {}
            window = asyncio.Semaphore(WINDOW)

            async def send_forever() -> None:
                n = 100
                while True:
                    await window.acquire()
                    n += 1
                    cid = f"{self.account.device_id}-{n}"
                    room_of[n] = cid
                    await ws.send(encode(Send(n, self.room, cid, sealed(b"ciphertext %d" % n))))
                    self.sent += 1

            writer = asyncio.create_task(send_forever())
            try:
                async for data in ws:
                    frame = decode_server_frame(data)  # type: ignore[arg-type]
                    if isinstance(frame, Ack) and frame.re in room_of:
                        assert frame.seq is not None
                        self.acked[room_of[frame.re]] = frame.seq
                        window.release()
                    elif isinstance(frame, Error) and frame.re in room_of:
                        self.refused.append(frame.code)
                        window.release()
            except ConnectionClosed:
                pass
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await writer
            self.close_code = ws.close_code


async def test_sigterm_drains_connections_with_1012_and_loses_no_acked_send(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'confrere.db'}"
    node = ServerProcess(
        {
            "CONFRERE_DATABASE_URL": db,
            "CONFRERE_BLOB_URL": f"file://{tmp_path / 'blobs'}",
            "CONFRERE_PASSWORD_COST": "min",
            "CONFRERE_LOG_LEVEL": "warning",
            "CONFRERE_LIMIT_SENDS_PER_S": "100000",
            "CONFRERE_LIMIT_FRAMES_PER_S": "100000",
        }
    )
    await node.start()
    try:
        store = await open_store(db)
        try:
            alice = await practitioner(node.url, store)
            bob = await practitioner(node.url, store)
        finally:
            await store.close()
        a = await connected(alice)
        room = await a.create_room("group", [bob.user_id])
        await a.close()

        senders = [Sender(node.url, alice, room.id), Sender(node.url, bob, room.id)]
        tasks = [asyncio.create_task(s.run()) for s in senders]
        proc = node.proc
        assert proc is not None

        async def acked_enough() -> bool:
            return sum(len(s.acked) for s in senders) >= 300

        async def exited() -> bool:
            return proc.poll() is not None

        await wait_until(acked_enough, 30)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await asyncio.gather(*tasks)
        await wait_until(exited, 20)
        # uvicorn re-raises the signal once its shutdown is complete.
        assert proc.returncode in (0, -signal.SIGTERM)

        for s in senders:
            assert s.close_code == CloseCode.SERVICE_RESTART
            # Requests that came after the drain began were refused, never dropped.
            assert set(s.refused) <= {ErrorCode.UNAVAILABLE}
        acked = {cid: seq for s in senders for cid, seq in s.acked.items()}
        in_flight = sum(s.sent for s in senders) - len(acked) - sum(len(s.refused) for s in senders)
        print(
            f"\nshutdown: {len(acked)} sends acked, "
            f"{sum(len(s.refused) for s in senders)} refused while draining, "
            f"{in_flight} unanswered when the sockets closed"
        )

        store = await open_store(db)
        try:
            stored = {
                item.cid: item.seq
                for item in await store.timeline(room.id, 0, 100_000)
                if item.kind == "msg"
            }
        finally:
            await store.close()
        missing = {cid for cid in acked if stored.get(cid) != acked[cid]}
        assert not missing, f"{len(missing)} acked sends lost or renumbered"
    finally:
        node.close()
