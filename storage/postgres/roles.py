"""PostgreSQL part of :class:`storage.roles.RoleStore`."""

from __future__ import annotations

from ..errors import NotFound
from ..roles import Role
from .base import Conn, PostgresBase

__all__ = ["PostgresRoles"]

_SQL_GRANT = (
    "INSERT INTO user_roles (user_id, role, granted_at)"
    " SELECT id, $2, $3 FROM users WHERE id = $1 ON CONFLICT DO NOTHING"
)
_SQL_HAS_USER = "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)"
_SQL_REVOKE = "DELETE FROM user_roles WHERE user_id = $1 AND role = $2"
_SQL_ROLES_OF = "SELECT role FROM user_roles WHERE user_id = $1"


class PostgresRoles(PostgresBase):
    async def grant_role(self, user_id: str, role: Role, now: int) -> None:
        async def tx(c: Conn) -> None:
            if not await c.fetchval(_SQL_HAS_USER, user_id):
                raise NotFound(f"no user {user_id}")
            await c.execute(_SQL_GRANT, user_id, role, now)

        await self._run("grant_role", tx, "transaction")

    async def revoke_role(self, user_id: str, role: Role) -> bool:
        status = await self._run(
            "revoke_role", lambda c: c.execute(_SQL_REVOKE, user_id, role), "statement"
        )
        return status != "DELETE 0"

    async def roles_of(self, user_id: str) -> frozenset[str]:
        rows = await self._run("roles_of", lambda c: c.fetch(_SQL_ROLES_OF, user_id), "statement")
        return frozenset(r[0] for r in rows)
