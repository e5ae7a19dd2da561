"""PostgreSQL part of :class:`storage.accounts.AccountStore`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..accounts import DELETED_FIRST_NAME, DELETED_LAST_NAME, ResetCheck, SessionRow
from ..outbox import NewNotification
from ..types import Session
from .base import Conn, PostgresBase
from .outbox import insert_notifications

_SQL_SESSIONS_OF = (
    "SELECT s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at, d.name"
    " FROM sessions s JOIN devices d ON d.id = s.device_id"
    " WHERE s.user_id = $1 AND s.expires_at > $2 ORDER BY s.created_at, s.token_hash"
)
# Deletes the account's sessions, all of them ($2 NULL) or those listed, except $3.
_SQL_DELETE_SESSIONS = (
    "DELETE FROM sessions WHERE user_id = $1"
    " AND ($2::bytea[] IS NULL OR token_hash = ANY($2::bytea[]))"
    " AND ($3::bytea IS NULL OR token_hash <> $3::bytea) RETURNING token_hash"
)
_SQL_UPSERT_RESET = (
    "INSERT INTO password_resets (user_id, code_hash, expires_at, created_at)"
    " VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET"
    " code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = 0,"
    " created_at = excluded.created_at"
)

_ERASE_USER = (
    "UPDATE users SET email = 'deleted+' || id || '@invalid', password_hash = '!',"
    " first_name = $2, last_name = $3, postcode = '', city = '', rpps = NULL,"
    " verified = false, email_confirmed = false WHERE id = $1"
)
_ERASE = (
    "DELETE FROM device_keys WHERE user_id = $1",
    "DELETE FROM push_subscriptions WHERE user_id = $1",
    "DELETE FROM password_resets WHERE user_id = $1",
    "DELETE FROM email_codes WHERE user_id = $1",
    "DELETE FROM psc_flows WHERE user_id = $1",
    "DELETE FROM user_roles WHERE user_id = $1",
    "DELETE FROM directory_favourites WHERE user_id = $1",
    "UPDATE directory_profiles SET user_id = NULL, visible = false WHERE user_id = $1",
)


async def _delete_sessions(
    c: Conn, user_id: str, only: Sequence[bytes] | None, keep: bytes | None
) -> list[bytes]:
    rows = await c.fetch(_SQL_DELETE_SESSIONS, user_id, None if only is None else list(only), keep)
    return [bytes(r[0]) for r in rows]


class PostgresAccounts(PostgresBase):
    async def sessions_of(self, user_id: str, now: int) -> list[SessionRow]:
        rows = await self._run(
            "sessions_of", lambda c: c.fetch(_SQL_SESSIONS_OF, user_id, now), "statement"
        )
        return [SessionRow(Session(bytes(r[0]), r[1], r[2], r[3], r[4]), r[5]) for r in rows]

    async def delete_sessions_of(
        self, user_id: str, only: Sequence[bytes] | None = None, keep: bytes | None = None
    ) -> list[bytes]:
        return await self._run(
            "delete_sessions_of",
            lambda c: _delete_sessions(c, user_id, only, keep),
            "statement",
        )

    async def change_password(self, user_id: str, password_hash: str, keep: bytes) -> list[bytes]:
        async def tx(c: Conn) -> list[bytes]:
            await c.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash
            )
            return await _delete_sessions(c, user_id, None, keep)

        return await self._run("change_password", tx, "transaction")

    async def start_password_reset(
        self,
        user_id: str,
        code_hash: bytes,
        expires_at: int,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> None:
        async def tx(c: Conn) -> None:
            await c.execute(_SQL_UPSERT_RESET, user_id, code_hash, expires_at, now)
            await insert_notifications(c, notifications, now)

        await self._run("start_password_reset", tx, "transaction")

    async def reset_password(
        self,
        user_id: str,
        matches: Callable[[bytes], bool],
        password_hash: str,
        now: int,
        max_attempts: int,
    ) -> tuple[ResetCheck, list[bytes]]:
        async def tx(c: Conn) -> tuple[ResetCheck, list[bytes]]:
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
            await c.execute(
                "UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash
            )
            return "reset", await _delete_sessions(c, user_id, None, None)

        return await self._run("reset_password", tx, "transaction")

    async def delete_account(self, user_id: str) -> list[bytes]:
        async def tx(c: Conn) -> list[bytes]:
            await c.execute(_ERASE_USER, user_id, DELETED_FIRST_NAME, DELETED_LAST_NAME)
            for statement in _ERASE:
                await c.execute(statement, user_id)
            return await _delete_sessions(c, user_id, None, None)

        return await self._run("delete_account", tx, "transaction")
