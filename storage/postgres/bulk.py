"""Bulk load of :class:`storage.bulk.BulkRows` into PostgreSQL: COPY, one transaction."""

from __future__ import annotations

import asyncpg

from ..bulk import COLUMNS, TABLE_ORDER, BulkRows, Progress
from .base import split_url

__all__ = ["load_postgres"]

CHUNK = 50_000


async def load_postgres(url: str, rows: BulkRows, progress: Progress | None = None) -> None:
    dsn, _ = split_url(url)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for table in TABLE_ORDER:
                data = getattr(rows, table)
                for start in range(0, len(data), CHUNK):
                    await conn.copy_records_to_table(
                        table, records=data[start : start + CHUNK], columns=list(COLUMNS[table])
                    )
                    if progress is not None:
                        progress(table, min(len(data), start + CHUNK))
    finally:
        await conn.close()
