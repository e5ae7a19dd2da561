"""README's nginx configuration, for real (Debian's nginx on free ports, see
``services_nginx``), in front of two nodes on one PostgreSQL and one Redis: the
WebSocket upgrade and its Origin check, the per-client log-in and sign-up limits (one
client's failures do not lock another out: the nodes trust the proxy's address, given
in ``CONFRERE_TRUSTED_PROXIES``, and read the client's from ``X-Forwarded-For``), a
50 MiB upload and its download, and a node taken out of the upstream while clients
are connected (they come back through the proxy to the other node and lose nothing).

Clients come from different loopback addresses (127.0.0.2, 127.0.0.3) as different
people's machines would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from attachment_kit import sample
from raw_ws import raw_connection
from services_nginx import PROXY_ADDRESS, Nginx
from services_pg import PostgresServer, drop_database, fresh_database
from verification_kit import form
from websockets.exceptions import InvalidStatus

from clients.python import Client
from clients.python.attachments import download_document, upload_document
from harness import (
    PASSWORD,
    connected,
    messages_from_others,
    practitioner,
    sealed,
    server_process,
    settings_for,
)
from loadtest.server_process import ServerProcess
from protocol.frames import Ping, Pong
from protocol.limits import MAX_ATTACHMENT
from storage import open_store

# One deployment for the module (its tests share the nodes' sign-up limits and the last
# takes a node out of the upstream): under xdist, keep them on one worker, in order.
pytestmark = pytest.mark.xdist_group("nginx")


@dataclass
class Deployment:
    nginx: Nginx
    nodes: list[ServerProcess]
    database_url: str

    @property
    def url(self) -> str:
        return self.nginx.url

    def upstream(self, node: ServerProcess) -> str:
        return node.url.removeprefix("http://")


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer, redis_url: str
) -> Iterator[Deployment]:
    tmp: Path = tmp_path_factory.mktemp("nginx")
    database_url = asyncio.run(fresh_database(postgres_server.url))
    settings = settings_for(
        tmp, database_url=database_url, broker_url=redis_url, blob_url=f"file://{tmp / 'blobs'}"
    )
    nodes = []
    for _ in range(2):
        node = server_process(settings)
        node.extra_env.update(
            {
                "CONFRERE_TRUSTED_PROXIES": PROXY_ADDRESS,
                "CONFRERE_SIGNUPS_PER_HOUR": "12",
                "CONFRERE_LIMIT_UPLOADS_PER_S": "100",
            }
        )
        nodes.append(node)
    nginx: Nginx | None = None
    try:
        for node in nodes:
            asyncio.run(node.start())
        nginx = Nginx([n.url.removeprefix("http://") for n in nodes]).start()
        yield Deployment(nginx, nodes, database_url)
    finally:
        if nginx is not None:
            nginx.stop()
        for node in nodes:
            node.close()
        asyncio.run(drop_database(postgres_server.url, database_url))


def client_from(address: str, base_url: str) -> httpx.AsyncClient:
    """HTTP from one of the loopback addresses, as from one person's machine."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30)


async def verified(deployment: Deployment) -> object:
    store = await open_store(deployment.database_url)
    try:
        return await practitioner(deployment.url, store)
    finally:
        await store.close()


async def test_websocket_through_the_proxy_with_its_origin_check(deployment: Deployment) -> None:
    alice, bob = await verified(deployment), await verified(deployment)
    origin = deployment.url  # the page's origin: what nginx passes on as Host
    async with raw_connection(deployment.url, alice, origin=origin) as ws:  # type: ignore[arg-type]
        await ws.send(Ping(7))
        assert isinstance(await ws.reply_to(7), Pong)
    with pytest.raises(InvalidStatus) as refused:
        async with raw_connection(deployment.url, origin="https://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    a, b = await connected(alice), await connected(bob)  # type: ignore[arg-type]
    try:
        room = await a.create_room("direct", [b.user_id])
        seq = await a.send(room.id, sealed(b"par le proxy"))
        assert [m.seq for m in await messages_from_others(b, room.id, 1)] == [seq]
    finally:
        await a.close()
        await b.close()


async def test_one_clients_failures_do_not_lock_another_out(deployment: Deployment) -> None:
    carol = await verified(deployment)
    async with (
        client_from("127.0.0.2", deployment.url) as mallory,
        client_from("127.0.0.3", deployment.url) as honest,
    ):
        # Mallory fails log-ins until both nodes refuse her address (4 in a row).
        in_a_row = 0
        for attempt in range(400):
            reply = await mallory.post(
                "/v1/sessions", json={"email": f"nobody{attempt}@example.org", "password": "x" * 12}
            )
            assert reply.status_code in (401, 429), reply.text
            in_a_row = in_a_row + 1 if reply.status_code == 429 else 0
            if in_a_row == 4:
                break
        assert in_a_row == 4
        # Carol, from her own machine, logs in; a typo of hers is a 401, not a 429.
        typo = await honest.post(
            "/v1/sessions",
            json={"email": carol.email, "password": "wrong password!"},  # type: ignore[attr-defined]
        )
        assert typo.status_code == 401, typo.text
        ok = await honest.post(
            "/v1/sessions",
            json={"email": carol.email, "password": PASSWORD},  # type: ignore[attr-defined]
        )
        assert ok.status_code == 201, ok.text

        # Sign-ups (12 an hour per address and node): Mallory's burst, then Carol's friend.
        in_a_row = 0
        for attempt in range(80):
            body = form(email=f"mallory{attempt}-{id(mallory)}@example.org", rpps=None)
            reply = await mallory.post("/v1/accounts", json=body)
            assert reply.status_code in (201, 429), reply.text
            in_a_row = in_a_row + 1 if reply.status_code == 429 else 0
            if in_a_row == 4:
                break
        assert in_a_row == 4
        friend = await honest.post(
            "/v1/accounts", json=form(email=f"ami-{id(honest)}@example.org", rpps=None)
        )
        assert friend.status_code == 201, friend.text


async def test_a_50_mib_upload_goes_through_the_proxy(deployment: Deployment) -> None:
    alice = await verified(deployment)
    data = sample("application/pdf", MAX_ATTACHMENT)
    described = await upload_document(alice, data, name="dossier.pdf")  # type: ignore[arg-type]
    assert described["size"] == MAX_ATTACHMENT
    assert await download_document(alice, described["id"]) == data  # type: ignore[arg-type]


async def test_a_node_taken_out_of_the_upstream_while_clients_are_connected(
    deployment: Deployment,
) -> None:
    """Last in this module: it leaves one node only."""
    accounts = [await verified(deployment) for _ in range(6)]
    clients: list[Client] = [await connected(a) for a in accounts]  # type: ignore[arg-type]
    try:
        room = await clients[0].create_room("group", [c.user_id for c in clients[1:]])
        first = await clients[0].send(room.id, sealed(b"avant"))
        for c in clients[1:]:
            assert [m.seq for m in await messages_from_others(c, room.id, 1)] == [first]
        leaving, staying = deployment.nodes
        deployment.nginx.reload([deployment.upstream(staying)])
        await asyncio.sleep(0.5)  # nginx starts its new workers (no event to wait on)
        leaving.stop()  # SIGTERM: its clients get 1012 and come back through nginx
        sent = [await clients[0].send(room.id, sealed(f"pendant {i}".encode())) for i in range(5)]
        for c in clients[1:]:
            got = await messages_from_others(c, room.id, 5)
            assert [m.seq for m in got] == sent  # each once, in order, none lost
    finally:
        for c in clients:
            await c.close()
