"""``python -m loadtest populate``: N verified practitioners with a device and a session
each, and a realistic room graph, loaded in bulk (one transaction).

All accounts share one precomputed password hash (of ``loadtest.population.PASSWORD``):
hashing 400,000 passwords with Argon2id would take hours and tests nothing the load
test measures. Sessions are created here and their tokens saved to ``--out`` (mode
0600), which ``idle``, ``run`` and ``bench`` read.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import nacl.pwhash

from server.clock import now_ms
from storage.bulk import BulkRows, bulk_load
from storage.ids import new_id
from storage.meta import pack_meta

from .graph import PlannedRoom, realistic_rooms, uniform_rooms
from .popfile import Population, save_population
from .population import PASSWORD
from .progress import Progress

__all__ = ["add_arguments", "build", "populate", "run"]

SESSION_TTL_MS = 30 * 86_400_000
SPECIALTIES = ("Médecine générale", "Cardiologie", "Pédiatrie", "Radiologie", "Psychiatrie")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=10_000, help="practitioners to create")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CONFRERE_DATABASE_URL", "sqlite:///var/loadtest.db"),
        help="where to load them (default $CONFRERE_DATABASE_URL, else var/loadtest.db)",
    )
    parser.add_argument("--out", type=Path, default=Path("var/population.msgpack"))
    parser.add_argument("--room-size", type=int, help="uniform rooms of this size instead")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, help="write the figures as JSON here")


def build(
    n: int, plan: list[PlannedRoom], database_url: str, now: int
) -> tuple[BulkRows, Population]:
    """Rows for the tables and the matching population file (pure apart from
    randomness)."""
    password_hash = nacl.pwhash.argon2id.str(
        PASSWORD.encode(),
        opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
        memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN,
    ).decode("ascii")
    tag = secrets.token_hex(3)
    rows = BulkRows()
    users: list[tuple[str, str, str]] = []
    expires = now + SESSION_TTL_MS
    for i in range(n):
        uid, did, token = new_id(), new_id(), secrets.token_urlsafe(32)
        rows.users.append(
            (
                uid,
                f"lt{i}-{tag}@loadtest.invalid",
                password_hash,
                "Charge",
                f"Test{i}",
                f"{75001 + i % 20:05d}",
                "Paris",
                SPECIALTIES[i % len(SPECIALTIES)],
                "liberal",
                True,
                now,
            )
        )
        rows.devices.append((did, uid, "loadtest", now))
        rows.sessions.append((hashlib.sha256(token.encode()).digest(), uid, did, now, expires))
        users.append((uid, did, token))
    rooms: list[tuple[str, str, list[int]]] = []
    for room in plan:
        rid = new_id()
        ids = [users[m][0] for m in room.members]
        creator = ids[0]
        direct_key = "|".join(sorted(ids)) if room.kind == "direct" else None
        # No name: names are end-to-end encrypted by clients (SPEC.md §11.4).
        rows.rooms.append((rid, room.kind, None, "open", creator, now, 1, direct_key))
        for k, uid in enumerate(ids):
            role = "owner" if k == 0 and room.kind != "direct" else "member"
            rows.memberships.append((rid, uid, role, 1))
        rows.timeline.append(
            (rid, 1, "member.joined", now, creator, pack_meta({"by": creator, "users": ids}))
        )
        rooms.append((rid, room.kind, list(room.members)))
    return rows, Population(database_url, users, rooms)


async def populate(
    n: int, database_url: str, out: Path, *, room_size: int | None = None, seed: int = 0
) -> dict[str, Any]:
    started = time.perf_counter()
    plan = uniform_rooms(n, room_size) if room_size else realistic_rooms(n, seed)
    rows, population = build(n, plan, database_url, now_ms())
    built = time.perf_counter()
    total = sum(len(getattr(rows, t)) for t in ("users", "devices", "sessions", "rooms"))
    total += len(rows.memberships) + len(rows.timeline)
    bar = Progress("populate", total)
    offsets: dict[str, int] = {}
    base = 0
    for table in ("users", "devices", "sessions", "rooms", "memberships", "timeline"):
        offsets[table] = base
        base += len(getattr(rows, table))

    def progress(table: str, done: int) -> None:
        bar.update(offsets[table] + done, table)

    await bulk_load(database_url, rows, progress)
    bar.done()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_population(out, population)
    elapsed = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for room in plan:
        kinds[room.kind] = kinds.get(room.kind, 0) + 1
    return {
        "users": n,
        "rooms": len(plan),
        "rooms_by_kind": kinds,
        "memberships": len(rows.memberships),
        "build_s": round(built - started, 2),
        "seconds": round(elapsed, 2),
        "users_per_s": round(n / elapsed, 1),
        "population_file": str(out),
    }


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(
        populate(args.users, args.database_url, args.out, room_size=args.room_size, seed=args.seed)
    )
    print(
        f"{report['users']} practitioners, {report['rooms']} rooms {report['rooms_by_kind']},"
        f" {report['memberships']} memberships in {report['seconds']} s"
        f" ({report['users_per_s']} practitioners/s); tokens in {report['population_file']}"
    )
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0
