"""Bulk load of :class:`storage.bulk.BulkRows` into SQLite: one transaction, executemany.

``synchronous=OFF`` for the load only: it is one transaction on a fresh load-test
database, so a crash mid-load loses the whole load, which is then simply rerun.
"""

from __future__ import annotations

import sqlite3

from ..bulk import COLUMNS, TABLE_ORDER, BulkRows, Progress

__all__ = ["load_sqlite"]

CHUNK = 50_000


def load_sqlite(path: str, rows: BulkRows, progress: Progress | None = None) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in TABLE_ORDER:
                cols = COLUMNS[table]
                sql = (
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                )
                data = getattr(rows, table)
                for start in range(0, len(data), CHUNK):
                    conn.executemany(sql, data[start : start + CHUNK])
                    if progress is not None:
                        progress(table, min(len(data), start + CHUNK))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
