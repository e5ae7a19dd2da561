"""The audit log: an append-only record of access to patient data and of
administrative actions, queryable by administrators.

Append-only is enforced by the database itself (triggers refuse UPDATE, DELETE and,
on PostgreSQL, TRUNCATE of ``audit_log``), not only by this interface having no
method to change an entry. Entries name people by opaque ids only; ``detail`` holds
ids, counts and codes, never names, e-mail addresses or patient fields.

Actions recorded (``action``, ``target``):

- ``retention.purge`` (room id): a closed room purged by the retention sweeper;
- ``admin.*`` (user id): an administrator's action, e.g. ``admin.role_granted``,
  ``admin.unverified``, ``admin.verified`` (``actor`` None: the command line);
- ``identity.reviewed`` (user id): a reviewer's decision on an identity request;
- ``patient.*`` (referral or room id): a read of patient data, e.g.
  ``patient.referral_viewed``;
- ``audit.read``: an administrator queried this log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AuditEntry", "AuditQuery", "AuditStore", "NewAuditEntry"]


@dataclass(frozen=True, slots=True)
class NewAuditEntry:
    action: str
    actor: str | None  # the user who acted; None for the system (sweeper, CLI)
    target: str | None = None  # what it was done to (user, room, referral id)
    detail: dict[str, Any] = field(default_factory=dict)  # JSON-able, ids only


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: int
    action: str
    actor: str | None
    target: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters, all optional; entries come newest first, ``before_id`` pages back."""

    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending with "." ("admin.")
    target: str | None = None
    since: int | None = None  # ts >= since (ms)
    before_id: int | None = None
    limit: int = 100


class AuditStore(Protocol):
    async def append_audit(self, entries: list[NewAuditEntry], now: int) -> list[int]:
        """Append entries (one transaction); return their ids, increasing."""

    async def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        """Entries matching ``query``, newest first, at most ``query.limit``."""
