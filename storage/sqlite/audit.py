"""SQLite part of :class:`storage.audit.AuditStore` and
:class:`storage.retention.RetentionStore`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..audit import AuditEntry, AuditQuery, NewAuditEntry
from ..retention import PurgedRoom
from .base import SqliteBase

__all__ = ["SqliteAudit", "insert_audit"]


def _dump(detail: dict[str, Any]) -> str:
    return json.dumps(detail, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def insert_audit(c: sqlite3.Connection, entries: Sequence[NewAuditEntry], now: int) -> list[int]:
    """Append ``entries`` inside the caller's transaction; return their ids."""
    return [
        c.execute(
            "INSERT INTO audit_log (ts, action, actor, target, detail) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id",
            (now, e.action, e.actor, e.target, _dump(e.detail)),
        ).fetchone()[0]
        for e in entries
    ]


# Closed since: the last room.updated event of a closed room (see storage.retention).
_CLOSED_AT = "(SELECT max(t.ts) FROM timeline t WHERE t.room_id = r.id AND t.kind = 'room.updated')"


class SqliteAudit(SqliteBase):
    async def append_audit(self, entries: list[NewAuditEntry], now: int) -> list[int]:
        return await self._write("append_audit", lambda c: insert_audit(c, entries, now))

    async def audit_entries(self, query: AuditQuery) -> list[AuditEntry]:
        where: list[str] = ["1 = 1"]
        args: list[str | int] = []
        for column, value in (("actor", query.actor), ("target", query.target)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if query.action is not None:
            if query.action.endswith("."):
                where.append("substr(action, 1, ?) = ?")
                args += [len(query.action), query.action]
            else:
                where.append("action = ?")
                args.append(query.action)
        if query.since is not None:
            where.append("ts >= ?")
            args.append(query.since)
        if query.before_id is not None:
            where.append("id < ?")
            args.append(query.before_id)
        sql = (
            "SELECT id, ts, action, actor, target, detail FROM audit_log"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
        )

        def q(c: sqlite3.Connection) -> list[AuditEntry]:
            rows = c.execute(sql, (*args, query.limit)).fetchall()
            return [AuditEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

        return await self._read("audit_entries", q)

    # -- retention

    async def rooms_to_purge(self, kind: str, closed_before: int, limit: int) -> list[str]:
        def q(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                f"SELECT r.id, {_CLOSED_AT} AS closed_at FROM rooms r"
                " WHERE r.kind = ? AND r.status = 'closed' AND closed_at < ?"
                " ORDER BY closed_at LIMIT ?",
                (kind, closed_before, limit),
            )
            return [row[0] for row in rows]

        return await self._read("rooms_to_purge", q)

    async def purge_room(self, room_id: str, closed_before: int, now: int) -> PurgedRoom | None:
        def tx(c: sqlite3.Connection) -> PurgedRoom | None:
            row = c.execute(
                f"SELECT r.kind, {_CLOSED_AT} FROM rooms r WHERE r.id = ? AND r.status = 'closed'",
                (room_id,),
            ).fetchone()
            if row is None or row[1] is None or row[1] >= closed_before:
                return None
            kind = row[0]
            attachments = tuple(
                r[0]
                for r in c.execute(
                    "UPDATE attachments SET state = 'deleting' WHERE room_id = ? RETURNING id",
                    (room_id,),
                )
            )
            items = c.execute("DELETE FROM timeline WHERE room_id = ?", (room_id,)).rowcount
            c.execute("DELETE FROM memberships WHERE room_id = ?", (room_id,))
            c.execute("DELETE FROM decryption_failures WHERE room_id = ?", (room_id,))
            c.execute(
                "UPDATE rooms SET status = 'purged', name = NULL, header = NULL WHERE id = ?",
                (room_id,),
            )
            detail = {"kind": kind, "items": items, "attachments": len(attachments)}
            insert_audit(c, [NewAuditEntry("retention.purge", None, room_id, detail)], now)
            return PurgedRoom(room_id, kind, items, attachments)

        return await self._write("purge_room", tx)

    async def purged_attachments(self, limit: int) -> list[str]:
        def q(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                "SELECT a.id FROM attachments a JOIN rooms r ON r.id = a.room_id"
                " WHERE r.status = 'purged' LIMIT ?",
                (limit,),
            )
            return [row[0] for row in rows]

        return await self._read("purged_attachments", q)
