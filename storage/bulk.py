"""Bulk loading of synthetic populations (load testing): many rows, one transaction.

The Store interface creates accounts one at a time, each with its own password hash and
transaction: right for people, far too slow for 400,000 load-test practitioners. This
loads pre-built rows straight into the tables instead, on a schema the regular
migrations created (``open_store`` runs them first). Nothing here is reachable from the
server: only ``python -m loadtest populate`` calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BulkRows", "bulk_load"]

Row = tuple[Any, ...]


@dataclass(slots=True)
class BulkRows:
    """Rows in the column order of the 0001 schema's tables.

    - ``users``: id, email, password_hash, first_name, last_name, postcode, city,
      specialty, practice_mode, verified (bool), created_at
    - ``devices``: id, user_id, name, created_at
    - ``sessions``: token_hash (bytes), user_id, device_id, created_at, expires_at
    - ``rooms``: id, kind, name, status, created_by, created_at, last_seq, direct_key
    - ``memberships``: room_id, user_id, role, joined_seq
    - ``timeline``: room_id, seq, kind, ts, sender, meta (bytes): the rooms' first events
    """

    users: list[Row] = field(default_factory=list)
    devices: list[Row] = field(default_factory=list)
    sessions: list[Row] = field(default_factory=list)
    rooms: list[Row] = field(default_factory=list)
    memberships: list[Row] = field(default_factory=list)
    timeline: list[Row] = field(default_factory=list)


COLUMNS: dict[str, tuple[str, ...]] = {
    "users": (
        "id",
        "email",
        "password_hash",
        "first_name",
        "last_name",
        "postcode",
        "city",
        "specialty",
        "practice_mode",
        "verified",
        "created_at",
    ),
    "devices": ("id", "user_id", "name", "created_at"),
    "sessions": ("token_hash", "user_id", "device_id", "created_at", "expires_at"),
    "rooms": ("id", "kind", "name", "status", "created_by", "created_at", "last_seq", "direct_key"),
    "memberships": ("room_id", "user_id", "role", "joined_seq"),
    "timeline": ("room_id", "seq", "kind", "ts", "sender", "meta"),
}

# Parents before children (foreign keys).
TABLE_ORDER = ("users", "devices", "sessions", "rooms", "memberships", "timeline")

Progress = Callable[[str, int], None]
CHUNK = 50_000


async def bulk_load(database_url: str, rows: BulkRows, progress: Progress | None = None) -> None:
    """Insert ``rows`` in one transaction (all or nothing), after applying migrations.
    ``progress(table, rows_done)`` is called as tables fill."""
    from . import open_store

    store = await open_store(database_url)  # creates / migrates the schema
    await store.close()
    tables = [(t, COLUMNS[t], getattr(rows, t)) for t in TABLE_ORDER]
    scheme, _, rest = database_url.partition("://")
    if scheme == "sqlite":
        import asyncio

        from .sql.sqlite import bulk_insert

        path = rest[1:] if rest.startswith("/") else rest
        await asyncio.to_thread(bulk_insert, path, tables, CHUNK, progress)
    else:
        from .sql.postgres import bulk_copy

        await bulk_copy(database_url, tables, CHUNK, progress)
