"""The SQL store's part of :class:`storage.roles.RoleStore`."""

from __future__ import annotations

from ..errors import NoSuchUser
from ..roles import Role
from .base import SqlBase
from .engine import Tx

__all__ = ["SqlRoles"]

_SQL_GRANT = (
    "INSERT INTO user_roles (user_id, role, granted_at)"
    " SELECT id, $2, $3 FROM users WHERE id = $1 ON CONFLICT DO NOTHING"
)
_SQL_HAS_USER = "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)"
_SQL_REVOKE = "DELETE FROM user_roles WHERE user_id = $1 AND role = $2"
_SQL_ROLES_OF = "SELECT role FROM user_roles WHERE user_id = $1"


class SqlRoles(SqlBase):
    async def grant_role(self, user_id: str, role: Role, now: int) -> None:
        async def tx(c: Tx) -> None:
            if not await c.fetchval(_SQL_HAS_USER, user_id):
                raise NoSuchUser(f"no user {user_id}")
            await c.execute(_SQL_GRANT, user_id, role, now)

        await self.db.run("grant_role", tx, "transaction")

    async def revoke_role(self, user_id: str, role: Role) -> bool:
        status = await self.db.run(
            "revoke_role", lambda c: c.execute(_SQL_REVOKE, user_id, role), "write"
        )
        return status > 0

    async def roles_of(self, user_id: str) -> frozenset[str]:
        rows = await self.db.run("roles_of", lambda c: c.fetch(_SQL_ROLES_OF, user_id), "read")
        return frozenset(r[0] for r in rows)
