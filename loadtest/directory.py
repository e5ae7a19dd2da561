"""``python -m loadtest directory``: the practitioner directory at scale, per storage
adapter: seeding time, search latency for a fixed mix of queries, booking throughput.

For each adapter (SQLite in a temporary directory; PostgreSQL on ``--postgres-url``, an
empty database, or on a throwaway server started with ``--start-postgres``) it loads
``--count`` synthetic practitioners (``server.directory.seed``, deterministic for
``--seed``), then times ``--queries`` searches of each kind, through the store (the
REST layer adds its JSON encoding on top):

- ``name prefix``: the first 3 to 6 letters of a frequent last name, as typed;
- ``specialty+city``: a specialty (drawn with the directory's mix) within 10 km of a
  city (drawn by population);
- ``cpts``: the members of one CPTS;
- ``radius``: everyone within 5 to 20 km of a city (drawn by population);
- ``sas slots``: free SAS-eligible slots within 20 km of a city, over the two days the
  agendas cover (not part of the search mix: the regulators' search).

and prints p50/p99/max per kind (target: p99 under 20 ms). Then it books
``--bookings`` free slots, 8 at a time, each with its two patient notifications in the
booking's transaction, and prints bookings per second. Last, it starts a node
(``python -m server run``) on that database and sends the same queries through REST, one
at a time, as a signed-in regulator (``GET /v1/directory/search`` with ``q``,
``specialty`` + ``lat``/``lon``, ``cpts``, ``lat``/``lon``; ``GET /v1/sas/slots``), and
prints their p50/p99/max as the client sees them (HTTP, JSON, authentication included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import random
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from server.auth import hash_password
from server.directory.cities import french_cities
from server.directory.names import LAST_NAMES, SPECIALTIES
from server.directory.seed import SeedBatch
from server.directory.seeding import midnight_ms, seed_directory
from storage import Store, open_store
from storage.directory import DirectoryQuery, NewAppointment, SasQuery
from storage.ids import new_id
from storage.outbox import NewNotification
from storage.search_text import normalise
from storage.types import NewUser

from .postgres import fresh_database, start_postgres
from .server_process import ServerProcess
from .stats import percentiles

__all__ = ["add_arguments", "run"]

KINDS = ("name prefix", "specialty+city", "cpts", "radius")
Query = DirectoryQuery | SasQuery


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=400_000, help="practitioners to load")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=300, help="searches of each kind")
    parser.add_argument("--bookings", type=int, default=500)
    parser.add_argument(
        "--adapter", action="append", choices=("sqlite", "postgres"), help="default: both"
    )
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to use")
    parser.add_argument(
        "--start-postgres",
        action="store_true",
        help="start a throwaway PostgreSQL (needs the server binaries and the repo's tests/)",
    )
    parser.add_argument("--report", help="also write the figures to this JSON file")


@contextlib.asynccontextmanager
async def _database(adapter: str, args: argparse.Namespace, tmp: Path) -> AsyncIterator[str]:
    if adapter == "sqlite":
        yield f"sqlite:///{tmp / 'directory.db'}"
        return
    if args.postgres_url:
        yield args.postgres_url
        return
    if not args.start_postgres:
        raise SystemExit("postgres: give --postgres-url URL or --start-postgres")
    server = start_postgres()
    try:
        yield await fresh_database(server)
    finally:
        server.stop()


def _queries(seed: int, n: int, cpts: list[str], start_ms: int) -> dict[str, list[Query]]:
    rng = random.Random(seed * 7919)
    cities = french_cities()
    weights = [c.population for c in cities]
    specialties = [s for s, _, _ in SPECIALTIES]
    shares = [share for _, share, _ in SPECIALTIES]
    out: dict[str, list[Query]] = {k: [] for k in (*KINDS, "sas slots")}
    for _ in range(n):
        last = normalise(rng.choice(LAST_NAMES)).replace(" ", "")
        out["name prefix"].append(DirectoryQuery((last[: rng.randint(3, 6)],)))
        city = rng.choices(cities, weights)[0]
        specialty = normalise(rng.choices(specialties, shares)[0])
        out["specialty+city"].append(
            DirectoryQuery(specialty=specialty, near=(city.lat, city.lon), radius_km=10)
        )
        out["cpts"].append(DirectoryQuery(cpts=rng.choice(cpts)))
        city = rng.choices(cities, weights)[0]
        radius = rng.choice((5.0, 10.0, 20.0))
        out["radius"].append(DirectoryQuery(near=(city.lat, city.lon), radius_km=radius))
        city = rng.choices(cities, weights)[0]
        window = (start_ms, start_ms + 2 * 86_400_000)
        out["sas slots"].append(SasQuery((city.lat, city.lon), 20, *window, limit=20))
    return out


async def _one(store: Store, q: Query) -> int:
    if isinstance(q, SasQuery):
        return len(await store.sas_slots(q))
    return len((await store.search_directory(q)).hits)


async def _timed(
    queries: dict[str, list[Query]], one: Callable[[Query], Awaitable[int]]
) -> dict[str, Any]:
    """p50/p99/max (ms) and mean hits per kind of ``one(query)``, run one at a time
    after a warm-up."""
    for q in [q for qs in queries.values() for q in qs[:20]]:  # warm the caches
        await one(q)
    figures: dict[str, Any] = {}
    for kind, qs in queries.items():
        times, hits = [], 0
        for q in qs:
            start = time.perf_counter()
            hits += await one(q)
            times.append((time.perf_counter() - start) * 1000)
        summary = percentiles(times)
        figures[kind] = {
            "p50_ms": summary["p50"],
            "p99_ms": summary["p99"],
            "max_ms": summary["max"],
            "mean_hits": round(hits / max(1, len(qs)), 1),
        }
    return figures


async def _searches(store: Store, queries: dict[str, list[Query]]) -> dict[str, Any]:
    return await _timed(queries, lambda q: _one(store, q))


async def _bookings(store: Store, batches: list[SeedBatch], n: int) -> dict[str, Any]:
    booker = await store.create_user(
        NewUser(
            f"bench-{new_id()}@example.org", "x", "Bench", "Mark", "75011", "Paris", "MG", "liberal"
        ),
        1,
    )
    free = [(sid, slot.motive_ids[0]) for b in batches for sid, _, slot in b.slots][:n]
    patient = {"first_name": "Marie", "last_name": "Durand", "phone": "+33645372653"}
    queue = list(free)
    done = 0

    async def worker() -> None:
        nonlocal done
        while queue:
            slot_id, motive = queue.pop()
            aid = new_id()
            notes = [
                NewNotification("sms", "+33645372653", "appointment_booked", {"appointment": aid}),
                NewNotification(
                    "email", "m@example.org", "appointment_booked", {"appointment": aid}
                ),
            ]
            new = NewAppointment(aid, slot_id, motive, booker.id, "referral", patient, "", (), 1)
            await store.book(new, notes, 1)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(8)))
    elapsed = time.perf_counter() - start
    return {"bookings": done, "seconds": round(elapsed, 2), "per_s": round(done / elapsed, 1)}


def _rest_params(q: Query) -> tuple[str, dict[str, Any]]:
    """The REST request a client sends for this query."""
    if isinstance(q, SasQuery):
        lat, lon = q.near
        return "/v1/sas/slots", {
            "lat": lat,
            "lon": lon,
            "radius_km": q.radius_km,
            "from": q.starts_from,
            "to": q.starts_before,
            "limit": q.limit,
        }
    params: dict[str, Any] = {"limit": 20}
    if q.words:
        params["q"] = " ".join(q.words)
    if q.specialty:
        params["specialty"] = q.specialty
    if q.cpts:
        params["cpts"] = q.cpts
    if q.near is not None:
        params.update(lat=q.near[0], lon=q.near[1], radius_km=q.radius_km)
    return "/v1/directory/search", params


async def _regulator(store: Store) -> tuple[str, str]:
    """A regulator account to search with (the SAS search needs the role)."""
    password = secrets.token_urlsafe(16)
    user = await store.create_user(
        NewUser(
            f"regulateur-{new_id().lower()}@example.org",
            await hash_password(password, "min"),
            "Sam",
            "Régul",
            "75012",
            "Paris",
            "Régulateur",
            "salarie",
            email_confirmed=True,
            verified=True,
            profession="regulator",
        ),
        1,
    )
    await store.grant_role(user.id, "regulator", 1)
    return user.email, password


async def _rest_searches(
    url: str, tmp: Path, login: tuple[str, str], queries: dict[str, list[Query]]
) -> dict[str, Any]:
    node = ServerProcess(
        {
            "CONFRERE_DATABASE_URL": url,
            "CONFRERE_PASSWORD_COST": "min",
            "CONFRERE_LOG_LEVEL": "warning",
            "CONFRERE_SERVER_KEY_FILE": str(tmp / "server.key"),
            "CONFRERE_BLOB_URL": f"file://{tmp / 'blobs'}",
        }
    )
    await node.start()
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
            answer = await http.post("/v1/sessions", json={"email": login[0], "password": login[1]})
            answer.raise_for_status()
            http.headers["Authorization"] = f"Bearer {answer.json()['token']}"

            async def one(q: Query) -> int:
                path, params = _rest_params(q)
                r = await http.get(path, params=params)
                if r.status_code != 200:
                    raise RuntimeError(f"{path} {params}: {r.status_code} {r.text[:200]}")
                body = r.json()
                return len(body["slots"] if "slots" in body else body["results"])

            return await _timed(queries, one)
    finally:
        node.stop()


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"count": args.count, "seed": args.seed}
    start_ms = midnight_ms(dt.date(2030, 1, 7))
    for adapter in args.adapter or ["sqlite", "postgres"]:
        with tempfile.TemporaryDirectory(prefix="confrere-directory-") as tmp:
            async with _database(adapter, args, Path(tmp)) as url:
                store = await open_store(url)
                try:
                    print(f"== {adapter}: seeding {args.count:,} practitioners", file=sys.stderr)
                    kept: list[SeedBatch] = []
                    seeded = await seed_directory(store, args.count, args.seed, start_ms, keep=kept)
                    cpts = [o.id for b in kept for o in b.organisations if o.kind == "cpts"]
                    queries = _queries(args.seed, args.queries, cpts, start_ms)
                    searches = await _searches(store, queries)
                    bookings = await _bookings(store, kept, args.bookings)
                    login = await _regulator(store)
                finally:
                    await store.close()
                print(f"== {adapter}: the same queries through REST", file=sys.stderr)
                rest = await _rest_searches(url, Path(tmp), login, queries)
        report[adapter] = {
            "seed_s": round(seeded["seconds"], 1),
            "search": searches,
            "rest": rest,
            "book": bookings,
        }
        print(f"\n{adapter}: {args.count:,} practitioners seeded in {seeded['seconds']:.0f} s")
        for title, figures in (("store", searches), ("REST", rest)):
            print(f"  {title + ': query':<22}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'hits':>7}")
            for kind, f in figures.items():
                print(
                    f"  {kind:<22}{f['p50_ms']:>9.2f}{f['p99_ms']:>9.2f}{f['max_ms']:>9.2f}"
                    f"{f['mean_hits']:>7.1f}"
                )
        print(
            f"  bookings: {bookings['bookings']} in {bookings['seconds']} s,"
            f" {bookings['per_s']}/s (8 concurrent, notifications in the same transaction)"
        )
    return report


def run(args: argparse.Namespace) -> int:
    report = asyncio.run(_bench(args))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2))
    return 0
