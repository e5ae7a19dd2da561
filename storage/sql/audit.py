"""The SQL store's part of :class:`storage.audit.AuditStore` and
:class:`storage.retention.RetentionStore`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..audit import AuditEntry, AuditQuery, NewAuditEntry
from ..retention import PurgedRoom
from .base import SqlBase
from .engine import Tx

__all__ = ["SqlAudit", "insert_audit"]


def _dump(detail: dict[str, Any]) -> str:
    return json.dumps(detail, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


_SQL_INSERT = (
    "INSERT INTO audit_log (ts, action, actor, target, detail)"
    " SELECT $5::bigint, a, b, t, d"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
    " WITH ORDINALITY AS u(a, b, t, d, i)"
    " ORDER BY i RETURNING id"
)
# Closed since: the last room.updated event of a closed room (see storage.retention).
_CLOSED_AT = "(SELECT max(t.ts) FROM timeline t WHERE t.room_id = r.id AND t.kind = 'room.updated')"
_SQL_TO_PURGE = (
    f"SELECT id FROM (SELECT r.id, {_CLOSED_AT} AS closed_at FROM rooms r"
    " WHERE r.kind = $1 AND r.status = 'closed') s"
    " WHERE closed_at < $2 ORDER BY closed_at LIMIT $3"
)
_SQL_LOCK_ROOM = (
    f"SELECT r.kind, {_CLOSED_AT} FROM rooms r WHERE r.id = $1 AND r.status = 'closed'"
    " FOR UPDATE OF r"
)
_SQL_CLAIM_ATTACHMENTS = "UPDATE attachments SET state = 'deleting' WHERE room_id = $1 RETURNING id"
_SQL_PURGED_ATTACHMENTS = (
    "SELECT a.id FROM attachments a JOIN rooms r ON r.id = a.room_id"
    " WHERE r.status = 'purged' LIMIT $1"
)


async def insert_audit(c: Tx, entries: Sequence[NewAuditEntry], now: int) -> list[int]:
    """Append ``entries`` inside the caller's transaction; return their ids."""
    if not entries:
        return []
    rows = await c.fetch(
        _SQL_INSERT,
        [e.action for e in entries],
        [e.actor for e in entries],
        [e.target for e in entries],
        [_dump(e.detail) for e in entries],
        now,
    )
    return [r[0] for r in rows]


class SqlAudit(SqlBase):
    async def append_audit(self, entries: list[NewAuditEntry], now: int) -> list[int]:
        return await self.db.run(
            "append_audit", lambda c: insert_audit(c, entries, now), "transaction"
        )

    async def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        where: list[str] = ["TRUE"]
        args: list[object] = []

        def arg(value: object) -> str:
            args.append(value)
            return f"${len(args)}"

        for column, value in (("actor", query.actor), ("target", query.target)):
            if value is not None:
                where.append(f"{column} = {arg(value)}")
        if query.action is not None:
            if query.action.endswith("."):
                a = arg(query.action)
                where.append(f"substr(action, 1, length({a})) = {a}")
            else:
                where.append(f"action = {arg(query.action)}")
        if query.since is not None:
            where.append(f"ts >= {arg(query.since)}::bigint")
        if query.before_id is not None:
            where.append(f"id < {arg(query.before_id)}::bigint")
        sql = (
            "SELECT id, ts, action, actor, target, detail FROM audit_log"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {arg(query.limit)}"
        )
        rows = await self.db.run("audit_entries", lambda c: c.fetch(sql, *args), "read")
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    # -- retention

    async def rooms_to_purge(self, kind: str, closed_before: int, limit: int) -> list[str]:
        rows = await self.db.run(
            "rooms_to_purge",
            lambda c: c.fetch(_SQL_TO_PURGE, kind, closed_before, limit),
            "read",
        )
        return [r[0] for r in rows]

    async def purge_room(self, room_id: str, closed_before: int, now: int) -> PurgedRoom | None:
        async def tx(c: Tx) -> PurgedRoom | None:
            row = await c.fetchrow(_SQL_LOCK_ROOM, room_id)
            if row is None or row[1] is None or row[1] >= closed_before:
                return None
            kind: str = row[0]
            attachments = tuple(r[0] for r in await c.fetch(_SQL_CLAIM_ATTACHMENTS, room_id))
            items = await c.execute("DELETE FROM timeline WHERE room_id = $1", room_id)
            await c.execute("DELETE FROM memberships WHERE room_id = $1", room_id)
            await c.execute("DELETE FROM decryption_failures WHERE room_id = $1", room_id)
            await c.execute(
                "UPDATE rooms SET status = 'purged', name = NULL, header = NULL WHERE id = $1",
                room_id,
            )
            detail = {"kind": kind, "items": items, "attachments": len(attachments)}
            await insert_audit(c, [NewAuditEntry("retention.purge", None, room_id, detail)], now)
            return PurgedRoom(room_id, kind, items, attachments)

        return await self.db.run("purge_room", tx, "transaction")

    async def purged_attachments(self, limit: int) -> list[str]:
        rows = await self.db.run(
            "purged_attachments", lambda c: c.fetch(_SQL_PURGED_ATTACHMENTS, limit), "read"
        )
        return [r[0] for r in rows]
