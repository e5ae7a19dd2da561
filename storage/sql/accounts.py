"""The SQL store's part of :class:`storage.accounts.AccountStore`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..accounts import DELETED_FIRST_NAME, DELETED_LAST_NAME, ResetCheck, SessionRow
from ..outbox import NewNotification
from ..types import Session
from .base import SqlBase
from .engine import Tx
from .outbox import insert_notifications

__all__ = ["SqlAccounts"]

_SQL_SESSIONS_OF = (
    "SELECT s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at, d.name"
    " FROM sessions s JOIN devices d ON d.id = s.device_id"
    " WHERE s.user_id = $1 AND s.expires_at > $2 ORDER BY s.created_at, s.token_hash"
)
_SQL_UPSERT_RESET = (
    "INSERT INTO password_resets (user_id, code_hash, expires_at, created_at)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET"
    " code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0,"
    " created_at = excluded.created_at"
)
_SQL_SET_PASSWORD = "UPDATE users SET password_hash = $2 WHERE id = $1"
_SQL_ERASE_USER = (
    "UPDATE users SET email = 'deleted+' || id || '@invalid', password_hash = '!',"
    " first_name = $2, last_name = $3, postcode = '', city = '', rpps = NULL,"
    " verified = false, email_confirmed = false WHERE id = $1"
)
_SQL_ERASE = (
    "DELETE FROM device_keys WHERE user_id = $1",
    "DELETE FROM identity_keys WHERE user_id = $1",
    "DELETE FROM push_subscriptions WHERE user_id = $1",
    "DELETE FROM key_backup_entries WHERE user_id = $1",
    "DELETE FROM key_backups WHERE user_id = $1",
    "DELETE FROM password_resets WHERE user_id = $1",
    "DELETE FROM email_codes WHERE user_id = $1",
    "DELETE FROM psc_flows WHERE user_id = $1",
    "DELETE FROM user_roles WHERE user_id = $1",
    "DELETE FROM directory_favourites WHERE user_id = $1",
    "UPDATE directory_profiles SET user_id = NULL, visible = false WHERE user_id = $1",
)


async def _delete_sessions(
    c: Tx, user_id: str, only: Sequence[bytes] | None, keep: bytes | None
) -> list[bytes]:
    """Delete the account's sessions (only those of ``only`` when given, never
    ``keep``); return their hashes. Inside a transaction."""
    rows = await c.fetch("SELECT token_hash FROM sessions WHERE user_id = $1", user_id)
    hashes = [bytes(r[0]) for r in rows]
    doomed = [h for h in hashes if h != keep and (only is None or h in only)]
    await c.executemany("DELETE FROM sessions WHERE token_hash = $1", [(h,) for h in doomed])
    return doomed


class SqlAccounts(SqlBase):
    async def sessions_of(self, user_id: str, now: int) -> list[SessionRow]:
        rows = await self.db.run(
            "sessions_of", lambda c: c.fetch(_SQL_SESSIONS_OF, user_id, now), "read"
        )
        return [SessionRow(Session(bytes(r[0]), r[1], r[2], r[3], r[4]), r[5]) for r in rows]

    async def delete_sessions_of(
        self, user_id: str, only: Sequence[bytes] | None = None, keep: bytes | None = None
    ) -> list[bytes]:
        return await self.db.run(
            "delete_sessions_of",
            lambda c: _delete_sessions(c, user_id, only, keep),
            "transaction",
        )

    async def change_password(self, user_id: str, password_hash: str, keep: bytes) -> list[bytes]:
        async def tx(c: Tx) -> list[bytes]:
            await c.execute(_SQL_SET_PASSWORD, user_id, password_hash)
            return await _delete_sessions(c, user_id, None, keep)

        return await self.db.run("change_password", tx, "transaction")

    async def start_password_reset(
        self,
        user_id: str,
        code_hash: bytes,
        expires_at: int,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> None:
        async def tx(c: Tx) -> None:
            await c.execute(_SQL_UPSERT_RESET, user_id, code_hash, expires_at, now)
            await insert_notifications(c, notifications, now)

        await self.db.run("start_password_reset", tx, "transaction")

    async def reset_password(
        self,
        user_id: str,
        matches: Callable[[bytes], bool],
        password_hash: str,
        now: int,
        max_attempts: int,
    ) -> tuple[ResetCheck, list[bytes]]:
        async def tx(c: Tx) -> tuple[ResetCheck, list[bytes]]:
            row = await c.fetchrow(
                "SELECT code_hash, expires_at, attempts FROM password_resets"
                " WHERE user_id = $1 FOR UPDATE",
                user_id,
            )
            if row is None:
                return "none", []
            code_hash, expires_at, attempts = row
            if attempts >= max_attempts:
                return "exhausted", []
            if expires_at <= now:
                return "expired", []
            if not matches(bytes(code_hash)):
                await c.execute(
                    "UPDATE password_resets SET attempts = attempts + 1 WHERE user_id = $1",
                    user_id,
                )
                return "wrong", []
            await c.execute("DELETE FROM password_resets WHERE user_id = $1", user_id)
            await c.execute(_SQL_SET_PASSWORD, user_id, password_hash)
            return "reset", await _delete_sessions(c, user_id, None, None)

        return await self.db.run("reset_password", tx, "transaction")

    async def delete_account(self, user_id: str) -> list[bytes]:
        async def tx(c: Tx) -> list[bytes]:
            await c.execute(_SQL_ERASE_USER, user_id, DELETED_FIRST_NAME, DELETED_LAST_NAME)
            for statement in _SQL_ERASE:
                await c.execute(statement, user_id)
            return await _delete_sessions(c, user_id, None, None)

        return await self.db.run("delete_account", tx, "transaction")
