"""Platform roles, beside room roles: who may review identity documents, book for the
SAS, or administer the service. Granted by an administrator (``python -m server users
grant EMAIL ROLE``); checked by :func:`server.sessions.require_role`."""

from __future__ import annotations

from typing import Literal, Protocol

__all__ = ["ROLES", "Role", "RoleStore"]

Role = Literal["reviewer", "regulator", "admin"]
ROLES: tuple[Role, ...] = ("reviewer", "regulator", "admin")


class RoleStore(Protocol):
    async def grant_role(self, user_id: str, role: Role, now: int) -> None:
        """Idempotent. Raise :class:`~storage.errors.NotFound` for an unknown user."""

    async def revoke_role(self, user_id: str, role: Role) -> bool:
        """``True`` if the user had the role."""

    async def roles_of(self, user_id: str) -> frozenset[str]: ...
