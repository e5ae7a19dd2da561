"""SQLite adapter of :class:`storage.base.Store`: the embedded default.

This module holds accounts, rooms, the timeline, keys and attachments; the other domains
are mixins beside it (``outbox.py``, ``roles.py``...), all on :class:`SqliteBase`'s one
writer thread. Group commit (``append_messages``) shares each fsync among many messages.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import astuple
from typing import Any

from ..errors import NotFound
from ..ids import new_id
from ..meta import pack_meta, unpack_meta
from ..types import (
    AppendResult,
    Attachment,
    DecryptionHealth,
    Device,
    DeviceKeyBundle,
    Membership,
    NewAttachment,
    NewMessage,
    NewUser,
    Room,
    RoomMembers,
    Session,
    TimelineItem,
    ToDeviceItem,
    User,
)
from .accounts import SqliteAccounts
from .audit import SqliteAudit
from .base import SqliteBase
from .directory import SqliteDirectory
from .guests import SqliteGuests
from .outbox import SqliteOutbox
from .push import SqlitePush
from .roles import SqliteRoles
from .verification import SqliteVerification

__all__ = ["SqliteStore", "open_sqlite"]

_USER_COLS = (
    "id, email, password_hash, first_name, last_name, postcode, city, specialty,"
    " practice_mode, rpps, verified, created_at, email_confirmed, profession"
)
_ROOM_COLS = "id, kind, name, status, header, created_by, created_at, last_seq"
_ATTACHMENT_COLS = (
    "id, uploader, room_id, kind, content_type, name, size, sha256, key_id, state,"
    " created_at, referenced_at"
)


def _user(row: Any) -> User:
    values = list(row)
    values[10] = bool(values[10])  # verified
    values[12] = bool(values[12])  # email_confirmed
    return User(*values)


def _room(row: Any) -> Room:
    return Room(*row)


def _item(row: Any) -> TimelineItem:
    room_id, seq, kind, ts, sender, device, cid, body, meta = row
    return TimelineItem(room_id, seq, kind, ts, sender, device, cid, body, unpack_meta(meta))


def _attachment(row: Any) -> Attachment:
    return Attachment(*row)


def _attachment_refusal(c: sqlite3.Connection, m: NewMessage) -> str | None:
    """Why ``m`` may not reference its attachments, or ``None`` if it may."""
    ids = list(dict.fromkeys(m.attachments))
    marks = ",".join("?" * len(ids))
    found = {
        r[0]: r[1:]
        for r in c.execute(
            f"SELECT id, uploader, room_id, state FROM attachments WHERE id IN ({marks})", ids
        )
    }
    for attachment_id in ids:
        row = found.get(attachment_id)
        if row is None or row[2] != "ready":
            return "attachment_missing"
        if row[0] != m.sender or row[1] != m.room_id:
            return "attachment_forbidden"
    return None


class SqliteStore(
    SqliteAccounts,
    SqlitePush,
    SqliteAudit,
    SqliteDirectory,
    SqliteGuests,
    SqliteOutbox,
    SqliteRoles,
    SqliteVerification,
    SqliteBase,
):
    """Use :func:`open_sqlite` to construct; call :meth:`close` when done."""

    # -- accounts

    async def create_user(self, new: NewUser, now: int) -> User:
        user = new.to_user(new_id(), now)

        def tx(c: sqlite3.Connection) -> User:
            c.execute(
                f"INSERT INTO users ({_USER_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    user.id,
                    user.email,
                    user.password_hash,
                    user.first_name,
                    user.last_name,
                    user.postcode,
                    user.city,
                    user.specialty,
                    user.practice_mode,
                    user.rpps,
                    int(user.verified),
                    now,
                    int(user.email_confirmed),
                    user.profession,
                ),
            )
            return user

        return await self._write("create_user", tx)

    async def user_by_id(self, user_id: str) -> User | None:
        def q(c: sqlite3.Connection) -> User | None:
            row = c.execute(f"SELECT {_USER_COLS} FROM users WHERE id=?", (user_id,)).fetchone()
            return None if row is None else _user(row)

        return await self._read("user_by_id", q)

    async def user_by_email(self, email: str) -> User | None:
        def q(c: sqlite3.Connection) -> User | None:
            row = c.execute(f"SELECT {_USER_COLS} FROM users WHERE email=?", (email,)).fetchone()
            return None if row is None else _user(row)

        return await self._read("user_by_email", q)

    async def existing_user_ids(self, user_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(user_ids))

        def q(c: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                found.update(
                    r[0] for r in c.execute(f"SELECT id FROM users WHERE id IN ({marks})", chunk)
                )
            return found

        return await self._read("existing_user_ids", q)

    async def set_verified(self, user_id: str, verified: bool) -> None:
        await self._write(
            "set_verified",
            lambda c: c.execute("UPDATE users SET verified=? WHERE id=?", (int(verified), user_id)),
        )

    async def create_device(self, user_id: str, name: str, now: int) -> Device:
        device = Device(new_id(), user_id, name, now)
        await self._write(
            "create_device",
            lambda c: c.execute(
                "INSERT INTO devices (id, user_id, name, created_at) VALUES (?,?,?,?)",
                (device.id, user_id, name, now),
            ),
        )
        return device

    async def device(self, device_id: str) -> Device | None:
        def q(c: sqlite3.Connection) -> Device | None:
            row = c.execute(
                "SELECT id, user_id, name, created_at FROM devices WHERE id=?", (device_id,)
            ).fetchone()
            return None if row is None else Device(*row)

        return await self._read("device", q)

    async def devices_of(self, user_id: str) -> list[Device]:
        def q(c: sqlite3.Connection) -> list[Device]:
            rows = c.execute(
                "SELECT id, user_id, name, created_at FROM devices WHERE user_id=?"
                " ORDER BY created_at",
                (user_id,),
            )
            return [Device(*r) for r in rows]

        return await self._read("devices_of", q)

    async def create_session(self, session: Session) -> None:
        await self._write(
            "create_session",
            lambda c: c.execute(
                "INSERT INTO sessions (token_hash, user_id, device_id, created_at, expires_at)"
                " VALUES (?,?,?,?,?)",
                (
                    session.token_hash,
                    session.user_id,
                    session.device_id,
                    session.created_at,
                    session.expires_at,
                ),
            ),
        )

    async def session(self, token_hash: bytes) -> Session | None:
        def q(c: sqlite3.Connection) -> Session | None:
            row = c.execute(
                "SELECT token_hash, user_id, device_id, created_at, expires_at"
                " FROM sessions WHERE token_hash=?",
                (token_hash,),
            ).fetchone()
            return None if row is None else Session(*row)

        return await self._read("session", q)

    async def delete_session(self, token_hash: bytes) -> None:
        await self._write(
            "delete_session",
            lambda c: c.execute("DELETE FROM sessions WHERE token_hash=?", (token_hash,)),
        )

    # -- key directory

    async def put_device_keys(self, user_id: str, device_id: str, bundle: bytes, now: int) -> None:
        def tx(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "INSERT INTO device_keys (device_id, user_id, bundle, updated_at)"
                " SELECT id, user_id, ?, ? FROM devices WHERE id=? AND user_id=?"
                " ON CONFLICT (device_id) DO UPDATE"
                " SET bundle=excluded.bundle, updated_at=excluded.updated_at",
                (bundle, now, device_id, user_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no device {device_id} of user {user_id}")

        await self._write("put_device_keys", tx)

    async def device_keys(self, user_ids: Sequence[str]) -> list[DeviceKeyBundle]:
        ids = list(dict.fromkeys(user_ids))

        def q(c: sqlite3.Connection) -> list[DeviceKeyBundle]:
            found: list[DeviceKeyBundle] = []
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = c.execute(
                    "SELECT user_id, device_id, bundle, updated_at FROM device_keys"
                    f" WHERE user_id IN ({marks})",
                    chunk,
                )
                found.extend(DeviceKeyBundle(*r) for r in rows)
            return sorted(found, key=lambda k: (k.user_id, k.device_id))

        return await self._read("device_keys", q)

    async def count_decryption_failure(
        self, room_id: str, device_id: str, reason: str, now: int
    ) -> int:
        def tx(c: sqlite3.Connection) -> int:
            row = c.execute(
                "INSERT INTO decryption_failures (room_id, device_id, reason, count, updated_at)"
                " VALUES (?,?,?,1,?) ON CONFLICT (room_id, device_id, reason) DO UPDATE"
                " SET count = count + 1, updated_at = excluded.updated_at RETURNING count",
                (room_id, device_id, reason, now),
            ).fetchone()
            return int(row[0])

        return await self._write("count_decryption_failure", tx)

    async def decryption_failures(self, room_id: str) -> dict[tuple[str, str], int]:
        def q(c: sqlite3.Connection) -> dict[tuple[str, str], int]:
            rows = c.execute(
                "SELECT device_id, reason, count FROM decryption_failures WHERE room_id=?",
                (room_id,),
            )
            return {(d, r): int(n) for d, r, n in rows}

        return await self._read("decryption_failures", q)

    async def decryption_health(self, since: int, worst: int = 10) -> DecryptionHealth:
        def q(c: sqlite3.Connection) -> DecryptionHealth:
            by_reason = {
                r: int(n)
                for r, n in c.execute(
                    "SELECT reason, sum(count) FROM decryption_failures WHERE updated_at >= ?"
                    " GROUP BY reason",
                    (since,),
                )
            }
            top = [
                (room, device, int(n))
                for room, device, n in c.execute(
                    "SELECT room_id, device_id, sum(count) AS n FROM decryption_failures"
                    " WHERE updated_at >= ? GROUP BY room_id, device_id ORDER BY n DESC LIMIT ?",
                    (since, worst),
                )
            ]
            row = c.execute(
                "SELECT count(*) FROM timeline WHERE kind = 'msg' AND ts >= ?", (since,)
            ).fetchone()
            return DecryptionHealth(since, sum(by_reason.values()), int(row[0]), by_reason, top)

        return await self._read("decryption_health", q)

    # -- rooms

    @staticmethod
    def _next_seq(c: sqlite3.Connection, room_id: str) -> int:
        row = c.execute(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE id=? RETURNING last_seq", (room_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no room {room_id}")
        return int(row[0])

    def _event(
        self, c: sqlite3.Connection, room_id: str, kind: str, by: str, now: int, **meta: Any
    ) -> TimelineItem:
        seq = self._next_seq(c, room_id)
        meta = {"by": by, **{k: v for k, v in meta.items() if v is not None}}
        c.execute(
            "INSERT INTO timeline (room_id, seq, kind, ts, sender, meta) VALUES (?,?,?,?,?,?)",
            (room_id, seq, kind, now, by, pack_meta(meta)),
        )
        return TimelineItem(room_id, seq, kind, now, sender=by, meta=meta)

    async def create_room(
        self,
        kind: str,
        creator: str,
        members: Sequence[str],
        name: str | None,
        header: bytes | None,
        now: int,
    ) -> tuple[Room, TimelineItem | None]:
        others = [m for m in dict.fromkeys(members) if m != creator]
        direct_key = "|".join(sorted((creator, *others))) if kind == "direct" else None

        def tx(c: sqlite3.Connection) -> tuple[Room, TimelineItem | None]:
            if direct_key is not None:
                row = c.execute(
                    f"SELECT {_ROOM_COLS} FROM rooms WHERE direct_key=?", (direct_key,)
                ).fetchone()
                if row is not None:
                    return _room(row), None
            room_id = new_id()
            c.execute(
                "INSERT INTO rooms (id, kind, name, status, header, created_by, created_at,"
                " last_seq, direct_key) VALUES (?,?,?,'open',?,?,?,0,?)",
                (room_id, kind, name, header, creator, now, direct_key),
            )
            owner_role = "member" if kind == "direct" else "owner"
            c.executemany(
                "INSERT INTO memberships (room_id, user_id, role, joined_seq) VALUES (?,?,?,1)",
                [(room_id, creator, owner_role)] + [(room_id, u, "member") for u in others],
            )
            item = self._event(c, room_id, "member.joined", creator, now, users=[creator, *others])
            room = Room(room_id, kind, name, "open", header, creator, now, item.seq)
            return room, item

        return await self._write("create_room", tx)

    async def room(self, room_id: str) -> Room | None:
        def q(c: sqlite3.Connection) -> Room | None:
            row = c.execute(f"SELECT {_ROOM_COLS} FROM rooms WHERE id=?", (room_id,)).fetchone()
            return None if row is None else _room(row)

        return await self._read("room", q)

    async def room_members(self, room_id: str) -> RoomMembers | None:
        def q(c: sqlite3.Connection) -> RoomMembers | None:
            # One read transaction so members and last_seq are from the same snapshot.
            c.execute("BEGIN")
            try:
                row = c.execute(f"SELECT {_ROOM_COLS} FROM rooms WHERE id=?", (room_id,)).fetchone()
                if row is None:
                    return None
                room = _room(row)
                roles = dict(
                    c.execute("SELECT user_id, role FROM memberships WHERE room_id=?", (room_id,))
                )
                return RoomMembers(room, roles, room.last_seq)
            finally:
                c.execute("COMMIT")

        return await self._read("room_members", q)

    async def membership(self, room_id: str, user_id: str) -> Membership | None:
        def q(c: sqlite3.Connection) -> Membership | None:
            row = c.execute(
                "SELECT room_id, user_id, role, joined_seq, read_seq FROM memberships"
                " WHERE room_id=? AND user_id=?",
                (room_id, user_id),
            ).fetchone()
            return None if row is None else Membership(*row)

        return await self._read("membership", q)

    async def rooms_of(self, user_id: str) -> list[tuple[Room, Membership]]:
        cols = ", ".join(f"r.{c.strip()}" for c in _ROOM_COLS.split(","))

        def q(c: sqlite3.Connection) -> list[tuple[Room, Membership]]:
            rows = c.execute(
                f"SELECT {cols}, m.role, m.joined_seq, m.read_seq FROM memberships m"
                " JOIN rooms r ON r.id = m.room_id WHERE m.user_id=? ORDER BY r.created_at",
                (user_id,),
            )
            return [(_room(r[:8]), Membership(r[0], user_id, r[8], r[9], r[10])) for r in rows]

        return await self._read("rooms_of", q)

    async def share_room(self, user_a: str, user_b: str) -> bool:
        def q(c: sqlite3.Connection) -> bool:
            row = c.execute(
                "SELECT 1 FROM memberships a JOIN memberships b ON a.room_id = b.room_id"
                " WHERE a.user_id=? AND b.user_id=? LIMIT 1",
                (user_a, user_b),
            ).fetchone()
            return row is not None

        return await self._read("share_room", q)

    async def add_members(
        self, room_id: str, users: Sequence[str], by: str, now: int
    ) -> TimelineItem | None:
        def tx(c: sqlite3.Connection) -> TimelineItem | None:
            present = {
                r[0]
                for r in c.execute("SELECT user_id FROM memberships WHERE room_id=?", (room_id,))
            }
            new = [u for u in dict.fromkeys(users) if u not in present]
            if not new:
                return None
            item = self._event(c, room_id, "member.joined", by, now, users=new)
            c.executemany(
                "INSERT INTO memberships (room_id, user_id, role, joined_seq) VALUES (?,?,?,?)",
                [(room_id, u, "member", item.seq) for u in new],
            )
            return item

        return await self._write("add_members", tx)

    async def remove_member(
        self, room_id: str, user_id: str, by: str, reason: str, now: int
    ) -> TimelineItem | None:
        def tx(c: sqlite3.Connection) -> TimelineItem | None:
            cur = c.execute(
                "DELETE FROM memberships WHERE room_id=? AND user_id=?", (room_id, user_id)
            )
            if cur.rowcount == 0:
                return None
            return self._event(c, room_id, "member.left", by, now, user=user_id, reason=reason)

        return await self._write("remove_member", tx)

    async def update_room(
        self,
        room_id: str,
        by: str,
        now: int,
        name: str | None = None,
        header: bytes | None = None,
        status: str | None = None,
    ) -> TimelineItem:
        def tx(c: sqlite3.Connection) -> TimelineItem:
            c.execute(
                "UPDATE rooms SET name=coalesce(?, name), header=coalesce(?, header),"
                " status=coalesce(?, status) WHERE id=?",
                (name, header, status, room_id),
            )
            return self._event(
                c, room_id, "room.updated", by, now, name=name, header=header, status=status
            )

        return await self._write("update_room", tx)

    async def set_role(
        self, room_id: str, user_id: str, role: str, by: str, now: int
    ) -> TimelineItem | None:
        def tx(c: sqlite3.Connection) -> TimelineItem | None:
            member = c.execute(
                "SELECT 1 FROM memberships WHERE room_id=? AND user_id=?", (room_id, user_id)
            ).fetchone()
            if member is None:
                return None
            if role == "owner":
                c.execute(
                    "UPDATE memberships SET role='admin' WHERE room_id=? AND role='owner'",
                    (room_id,),
                )
            c.execute(
                "UPDATE memberships SET role=? WHERE room_id=? AND user_id=?",
                (role, room_id, user_id),
            )
            return self._event(c, room_id, "room.updated", by, now, user=user_id, role=role)

        return await self._write("set_role", tx)

    # -- timeline

    async def append_messages(self, batch: Sequence[NewMessage]) -> list[AppendResult]:
        def tx(c: sqlite3.Connection) -> list[AppendResult]:
            results: list[AppendResult] = []
            for m in batch:
                row = c.execute(
                    "SELECT room_id, seq, kind, ts, sender, device, cid, body, meta FROM timeline"
                    " WHERE device=? AND cid=?",
                    (m.device, m.cid),
                ).fetchone()
                if row is not None:
                    if row[0] != m.room_id:
                        results.append(AppendResult(None, refused="cid_reused"))
                    else:
                        results.append(AppendResult(_item(row), duplicate=True))
                    continue
                allowed = c.execute(
                    "SELECT r.status FROM memberships m JOIN rooms r ON r.id = m.room_id"
                    " WHERE m.room_id=? AND m.user_id=?",
                    (m.room_id, m.sender),
                ).fetchone()
                if allowed is None:
                    results.append(AppendResult(None, refused="not_member"))
                    continue
                if allowed[0] != "open":
                    results.append(AppendResult(None, refused="closed"))
                    continue
                refusal = _attachment_refusal(c, m) if m.attachments else None
                if refusal is not None:
                    results.append(AppendResult(None, refused=refusal))
                    continue
                seq = self._next_seq(c, m.room_id)
                c.execute(
                    "INSERT INTO timeline (room_id, seq, kind, ts, sender, device, cid, body)"
                    " VALUES (?,?,'msg',?,?,?,?,?)",
                    (m.room_id, seq, m.ts, m.sender, m.device, m.cid, m.body),
                )
                c.executemany(
                    "UPDATE attachments SET referenced_at = coalesce(referenced_at, ?) WHERE id=?",
                    [(m.ts, a) for a in dict.fromkeys(m.attachments)],
                )
                results.append(
                    AppendResult(
                        TimelineItem(m.room_id, seq, "msg", m.ts, m.sender, m.device, m.cid, m.body)
                    )
                )
            return results

        return await self._write("append_messages", tx)

    async def timeline(self, room_id: str, after: int, limit: int) -> list[TimelineItem]:
        def q(c: sqlite3.Connection) -> list[TimelineItem]:
            rows = c.execute(
                "SELECT room_id, seq, kind, ts, sender, device, cid, body, meta FROM timeline"
                " WHERE room_id=? AND seq>? ORDER BY seq LIMIT ?",
                (room_id, after, limit),
            )
            return [_item(r) for r in rows]

        return await self._read("timeline", q)

    async def set_read(self, room_id: str, user_id: str, seq: int) -> int:
        def tx(c: sqlite3.Connection) -> int:
            row = c.execute(
                "UPDATE memberships SET read_seq = max(read_seq,"
                " min(?, (SELECT last_seq FROM rooms WHERE id=?)))"
                " WHERE room_id=? AND user_id=? RETURNING read_seq",
                (seq, room_id, room_id, user_id),
            ).fetchone()
            return 0 if row is None else int(row[0])

        return await self._write("set_read", tx)

    # -- to-device queue

    async def push_to_device(
        self, device_id: str, sender_user: str, sender_device: str, body: bytes, now: int
    ) -> int:
        def tx(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO to_device (device_id, sender_user, sender_device, ts, body)"
                " VALUES (?,?,?,?,?)",
                (device_id, sender_user, sender_device, now, body),
            )
            return int(cur.lastrowid or 0)

        return await self._write("push_to_device", tx)

    async def to_device_pending(self, device_id: str, after: int, limit: int) -> list[ToDeviceItem]:
        def q(c: sqlite3.Connection) -> list[ToDeviceItem]:
            rows = c.execute(
                "SELECT tid, device_id, sender_user, sender_device, ts, body FROM to_device"
                " WHERE device_id=? AND tid>? ORDER BY tid LIMIT ?",
                (device_id, after, limit),
            )
            return [ToDeviceItem(*r) for r in rows]

        return await self._read("to_device_pending", q)

    async def ack_to_device(self, device_id: str, tids: Sequence[int]) -> int:
        def tx(c: sqlite3.Connection) -> int:
            cur = c.executemany(
                "DELETE FROM to_device WHERE device_id=? AND tid=?", [(device_id, t) for t in tids]
            )
            return cur.rowcount

        return await self._write("ack_to_device", tx)

    # -- attachments

    async def create_attachment(self, new: NewAttachment) -> Attachment:
        attachment = Attachment(
            new_id(),
            new.uploader,
            new.room_id,
            new.kind,
            new.content_type,
            new.name,
            0,
            None,
            new.key_id,
            "uploading",
            new.created_at,
            None,
        )
        await self._write(
            "create_attachment",
            lambda c: c.execute(
                f"INSERT INTO attachments ({_ATTACHMENT_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                astuple(attachment),
            ),
        )
        return attachment

    async def complete_attachment(
        self, attachment_id: str, size: int, sha256: str
    ) -> Attachment | None:
        def tx(c: sqlite3.Connection) -> Attachment | None:
            row = c.execute(
                "UPDATE attachments SET state='ready', size=?, sha256=?"
                f" WHERE id=? AND state='uploading' RETURNING {_ATTACHMENT_COLS}",
                (size, sha256, attachment_id),
            ).fetchone()
            return None if row is None else _attachment(row)

        return await self._write("complete_attachment", tx)

    async def attachment(self, attachment_id: str) -> Attachment | None:
        def q(c: sqlite3.Connection) -> Attachment | None:
            row = c.execute(
                f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE id=?", (attachment_id,)
            ).fetchone()
            return None if row is None else _attachment(row)

        return await self._read("attachment", q)

    async def claim_attachment_deletion(
        self,
        attachment_id: str,
        *,
        uploader: str | None = None,
        unreferenced_before: int | None = None,
    ) -> Attachment | None:
        def tx(c: sqlite3.Connection) -> Attachment | None:
            row = c.execute(
                "UPDATE attachments SET state='deleting', referenced_at=NULL WHERE id=?"
                " AND (? IS NULL OR uploader=?)"
                " AND (? IS NULL OR (referenced_at IS NULL AND created_at < ?))"
                f" RETURNING {_ATTACHMENT_COLS}",
                (
                    attachment_id,
                    uploader,
                    uploader,
                    unreferenced_before,
                    unreferenced_before,
                ),
            ).fetchone()
            return None if row is None else _attachment(row)

        return await self._write("claim_attachment_deletion", tx)

    async def delete_attachment(self, attachment_id: str) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM attachments WHERE id=?", (attachment_id,)).rowcount > 0

        return await self._write("delete_attachment", tx)

    async def unreferenced_attachments(self, before: int, limit: int) -> list[Attachment]:
        def q(c: sqlite3.Connection) -> list[Attachment]:
            rows = c.execute(
                f"SELECT {_ATTACHMENT_COLS} FROM attachments"
                " WHERE referenced_at IS NULL AND created_at < ? ORDER BY created_at LIMIT ?",
                (before, limit),
            )
            return [_attachment(r) for r in rows]

        return await self._read("unreferenced_attachments", q)


async def open_sqlite(url_path: str) -> SqliteStore:
    """Open (creating and migrating if needed) the database at ``url_path``."""
    store = SqliteStore(url_path)
    await store.open()
    return store
