"""Command line: ``python -m server run`` and the admin commands.

python -m server run [--host H] [--port P] [--fd N]
python -m server users verify EMAIL      mark an identity as verified
python -m server users unverify EMAIL
python -m server users grant|revoke EMAIL ROLE   platform roles: reviewer, regulator, admin
python -m server stats decryption [--since S]   end-to-end decryption failure rate
python -m server seed-directory [--count N] [--seed S] [--start YYYY-MM-DD]   synthetic directory
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from pathlib import Path

import uvicorn

from storage import Store, open_store
from storage.roles import ROLES, Role

from .app import create_app
from .audit import record
from .config import Settings
from .directory.profiles import on_identity_verified
from .http_protocol import FirstRequestProtocol
from .log import configure_logging
from .revocation import revoke_from_outside
from .shutdown import GracefulServer
from .websocket import WebSocketProtocol

__all__ = ["main"]


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="auto",
        # An ordinary /v1/ws upgrade is answered at once; anything else goes on to
        # BoundedHttpProtocol: httptools, with bounded heads, bodies and times.
        http=FirstRequestProtocol,
        # X-Forwarded-For / -Proto are believed from these only (none: the empty list).
        forwarded_allow_ips=list(settings.trusted_proxies),
        ws=WebSocketProtocol,  # /v1/ws without ASGI; no compression (ciphertext)
        lifespan="on",
        log_level=settings.log_level,
        log_config=None,  # every logger goes to the root's handler: server.log
        access_log=False,
        server_header=False,  # no "Server: uvicorn": nothing to fingerprint
        timeout_graceful_shutdown=10,
        # The accept queue holds a reconnect storm while the node works through it:
        # when a node dies, its clients all dial the others within a quarter of a
        # second (SPEC §2.2). uvicorn's 2048 overflowed there, and an overflowed
        # queue drops the handshake's last ACK, which the client only repeats after
        # seconds (one waited a minute). The kernel caps it at net.core.somaxconn.
        backlog=65_535,
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    overrides = {}
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    server = GracefulServer(uvicorn_config(settings))
    if args.fd is None:
        print(f"Confrère listening on http://{settings.host}:{settings.port}", flush=True)
        server.run()
    else:
        # socket(fileno=) reads family, type and protocol from the descriptor, so the
        # event loop sees a TCP socket and sets TCP_NODELAY on accepted connections
        # (uvicorn's own --fd handling assumes AF_UNIX and leaves Nagle on).
        server.run(sockets=[socket.socket(fileno=args.fd)])
    return 0


class NoDatabase(Exception):
    """An admin command pointed at a SQLite database that does not exist."""


def _sqlite_path(url: str) -> Path | None:
    scheme, _, rest = url.partition("://")
    if scheme != "sqlite":
        return None
    return Path(rest[1:] if rest.startswith("/") else rest)


async def _existing_store(url: str) -> Store:
    """The store of an admin command: never a new, empty SQLite file (a command run from
    the wrong directory would otherwise create one and find no account in it)."""
    path = _sqlite_path(url)
    if path is not None and not path.is_file():
        raise NoDatabase(
            f"no database at {path.absolute()} (CONFRERE_DATABASE_URL={url}): run this "
            "from the directory the server runs in, or set CONFRERE_DATABASE_URL"
        )
    return await open_store(url)


async def _set_verified(email: str, verified: bool) -> int:
    settings = Settings.from_env()
    store = await _existing_store(settings.database_url)
    try:
        user = await store.user_by_email(email.strip().lower())
        if user is None:
            print(f"no account for {email}", file=sys.stderr)
            return 1
        if verified and not user.email_confirmed:
            # SPEC §9.2: identity verification needs a confirmed e-mail, by any way.
            print(
                f"{user.email}: e-mail not confirmed yet, so not verified: confirm it first "
                "with the code sent at sign-up (python -m clients confirm-email CODE, or the "
                "web client)",
                file=sys.stderr,
            )
            return 1
        await store.set_verified(user.id, verified)
        await record(store, "admin.verified" if verified else "admin.unverified", None, user.id)
        if verified:
            await on_identity_verified(store, user)  # as by any other path
        print(f"{user.email}: {'verified' if verified else 'not verified'}")
        # Close the user's live connections on every node: at once through the nodes'
        # broker, else at each node's next session check.
        if not verified and not await revoke_from_outside(
            settings.broker_url, user.id, "unverified"
        ):
            print(
                "its open connections close within"
                f" {settings.session_check_interval_s:.0f} s (each node's session check):"
                " give this command the nodes' CONFRERE_BROKER_URL to close them at once"
            )
        return 0
    finally:
        await store.close()


async def _set_role(email: str, role: Role, grant: bool) -> int:
    store = await _existing_store(Settings.from_env().database_url)
    try:
        user = await store.user_by_email(email.strip().lower())
        if user is None:
            print(f"no account for {email}", file=sys.stderr)
            return 1
        if grant:
            await store.grant_role(user.id, role, int(time.time() * 1000))
        else:
            await store.revoke_role(user.id, role)
        action = "admin.role_granted" if grant else "admin.role_revoked"
        await record(store, action, None, user.id, role=role)
        print(f"{user.email}: {', '.join(sorted(await store.roles_of(user.id))) or 'no role'}")
        return 0
    finally:
        await store.close()


async def _decryption_health(since_s: int) -> int:
    """Print the decryption failure rate: the figure that says whether end-to-end
    encryption works for people (failures reported by clients per message stored)."""
    store = await _existing_store(Settings.from_env().database_url)
    try:
        since = int(time.time() * 1000) - since_s * 1000
        health = await store.decryption_health(since)
    finally:
        await store.close()
    print(
        f"last {since_s} s: {health.failures} decryption failures for {health.messages} "
        f"messages ({health.rate * 1000:.2f} per 1000)"
    )
    for reason, count in sorted(health.by_reason.items(), key=lambda kv: -kv[1]):
        print(f"  {reason}: {count}")
    for room, device, count in health.worst:
        print(f"  room {room}, sender device {device}: {count}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="Confrère server")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="serve HTTP and WebSocket")
    run_p.add_argument("--host")
    run_p.add_argument("--port", type=int)
    run_p.add_argument("--fd", type=int, help="serve on an already bound socket")
    users = sub.add_parser("users", help="administer accounts")
    users_sub = users.add_subparsers(dest="action", required=True)
    for action in ("verify", "unverify"):
        p = users_sub.add_parser(action, help=f"{action} a practitioner's identity")
        p.add_argument("email")
    for action in ("grant", "revoke"):
        p = users_sub.add_parser(action, help=f"{action} a platform role")
        p.add_argument("email")
        p.add_argument("role", choices=ROLES)
    stats = sub.add_parser("stats", help="operator figures")
    stats_sub = stats.add_subparsers(dest="figure", required=True)
    decryption = stats_sub.add_parser("decryption", help="end-to-end decryption failure rate")
    decryption.add_argument("--since", type=int, default=3600, help="window in seconds")
    seed_p = sub.add_parser("seed-directory", help="load a synthetic practitioner directory")
    seed_p.add_argument("--count", type=int, default=400_000)
    seed_p.add_argument("--seed", type=int, default=1)
    seed_p.add_argument("--start", help="first agenda day, YYYY-MM-DD (default: today, UTC)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "run":
        return run(args)
    try:
        return _admin(args)
    except NoDatabase as exc:
        print(exc, file=sys.stderr)
        return 2


def _admin(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.command == "stats":
        return asyncio.run(_decryption_health(args.since))
    if args.command == "seed-directory":
        from .directory.seeding import seed_command

        return asyncio.run(seed_command(settings.database_url, args.count, args.seed, args.start))
    if args.action in ("grant", "revoke"):
        return asyncio.run(_set_role(args.email, args.role, args.action == "grant"))
    return asyncio.run(_set_verified(args.email, args.action == "verify"))
