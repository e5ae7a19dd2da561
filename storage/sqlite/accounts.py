"""SQLite part of :class:`storage.accounts.AccountStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from ..accounts import DELETED_FIRST_NAME, DELETED_LAST_NAME, ResetCheck, SessionRow
from ..outbox import NewNotification
from ..types import Session
from .base import SqliteBase
from .outbox import insert_notifications

_ERASE = (
    "UPDATE users SET email = 'deleted+' || id || '@invalid', password_hash = '!',"
    " first_name = ?, last_name = ?, postcode = '', city = '', rpps = NULL, verified = 0,"
    " email_confirmed = 0 WHERE id = ?",
    "DELETE FROM device_keys WHERE user_id = ?",
    "DELETE FROM push_subscriptions WHERE user_id = ?",
    "DELETE FROM password_resets WHERE user_id = ?",
    "DELETE FROM email_codes WHERE user_id = ?",
    "DELETE FROM psc_flows WHERE user_id = ?",
    "DELETE FROM user_roles WHERE user_id = ?",
    "DELETE FROM directory_favourites WHERE user_id = ?",
    "UPDATE directory_profiles SET user_id = NULL, visible = 0 WHERE user_id = ?",
)


def _delete_sessions(
    c: sqlite3.Connection, user_id: str, only: Sequence[bytes] | None, keep: bytes | None
) -> list[bytes]:
    rows = c.execute("SELECT token_hash FROM sessions WHERE user_id=?", (user_id,))
    doomed = [bytes(h) for (h,) in rows if h != keep and (only is None or h in only)]
    c.executemany("DELETE FROM sessions WHERE token_hash=?", [(h,) for h in doomed])
    return doomed


class SqliteAccounts(SqliteBase):
    async def sessions_of(self, user_id: str, now: int) -> list[SessionRow]:
        def q(c: sqlite3.Connection) -> list[SessionRow]:
            rows = c.execute(
                "SELECT s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at,"
                " d.name FROM sessions s JOIN devices d ON d.id = s.device_id"
                " WHERE s.user_id=? AND s.expires_at>? ORDER BY s.created_at, s.token_hash",
                (user_id, now),
            )
            return [SessionRow(Session(bytes(r[0]), *r[1:5]), r[5]) for r in rows]

        return await self._read("sessions_of", q)

    async def delete_sessions_of(
        self, user_id: str, only: Sequence[bytes] | None = None, keep: bytes | None = None
    ) -> list[bytes]:
        return await self._write(
            "delete_sessions_of", lambda c: _delete_sessions(c, user_id, only, keep)
        )

    async def change_password(self, user_id: str, password_hash: str, keep: bytes) -> list[bytes]:
        def tx(c: sqlite3.Connection) -> list[bytes]:
            c.execute("UPDATE users SET password_hash=? WHERE id=?", (password_hash, user_id))
            return _delete_sessions(c, user_id, None, keep)

        return await self._write("change_password", tx)

    async def start_password_reset(
        self,
        user_id: str,
        code_hash: bytes,
        expires_at: int,
        notifications: Sequence[NewNotification],
        now: int,
    ) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO password_resets (user_id, code_hash, expires_at, created_at)"
                " VALUES (?,?,?,?) ON CONFLICT (user_id) DO UPDATE SET"
                " code_hash=excluded.code_hash, expires_at=excluded.expires_at, attempts=0,"
                " created_at=excluded.created_at",
                (user_id, code_hash, expires_at, now),
            )
            insert_notifications(c, notifications, now)

        await self._write("start_password_reset", tx)

    async def reset_password(
        self,
        user_id: str,
        matches: Callable[[bytes], bool],
        password_hash: str,
        now: int,
        max_attempts: int,
    ) -> tuple[ResetCheck, list[bytes]]:
        def tx(c: sqlite3.Connection) -> tuple[ResetCheck, list[bytes]]:
            row = c.execute(
                "SELECT code_hash, expires_at, attempts FROM password_resets WHERE user_id=?",
                (user_id,),
            ).fetchone()
            if row is None:
                return "none", []
            code_hash, expires_at, attempts = row
            if attempts >= max_attempts:
                return "exhausted", []
            if expires_at <= now:
                return "expired", []
            if not matches(bytes(code_hash)):
                c.execute(
                    "UPDATE password_resets SET attempts = attempts + 1 WHERE user_id=?",
                    (user_id,),
                )
                return "wrong", []
            c.execute("DELETE FROM password_resets WHERE user_id=?", (user_id,))
            c.execute("UPDATE users SET password_hash=? WHERE id=?", (password_hash, user_id))
            return "reset", _delete_sessions(c, user_id, None, None)

        return await self._write("reset_password", tx)

    async def delete_account(self, user_id: str) -> list[bytes]:
        def tx(c: sqlite3.Connection) -> list[bytes]:
            c.execute(_ERASE[0], (DELETED_FIRST_NAME, DELETED_LAST_NAME, user_id))
            for statement in _ERASE[1:]:
                c.execute(statement, (user_id,))
            return _delete_sessions(c, user_id, None, None)

        return await self._write("delete_account", tx)
