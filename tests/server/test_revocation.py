"""Revoked sessions close their live connections: log-out (4401), an identity
unverified by an administrator (4403), session expiry and deletions made where no node
hears of them (the session watch), and a log-out on another node (the broker)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from raw_ws import closed_with, raw_connection

from clients.python import log_in
from clients.python.rest import request
from harness import PASSWORD, ROOT, ServerUnderTest, practitioner, running_server, settings_for
from protocol import CloseCode
from protocol.frames import Ack, Event, Hello, Ping, Pong, RoomCreate, Welcome
from server.auth import hash_token
from storage.audit import AuditQuery


async def test_log_out_closes_that_sessions_connections_only(server: ServerUnderTest) -> None:
    alice = await practitioner(server.url, server.store)
    phone = await log_in(server.url, alice.email, PASSWORD, device_name="phone")
    async with (
        raw_connection(server.url, alice) as laptop_ws,
        raw_connection(server.url, phone) as phone_ws,
    ):
        await request(server.url, "DELETE", "/v1/sessions/current", token=alice.token)
        assert await closed_with(laptop_ws) == CloseCode.UNAUTHENTICATED
        await phone_ws.send(Ping(7))
        assert isinstance(await phone_ws.reply_to(7), Pong)  # the other session lives


async def test_an_administrator_unverifying_a_user_closes_their_connections(
    server: ServerUnderTest,
) -> None:
    admin = await practitioner(server.url, server.store)
    await server.store.grant_role(admin.user_id, "admin", 1)
    bob = await practitioner(server.url, server.store)
    async with raw_connection(server.url, bob) as bob_ws:
        reply = await request(
            server.url,
            "PUT",
            f"/v1/admin/users/{bob.user_id}/verified",
            json={"verified": False},
            token=admin.token,
        )
        assert reply == {"user": {"id": bob.user_id, "verified": False}}
        assert await closed_with(bob_ws) == CloseCode.FORBIDDEN
    # Reconnecting works, but as an unverified user.
    async with raw_connection(server.url) as again:
        await again.send(Hello(1, bob.token, bob.device_id))
        welcome = await again.reply_to(1)
        assert isinstance(welcome, Welcome) and not welcome.verified
    [entry] = await server.store.audit_entries(AuditQuery(action="admin.unverified"))
    assert entry.actor == admin.user_id and entry.target == bob.user_id


async def test_the_session_watch_closes_expired_and_deleted_sessions(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, session_check_interval_s=0.1, session_ttl_s=2)
    async with running_server(settings) as srv:
        alice = await practitioner(srv.url, srv.store)
        bob = await practitioner(srv.url, srv.store)
        async with raw_connection(srv.url, alice) as a, raw_connection(srv.url, bob) as b:
            # Deleted behind the nodes' back (another node's log-out on the in-process
            # broker, a database clean-up): closed at the next check.
            await srv.store.delete_session(hash_token(alice.token))
            assert await closed_with(a, 5) == CloseCode.UNAUTHENTICATED
            # Expired: closed within a check of its expiry (2 s after log-in).
            assert await closed_with(b, 10) == CloseCode.UNAUTHENTICATED


async def test_a_log_out_on_another_node_closes_the_connection_through_the_broker(
    tmp_path: Path, redis_url: str
) -> None:
    # No session watch to speak of: only the broker can tell node A in time.
    base = settings_for(tmp_path, broker_url=redis_url, session_check_interval_s=3600)
    async with running_server(base) as node_a, running_server(base) as node_b:
        alice = await practitioner(node_a.url, node_a.store)
        async with raw_connection(node_a.url, alice) as ws:
            await asyncio.sleep(0)  # the connection is subscribed once the welcome came
            await request(node_b.url, "DELETE", "/v1/sessions/current", token=alice.token)
            assert await closed_with(ws, 5) == CloseCode.UNAUTHENTICATED


async def test_a_device_revoked_on_another_node_is_closed_there_within_a_second(
    tmp_path: Path, redis_url: str
) -> None:
    """``DELETE /v1/devices/{id}`` on node B: the device's connection on node A closes
    through the broker (no session watch in time), and A's other members get the
    ``device.revoked`` event of their room."""
    base = settings_for(tmp_path, broker_url=redis_url, session_check_interval_s=3600)
    async with running_server(base) as node_a, running_server(base) as node_b:
        alice = await practitioner(node_a.url, node_a.store)
        phone = await log_in(node_a.url, alice.email, PASSWORD, device_name="phone")
        bob = await practitioner(node_a.url, node_a.store)
        async with (
            raw_connection(node_a.url, phone) as phone_ws,
            raw_connection(node_a.url, bob) as bob_ws,
        ):
            await bob_ws.send(RoomCreate(2, "direct", (alice.user_id,)))
            assert isinstance(await bob_ws.reply_to(2), Ack)
            await request(node_b.url, "DELETE", f"/v1/devices/{phone.device_id}", token=alice.token)
            assert await closed_with(phone_ws, 1.0) == CloseCode.UNAUTHENTICATED
            async with asyncio.timeout(5):
                event = await bob_ws.recv()
                while not (isinstance(event, Event) and event.kind == "device.revoked"):
                    event = await bob_ws.recv()
            assert (event.user, event.device) == (alice.user_id, phone.device_id)


async def test_the_admin_command_unverify_closes_connections_through_the_broker(
    tmp_path: Path, redis_url: str
) -> None:
    settings = settings_for(tmp_path, broker_url=redis_url, session_check_interval_s=3600)
    async with running_server(settings) as srv:
        bob = await practitioner(srv.url, srv.store)
        async with raw_connection(srv.url, bob) as ws:
            command = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server",
                "users",
                "unverify",
                bob.email,
                cwd=ROOT,
                env={
                    **os.environ,
                    "CONFRERE_DATABASE_URL": settings.database_url,
                    "CONFRERE_BROKER_URL": redis_url,
                    "CONFRERE_LOG_LEVEL": "warning",
                },
                stdout=asyncio.subprocess.DEVNULL,
            )
            assert await command.wait() == 0
            assert await closed_with(ws, 5) == CloseCode.FORBIDDEN
        [entry] = await srv.store.audit_entries(AuditQuery(action="admin.unverified"))
        assert entry.actor is None and entry.target == bob.user_id


async def test_the_admin_command_says_when_it_cannot_reach_the_nodes(tmp_path: Path) -> None:
    """Without the nodes' broker URL the command cannot close connections at once: it
    says so, and when they will close (the nodes' session check)."""
    settings = settings_for(tmp_path)
    async with running_server(settings) as srv:
        bob = await practitioner(srv.url, srv.store)
    env = {k: v for k, v in os.environ.items() if k != "CONFRERE_BROKER_URL"}
    command = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "users",
        "unverify",
        bob.email,
        cwd=ROOT,
        env={**env, "CONFRERE_DATABASE_URL": settings.database_url, "CONFRERE_LOG_LEVEL": "error"},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await command.communicate()
    assert command.returncode == 0
    assert "close within 60 s" in out.decode() and "CONFRERE_BROKER_URL" in out.decode()
