"""SQLite part of :class:`storage.roles.RoleStore`."""

from __future__ import annotations

import sqlite3

from ..errors import NotFound
from ..roles import Role
from .base import SqliteBase

__all__ = ["SqliteRoles"]


class SqliteRoles(SqliteBase):
    async def grant_role(self, user_id: str, role: Role, now: int) -> None:
        def tx(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is None:
                raise NotFound(f"no user {user_id}")
            c.execute(
                "INSERT INTO user_roles (user_id, role, granted_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (user_id, role, now),
            )

        await self._write("grant_role", tx)

    async def revoke_role(self, user_id: str, role: Role) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "DELETE FROM user_roles WHERE user_id = ? AND role = ?", (user_id, role)
            )
            return cur.rowcount > 0

        return await self._write("revoke_role", tx)

    async def roles_of(self, user_id: str) -> frozenset[str]:
        def q(c: sqlite3.Connection) -> frozenset[str]:
            rows = c.execute("SELECT role FROM user_roles WHERE user_id = ?", (user_id,))
            return frozenset(r[0] for r in rows)

        return await self._read("roles_of", q)
