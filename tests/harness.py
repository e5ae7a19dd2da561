"""Test harness: a real server over real sockets, and practitioners to talk to it.

``ServerUnderTest`` runs uvicorn in the test's event loop on a socket bound to port 0;
``server_process`` runs ``python -m server run`` as a child process (for kill/restart
tests) on a socket the test bound and handed over, so no port is ever guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn

from clients.python import Account, Client, Incoming, log_in, sign_up
from loadtest.server_process import ServerProcess, bind_socket
from protocol.frames import Msg
from server import Settings
from server.cli import uvicorn_config
from server.handlers import Services
from server.node import NodeApp
from storage import Store

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
# Nodes on PostgreSQL refuse to start without a shared server key (server.server_key).
SERVER_KEY = "dGVzdHMgb25seTogbm90IGEgcmVhbCBzZXJ2ZXIgayE="
_names = itertools.count(1)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        database_url=f"sqlite:///{tmp_path / 'confrere.db'}",
        blob_url=f"file://{tmp_path / 'blobs'}",
        password_cost="min",
        log_level="warning",
        server_key=SERVER_KEY,
        # Where the SQLite default puts it; on PostgreSQL the default would be the
        # shared ./var/outbox.jsonl, which another test (or pytest worker) appends to.
        outbox_log=str(tmp_path / "outbox.jsonl"),
    )
    return replace(base, **overrides)


@dataclass
class ServerUnderTest:
    settings: Settings
    url: str
    server: uvicorn.Server

    @property
    def store(self) -> Store:
        return self.app.node.services.store

    @property
    def services(self) -> Services[Store]:
        return self.app.node.services

    @property
    def app(self) -> NodeApp:
        """The Starlette app itself, to drive through ASGI without a socket."""
        app = self.server.config.app
        assert isinstance(app, NodeApp)
        return app

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/ws"


@contextlib.asynccontextmanager
async def running_server(
    settings: Settings, sock: socket.socket | None = None
) -> AsyncIterator[ServerUnderTest]:
    """``sock``: a socket bound beforehand (to know the URL before the settings are
    made, e.g. a public URL that links must reach); one of port 0 otherwise."""
    sock = sock or bind_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield ServerUnderTest(settings, f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def server_on(
    adapter: str, request: Any, tmp_path: Path, **overrides: Any
) -> AsyncIterator[ServerUnderTest]:
    """A server on ``adapter`` ("sqlite", or "postgres": a fresh database on the
    session's server, dropped afterwards), configured like ``settings_for``."""
    if adapter == "sqlite":
        async with running_server(settings_for(tmp_path, **overrides)) as server:
            yield server
        return
    from services_pg import drop_database, fresh_database

    pg = request.getfixturevalue("postgres_server")
    url = await fresh_database(pg.url)
    try:
        async with running_server(settings_for(tmp_path, database_url=url, **overrides)) as srv:
            yield srv
    finally:
        await drop_database(pg.url, url)


async def practitioner(
    url: str,
    store: Store | None,
    *,
    verified: bool = True,
    device_name: str = "test",
    postcode: str = "75011",
    city: str = "Paris",
) -> Account:
    """Sign up a new practitioner, verify them through the store, and log in."""
    n = next(_names)
    email = f"praticien{n}-{os.getpid()}@example.org"
    await sign_up(
        url,
        email=email,
        password=PASSWORD,
        first_name=f"Prénom{n}",
        last_name=f"Nom{n}",
        postcode=postcode,
        city=city,
        specialty="Médecine générale",
        practice_mode="liberal",
    )
    account = await log_in(url, email, PASSWORD, device_name=device_name)
    if verified:
        assert store is not None
        await store.set_verified(account.user_id, True)
    return account


async def connected(account: Account, **kwargs: Any) -> Client:
    client = Client(account, **kwargs)
    await client.connect()
    return client


def server_process(settings: Settings) -> ServerProcess:
    """A node in a child process, configured like ``settings``."""
    return ServerProcess(
        {
            "CONFRERE_DATABASE_URL": settings.database_url,
            "CONFRERE_BROKER_URL": settings.broker_url,
            "CONFRERE_BLOB_URL": settings.blob_url,
            "CONFRERE_PASSWORD_COST": settings.password_cost,
            "CONFRERE_LOG_LEVEL": "warning",
            "CONFRERE_SERVER_KEY": settings.server_key or SERVER_KEY,
            "CONFRERE_OUTBOX_LOG": settings.outbox_log,
        }
    )


async def next_of(client: Client, frame_type: type, **match: object) -> Incoming:
    """The next incoming item of ``frame_type`` whose attributes equal ``match``."""
    async with asyncio.timeout(15):
        while True:
            item = await client.recv()
            if isinstance(item, frame_type) and all(
                getattr(item, k) == v for k, v in match.items()
            ):
                return item


async def messages_from_others(client: Client, room: str, count: int) -> list[Msg]:
    """The next ``count`` messages of ``room`` sent by other devices, in arrival order."""
    got: list[Msg] = []
    async with asyncio.timeout(60):
        while len(got) < count:
            item = await client.recv()
            if isinstance(item, Msg) and item.room == room and item.device != client.device_id:
                got.append(item)
    return got


def sealed(payload: bytes) -> bytes:
    """``payload`` in the shape of an end-to-end room message (SPEC.md §11.2), which the
    server requires of ``send.body``: for transport tests, which never decrypt. The
    payload stands in for the ciphertext (its 16-byte tag zeroed); :func:`opened` gets
    it back."""
    return b"\x01" + b"\xaa" * 16 + bytes(4 + 24) + payload + bytes(16 + 64)


def boxed(payload: bytes) -> bytes:
    """``payload`` in the shape of a sealed to-device body (SPEC.md §11.3: version, a
    24-byte nonce, then the box, its 16-byte tag zeroed here), which the server requires
    of ``to_device.body``."""
    return b"\x01" + bytes(24) + payload + bytes(16)


def opened(body: bytes) -> bytes:
    """The payload of a :func:`sealed` body."""
    assert body[:17] == b"\x01" + b"\xaa" * 16, body
    return body[45:-80]
