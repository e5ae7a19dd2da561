"""The SQL store's part of :class:`storage.backup.BackupStore`."""

from __future__ import annotations

from collections.abc import Sequence

from ..backup import MAX_BACKUP_ENTRIES, KeyBackup
from ..errors import BackupFull, BackupReplaced, NoSuchBackup
from .base import SqlBase
from .engine import Tx

__all__ = ["SqlBackup"]

_COLS = "user_id, version, salt, opslimit, memlimit, check_value, created_at, updated_at"
_SQL_INSERT = f"INSERT INTO key_backups ({_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
_SQL_GET = (
    f"SELECT {_COLS}, (SELECT count(*) FROM key_backup_entries e WHERE e.user_id = b.user_id)"
    " FROM key_backups b WHERE user_id = $1"
)
_SQL_VERSION = "SELECT version FROM key_backups WHERE user_id = $1"
_SQL_PUT = (
    "INSERT INTO key_backup_entries (user_id, entry_id, data, updated_at)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, entry_id) DO UPDATE"
    " SET data = excluded.data, updated_at = excluded.updated_at"
)
_SQL_COUNT = "SELECT count(*) FROM key_backup_entries WHERE user_id = $1"
_SQL_PAGE = (
    "SELECT entry_id, data FROM key_backup_entries WHERE user_id = $1 AND entry_id > $2"
    " ORDER BY entry_id LIMIT $3"
)
_SQL_DELETE = (
    "DELETE FROM key_backup_entries WHERE user_id = $1",
    "DELETE FROM key_backups WHERE user_id = $1",
)


async def _check_version(c: Tx, user_id: str, version: str) -> None:
    current = await c.fetchval(_SQL_VERSION, user_id)
    if current is None:
        raise NoSuchBackup(user_id)
    if current != version:
        raise BackupReplaced(version)


class SqlBackup(SqlBase):
    async def create_key_backup(self, backup: KeyBackup) -> None:
        async def tx(c: Tx) -> None:
            for statement in _SQL_DELETE:
                await c.execute(statement, backup.user_id)
            await c.execute(
                _SQL_INSERT,
                backup.user_id,
                backup.version,
                backup.salt,
                backup.opslimit,
                backup.memlimit,
                backup.check,
                backup.created_at,
                backup.updated_at,
            )

        await self.db.run("create_key_backup", tx, "transaction")

    async def key_backup(self, user_id: str) -> KeyBackup | None:
        row = await self.db.run("key_backup", lambda c: c.fetchrow(_SQL_GET, user_id), "read")
        if row is None:
            return None
        return KeyBackup(
            row[0], row[1], bytes(row[2]), row[3], row[4], bytes(row[5]), row[6], row[7], row[8]
        )

    async def put_backup_entries(
        self, user_id: str, version: str, entries: Sequence[tuple[str, bytes]], now: int
    ) -> int:
        async def tx(c: Tx) -> int:
            await _check_version(c, user_id, version)
            await c.executemany(_SQL_PUT, [(user_id, i, data, now) for i, data in entries])
            count = int(await c.fetchval(_SQL_COUNT, user_id))
            if count > MAX_BACKUP_ENTRIES:
                raise BackupFull(user_id)  # rolls the transaction back
            await c.execute(
                "UPDATE key_backups SET updated_at = $2 WHERE user_id = $1", user_id, now
            )
            return count

        return await self.db.run("put_backup_entries", tx, "transaction")

    async def backup_entries(
        self, user_id: str, version: str, after: str, limit: int
    ) -> list[tuple[str, bytes]]:
        async def tx(c: Tx) -> list[tuple[str, bytes]]:
            await _check_version(c, user_id, version)
            rows = await c.fetch(_SQL_PAGE, user_id, after, limit)
            return [(r[0], bytes(r[1])) for r in rows]

        return await self.db.run("backup_entries", tx, "transaction")

    async def delete_key_backup(self, user_id: str) -> bool:
        async def tx(c: Tx) -> bool:
            await c.execute(_SQL_DELETE[0], user_id)
            return await c.execute(_SQL_DELETE[1], user_id) > 0

        return await self.db.run("delete_key_backup", tx, "transaction")
