"""EncryptedClient without a server: a message whose key comes later is held, then
delivered decrypted (the transport is a stub that hands over prepared frames)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack

from clients.python import Account, Decrypted
from clients.python.client import KeyDirectory
from clients.python.e2ee import EncryptedClient
from protocol.crypto.keys import DeviceKeys
from protocol.crypto.sender_keys import OutboundSession
from protocol.crypto.share import share_sender_key
from protocol.frames import Msg, ToDeviceMsg


class StubTransport:
    """The part of :class:`~clients.python.client.Client` that receiving uses."""

    def __init__(self, user_id: str, device_id: str, directory: dict[str, bytes]) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self.directory = directory
        self.inbox: asyncio.Queue[Msg | ToDeviceMsg] = asyncio.Queue()
        self.reports: list[tuple[str, str, str]] = []

    async def query_key_directory(self, users: list[str]) -> KeyDirectory:
        # Bundles only: no identity key, so every device is unverified.
        return KeyDirectory(tuple(b for u, b in self.directory.items() if u in users), (), ())

    async def recv(self) -> Msg | ToDeviceMsg:
        return await self.inbox.get()

    async def report_decryption_failure(
        self, room: str, device: str, reason: str, session: bytes | None = None
    ) -> int:
        self.reports.append((room, device, reason))
        return len(self.reports)

    async def close(self) -> None:
        pass


def text(value: str) -> bytes:
    packed: bytes = msgpack.packb({"type": "text", "text": value})
    return packed


async def test_a_message_is_held_until_its_key_arrives(tmp_path: Path) -> None:
    alice = DeviceKeys.generate()
    stub = StubTransport("ub", "db", {"ua": alice.bundle("ua", "da").to_bytes()})
    bob = EncryptedClient(
        Account("http://unused", "token", "ub", "db", "b@example.org"),
        tmp_path / "bob.key",
        client=stub,  # type: ignore[arg-type]
    )
    out = OutboundSession("room", "da", alice)
    share = share_sender_key(alice, out.sender_key(), "db", bob.keys.box_public)
    first = Msg("room", 1, "ua", "da", "c1", 10, out.encrypt(text("first")))
    second = Msg("room", 2, "ua", "da", "c2", 11, out.encrypt(text("second")))
    stub.inbox.put_nowait(second)
    stub.inbox.put_nowait(first)
    receiving = asyncio.ensure_future(bob.recv())
    await asyncio.sleep(0.05)
    assert not receiving.done() and bob.held() == 2
    stub.inbox.put_nowait(ToDeviceMsg(1, "ua", "da", 12, share))
    got = [await asyncio.wait_for(receiving, 5), await asyncio.wait_for(bob.recv(), 5)]
    assert [(g.seq, g.text) for g in got if isinstance(g, Decrypted)] == [
        (2, "second"),
        (1, "first"),
    ]
    assert bob.held() == 0 and bob.rejected == []
    assert (tmp_path / "bob.key").stat().st_mode & 0o777 == 0o600
    again = EncryptedClient(
        Account("http://unused", "token", "ub", "db", "b@example.org"),
        tmp_path / "bob.key",
        client=stub,  # type: ignore[arg-type]
    )
    assert again.keys.to_bytes() == bob.keys.to_bytes()  # the key file is reused
    await bob.close()
