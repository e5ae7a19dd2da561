"""Loading the synthetic directory into a store, with progress (the CLI's
``seed-directory`` and the benchmark use it)."""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import TextIO

from storage.directory import DirectoryStore

from .seed import SeedBatch, generate

__all__ = ["midnight_ms", "seed_directory"]


def midnight_ms(day: dt.date) -> int:
    """Midnight UTC of ``day``, in ms."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


async def seed_directory(
    store: DirectoryStore,
    count: int,
    seed: int,
    start_ms: int,
    *,
    batch_size: int = 10_000,
    out: TextIO = sys.stderr,
    keep: list[SeedBatch] | None = None,
) -> dict[str, float]:
    """Load ``count`` practitioners (one transaction per batch), then build the search
    statistics; print progress to ``out``. Returns counts and the elapsed seconds.
    ``keep``: collects the batches' organisations, motives and slots (the benchmark
    books those slots), not their practitioners."""
    began = time.perf_counter()
    profiles = slots = organisations = 0
    for batch in generate(count, seed, start_ms, batch_size):
        await store.load_directory(batch.organisations, batch.profiles, batch.motives, batch.slots)
        if keep is not None:
            keep.append(SeedBatch(batch.organisations, [], batch.motives, batch.slots))
        profiles += len(batch.profiles)
        slots += len(batch.slots)
        organisations += len(batch.organisations)
        elapsed = time.perf_counter() - began
        rate = profiles / elapsed if elapsed else 0.0
        print(
            f"\rdirectory: {profiles:,}/{count:,} practitioners"
            f" ({100 * profiles / max(count, 1):.0f}%),"
            f" {slots:,} slots, {elapsed:.0f} s, {rate:,.0f}/s",
            end="",
            file=out,
            flush=True,
        )
    print(file=out)
    print("directory: building search statistics...", file=out, flush=True)
    await store.finish_directory_load()
    elapsed = time.perf_counter() - began
    print(
        f"directory: {profiles:,} practitioners, {organisations:,} organisations,"
        f" {slots:,} slots loaded in {elapsed:.1f} s",
        file=out,
        flush=True,
    )
    return {
        "profiles": profiles,
        "organisations": organisations,
        "slots": slots,
        "seconds": elapsed,
    }


async def seed_command(database_url: str, count: int, seed: int, start: str | None) -> int:
    """``python -m server seed-directory``: open the store, load, close."""
    from storage import open_store

    day = dt.date.fromisoformat(start) if start else dt.datetime.now(dt.UTC).date()
    store = await open_store(database_url)
    try:
        existing = await store.directory_size()
        if existing:
            print(
                f"directory: {existing:,} practitioners already there; adding more", file=sys.stderr
            )
        await seed_directory(store, count, seed, midnight_ms(day))
    finally:
        await store.close()
    return 0
