"""The store, written once for both databases (see :mod:`storage.sql.engine`).

This module holds accounts, rooms, the timeline, keys and attachments; the other domains
are mixins beside it (``outbox.py``, ``roles.py``...), all running their transactions
through one :class:`~storage.sql.engine.Engine`.

How it keeps the guarantees of :mod:`storage.base` with several writers at once (on
PostgreSQL several nodes; on SQLite the one writer thread makes every write serial):

- Every method runs as one transaction, named after the method (the name is logged
  when the transaction fails or is slow).
- A method that changes a room first locks the room's row (``FOR NO KEY UPDATE``) and
  reads and advances ``rooms.last_seq`` under that lock, held until commit: writers of
  one room are serialised whichever node they run on, seqs have no gap, and they commit
  in seq order (a reader that sees seq ``n`` sees every seq below). ``append_messages``
  locks all its rooms at once, in id order, so concurrent batches cannot deadlock.
- Membership and open status are read after those locks (READ COMMITTED: a statement
  sees everything committed before it started), so they are current for the seq taken.
- ``(device, cid)``: the unique constraint finds retries. Rows go in with ``ON CONFLICT
  DO NOTHING``, under the room locks; if any row was skipped, the rows that went in are
  deleted again (the batch's own) and the batch planned again with the originals,
  looked up then (also before the insert when the plan refused a message: a retry
  whose sender has left the room since gets its original). A batch of new messages,
  nearly every batch, so pays no lookup. This also covers the one remaining race (the
  same cid sent concurrently into another room by another node: the insert waits for
  it). A conflict never aborts the batch.
- Direct rooms: a unique ``direct_key``; the insert is ``ON CONFLICT DO NOTHING`` and
  the loser of a race returns the winner's room.
- Group commit (``append_messages`` of a batch) shares each commit among many messages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import astuple, dataclass

from ..errors import BadValue, NoSuchRoom, NoSuchUser, RoomBeingCreated
from ..ids import new_id
from ..meta import unpack_meta
from ..types import (
    AppendResult,
    Attachment,
    DecryptionHealth,
    DeleteResult,
    Device,
    DeviceKeyBundle,
    Membership,
    NewAttachment,
    NewMessage,
    NewUser,
    ReadMark,
    ReadResult,
    Room,
    RoomMembers,
    Session,
    TimelineItem,
    ToDeviceItem,
    User,
)
from .accounts import SqlAccounts
from .audit import SqlAudit
from .backup import SqlBackup
from .base import SqlBase
from .devices import DEVICE_COLS, SqlDevices
from .directory import SqlDirectory
from .engine import Row, Tx
from .events import event, user_from_row
from .guests import SqlGuests
from .outbox import SqlOutbox
from .push import SqlPush
from .roles import SqlRoles
from .verification import SqlVerification

__all__ = ["SqlStore"]

log = logging.getLogger("confrere.storage")

# -- statements

_USER_COLS = (
    "id, email, password_hash, first_name, last_name, postcode, city, specialty,"
    " practice_mode, rpps, verified, created_at, email_confirmed, profession"
)
_ROOM_COLS = "id, kind, name, status, header, created_by, created_at, last_seq"
_ITEM_COLS = (
    "room_id, seq, kind, ts, sender, device, cid, body, meta, edits, deleted_by, deleted_at"
)
_ATTACHMENT_COLS = (
    "id, uploader, room_id, kind, content_type, name, size, sha256, key_id, state,"
    " created_at, referenced_at"
)

_SQL_INSERT_USER = (
    f"INSERT INTO users ({_USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
    " $13, $14)"
)
_SQL_USER_BY_ID = f"SELECT {_USER_COLS} FROM users WHERE id = $1"
_SQL_USER_BY_EMAIL = f"SELECT {_USER_COLS} FROM users WHERE email = $1"
_SQL_EXISTING_USERS = "SELECT id FROM users WHERE id = ANY($1::text[])"
_SQL_SET_VERIFIED = "UPDATE users SET verified = $2 WHERE id = $1"
_SQL_INSERT_DEVICE = "INSERT INTO devices (id, user_id, name, created_at) VALUES ($1, $2, $3, $4)"
_SQL_DEVICE = f"SELECT {DEVICE_COLS} FROM devices WHERE id = $1 AND revoked_at IS NULL"
_SQL_DEVICES_OF = (
    f"SELECT {DEVICE_COLS} FROM devices WHERE user_id = $1 AND revoked_at IS NULL"
    " ORDER BY created_at, id"
)
_SQL_INSERT_SESSION = (
    "INSERT INTO sessions (token_hash, user_id, device_id, created_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5)"
)
_SQL_SESSION = (
    "SELECT token_hash, user_id, device_id, created_at, expires_at"
    " FROM sessions WHERE token_hash = $1"
)
# A session with its user's row (NULLs if the user is gone) in one statement; the
# hello's form adds one row per room of the user (room_id NULL when there is none).
_SESSION_USER_COLS = (
    "s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at, "
    + ", ".join(f"u.{c.strip()}" for c in _USER_COLS.split(","))
)
# Where a row of those statements splits: the session's columns, the user's, room_id.
_USER_AT = 5
_ROOM_AT = _USER_AT + len(_USER_COLS.split(","))
_SQL_SESSION_USER = (
    f"SELECT {_SESSION_USER_COLS} FROM sessions s LEFT JOIN users u ON u.id = s.user_id"
    " WHERE s.token_hash = $1"
)
_SQL_SESSION_USER_ROOMS = (
    f"SELECT {_SESSION_USER_COLS}, m.room_id FROM sessions s"
    " LEFT JOIN users u ON u.id = s.user_id LEFT JOIN memberships m ON m.user_id = u.id"
    " WHERE s.token_hash = $1 ORDER BY m.room_id"
)
_SQL_DELETE_SESSION = "DELETE FROM sessions WHERE token_hash = $1"
# A signature given replaces the stored one; none keeps it for the same bundle only.
_SQL_PUT_DEVICE_KEYS = (
    "INSERT INTO device_keys (device_id, user_id, bundle, updated_at, signature)"
    " SELECT id, user_id, $3, $4, $5::bytea FROM devices"
    " WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
    " ON CONFLICT (device_id) DO UPDATE"
    " SET bundle = excluded.bundle, updated_at = excluded.updated_at,"
    " signature = COALESCE(excluded.signature,"
    " CASE WHEN device_keys.bundle = excluded.bundle THEN device_keys.signature END)"
)
_SQL_COUNT_FAILURE = (
    "INSERT INTO decryption_failures (room_id, device_id, reason, count, updated_at)"
    " VALUES ($1, $2, $3, 1, $4) ON CONFLICT (room_id, device_id, reason) DO UPDATE"
    " SET count = decryption_failures.count + 1, updated_at = excluded.updated_at"
    " RETURNING count"
)
_SQL_FAILURES = "SELECT device_id, reason, count FROM decryption_failures WHERE room_id = $1"
_SQL_FAILURES_BY_REASON = (
    "SELECT reason, sum(count) FROM decryption_failures WHERE updated_at >= $1 GROUP BY reason"
)
_SQL_FAILURES_WORST = (
    "SELECT room_id, device_id, sum(count) AS n FROM decryption_failures"
    " WHERE updated_at >= $1 GROUP BY room_id, device_id ORDER BY n DESC LIMIT $2"
)
_SQL_MESSAGES_SINCE = "SELECT count(*) FROM timeline WHERE kind = 'msg' AND ts >= $1"
_SQL_DEVICE_KEYS = (
    "SELECT user_id, device_id, bundle, updated_at, signature FROM device_keys"
    " WHERE user_id = ANY($1::text[]) ORDER BY user_id, device_id"
)

_SQL_LOCK_ROOM = "SELECT last_seq FROM rooms WHERE id = $1 FOR NO KEY UPDATE"
_SQL_LOCK_ROOMS = (
    "SELECT id, status, last_seq FROM rooms WHERE id = ANY($1::text[])"
    " ORDER BY id FOR NO KEY UPDATE"
)
_SQL_ROOM = f"SELECT {_ROOM_COLS} FROM rooms WHERE id = $1"
_SQL_ROOM_BY_DIRECT_KEY = f"SELECT {_ROOM_COLS} FROM rooms WHERE direct_key = $1"
_SQL_INSERT_ROOM = (
    "INSERT INTO rooms (id, kind, name, status, header, created_by, created_at, last_seq,"
    " direct_key) VALUES ($1, $2, $3, 'open', $4, $5, $6, 0, $7)"
    " ON CONFLICT (direct_key) DO NOTHING RETURNING id"
)
_SQL_ROLES = "SELECT user_id, role FROM memberships WHERE room_id = $1"
_MEMBERSHIP_COLS = (
    "room_id, user_id, role, joined_seq, read_seq, notify, archived, pinned, marked_unread"
)
_SQL_MEMBERSHIP = f"SELECT {_MEMBERSHIP_COLS} FROM memberships WHERE room_id = $1 AND user_id = $2"
_SQL_ROOMS_OF = (
    "SELECT r.id, r.kind, r.name, r.status, r.header, r.created_by, r.created_at,"
    " r.last_seq, m.role, m.joined_seq, m.read_seq, m.notify, m.archived, m.pinned,"
    " m.marked_unread"
    " FROM memberships m JOIN rooms r ON r.id = m.room_id"
    " WHERE m.user_id = $1 ORDER BY r.created_at, r.id"
)
_SQL_SET_ROOM_SETTINGS = (
    "UPDATE memberships SET notify = coalesce($3, notify),"
    " archived = coalesce($4, archived), pinned = coalesce($5, pinned),"
    " marked_unread = coalesce($6, marked_unread)"
    f" WHERE room_id = $1 AND user_id = $2 RETURNING {_MEMBERSHIP_COLS}"
)
_SQL_QUIET_MEMBERS = (
    "SELECT user_id, notify FROM memberships WHERE room_id = $1 AND notify <> 'all'"
)
_SQL_SHARE_ROOM = (
    "SELECT EXISTS (SELECT 1 FROM memberships a JOIN memberships b ON a.room_id = b.room_id"
    " WHERE a.user_id = $1 AND b.user_id = $2)"
)
_SQL_DELETE_MEMBER = "DELETE FROM memberships WHERE room_id = $1 AND user_id = $2"
_SQL_UPDATE_ROOM = (
    "UPDATE rooms SET name = coalesce($2, name), header = coalesce($3, header),"
    " status = coalesce($4, status) WHERE id = $1"
)
_SQL_DEMOTE_OWNER = "UPDATE memberships SET role = 'admin' WHERE room_id = $1 AND role = 'owner'"
_SQL_SET_ROLE = "UPDATE memberships SET role = $3 WHERE room_id = $1 AND user_id = $2"

_SQL_MEMBER_PAIRS = (
    "SELECT m.room_id, m.user_id FROM memberships m"
    " JOIN unnest($1::text[], $2::text[]) AS p (room_id, user_id)"
    " ON m.room_id = p.room_id AND m.user_id = p.user_id"
)
_SQL_ITEMS_BY_CID = (
    "SELECT t.room_id, t.seq, t.kind, t.ts, t.sender, t.device, t.cid, t.body, t.meta,"
    " t.edits, t.deleted_by, t.deleted_at"
    " FROM timeline t JOIN unnest($1::text[], $2::text[]) AS k (device, cid)"
    " ON t.device = k.device AND t.cid = k.cid"
)
# The messages a batch's edits name (only asked when the batch holds an edit).
_SQL_EDIT_TARGETS = (
    "SELECT t.room_id, t.seq, t.sender, t.ts, t.edits, t.deleted_at"
    " FROM timeline t JOIN unnest($1::text[], $2::bigint[]) AS k (room_id, seq)"
    " ON t.room_id = k.room_id AND t.seq = k.seq WHERE t.kind = 'msg'"
)
_SQL_LOCK_ROOM_STATE = "SELECT kind, status FROM rooms WHERE id = $1 FOR NO KEY UPDATE"
_SQL_MESSAGE_AT = (
    "SELECT kind, sender, ts, edits, deleted_at FROM timeline WHERE room_id = $1 AND seq = $2"
)
# The original and its edits lose their ciphertext; the rows stay as tombstones.
_SQL_TOMBSTONE = (
    "UPDATE timeline SET body = NULL, deleted_by = $3, deleted_at = $4"
    " WHERE room_id = $1 AND (seq = $2 OR edits = $2)"
)
_MESSAGE_COLS = (
    ("room_id", "text"),
    ("seq", "bigint"),
    ("kind", "text"),
    ("ts", "bigint"),
    ("sender", "text"),
    ("device", "text"),
    ("cid", "text"),
    ("body", "bytea"),
    ("edits", "bigint"),
)
_MEMBER_COLS = (
    ("room_id", "text"),
    ("user_id", "text"),
    ("role", "text"),
    ("joined_seq", "bigint"),
)
# The rows a batch inserted, taken back out to plan it again (see append_messages).
_SQL_DELETE_PLANNED = (
    "DELETE FROM timeline WHERE (room_id, seq) IN"
    " (SELECT p.room_id, p.seq FROM unnest($1::text[], $2::bigint[]) AS p (room_id, seq))"
)
_SQL_SET_LAST_SEQS = (
    "UPDATE rooms SET last_seq = v.last_seq FROM unnest($1::text[], $2::bigint[])"
    " AS v (id, last_seq) WHERE rooms.id = v.id"
)
# Attachments named by a batch, locked so that a concurrent deletion claim waits for
# the batch's commit (and then sees referenced_at set), or the batch for the claim's.
_SQL_LOCK_ATTACHMENTS = (
    "SELECT id, uploader, room_id, state FROM attachments WHERE id = ANY($1::text[])"
    " ORDER BY id FOR NO KEY UPDATE"
)
_SQL_REFERENCE_ATTACHMENTS = (
    "UPDATE attachments SET referenced_at = coalesce(attachments.referenced_at, v.ts)"
    " FROM unnest($1::text[], $2::bigint[]) AS v (id, ts) WHERE attachments.id = v.id"
)
_SQL_TIMELINE = (
    f"SELECT {_ITEM_COLS} FROM timeline WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
)
# Read markers: locked in key order (concurrent nodes' batches never deadlock), then
# the batch's new values written at once.
_SQL_LOCK_READ_MARKERS = (
    "SELECT m.room_id, m.user_id, m.read_seq, r.last_seq FROM memberships m"
    " JOIN unnest($1::text[], $2::text[]) AS k (room_id, user_id)"
    " ON m.room_id = k.room_id AND m.user_id = k.user_id"
    " JOIN rooms r ON r.id = m.room_id"
    " ORDER BY m.room_id, m.user_id FOR NO KEY UPDATE OF m"
)
_SQL_RAISE_READ_MARKERS = (
    "UPDATE memberships SET read_seq = k.seq"
    " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k (room_id, user_id, seq)"
    " WHERE memberships.room_id = k.room_id AND memberships.user_id = k.user_id"
    " AND memberships.read_seq < k.seq"
)
_BIGINT = range(-(2**63), 2**63)

_SQL_PUSH_TO_DEVICE = (
    "INSERT INTO to_device (device_id, sender_user, sender_device, ts, body)"
    " VALUES ($1, $2, $3, $4, $5) RETURNING tid"
)
_SQL_TO_DEVICE_PENDING = (
    "SELECT tid, device_id, sender_user, sender_device, ts, body FROM to_device"
    " WHERE device_id = $1 AND tid > $2 ORDER BY tid LIMIT $3"
)
_SQL_ACK_TO_DEVICE = "DELETE FROM to_device WHERE device_id = $1 AND tid = ANY($2::bigint[])"

_SQL_INSERT_ATTACHMENT = (
    f"INSERT INTO attachments ({_ATTACHMENT_COLS})"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)
_SQL_COMPLETE_ATTACHMENT = (
    "UPDATE attachments SET state = 'ready', size = $2, sha256 = $3"
    f" WHERE id = $1 AND state = 'uploading' RETURNING {_ATTACHMENT_COLS}"
)
_SQL_ATTACHMENT = f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE id = $1"
_SQL_CLAIM_ATTACHMENT = (
    "UPDATE attachments SET state = 'deleting', referenced_at = NULL WHERE id = $1"
    " AND ($2::text IS NULL OR uploader = $2)"
    " AND ($3::bigint IS NULL OR (referenced_at IS NULL AND created_at < $3))"
    f" RETURNING {_ATTACHMENT_COLS}"
)
_SQL_DELETE_ATTACHMENT = "DELETE FROM attachments WHERE id = $1"
_SQL_UNREFERENCED_ATTACHMENTS = (
    f"SELECT {_ATTACHMENT_COLS} FROM attachments"
    " WHERE referenced_at IS NULL AND created_at < $1 ORDER BY created_at, id LIMIT $2"
)


# -- rows


_user = user_from_row


def _room(row: Row) -> Room:
    return Room(*row)


def _item(row: Row) -> TimelineItem:
    room_id, seq, kind, ts, sender, device, cid, body, meta, edits, deleted_by, deleted_at = row
    return TimelineItem(
        room_id,
        seq,
        kind,
        ts,
        sender,
        device,
        cid,
        body,
        unpack_meta(meta),
        edits,
        deleted_by,
        deleted_at,
    )


def _membership(row: Row) -> Membership:
    room_id, user_id, role, joined, read, notify, archived, pinned, unread = row
    return Membership(
        room_id, user_id, role, joined, read, notify, bool(archived), bool(pinned), bool(unread)
    )


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _attachment(row: Row) -> Attachment:
    return Attachment(*row)


@dataclass(frozen=True, slots=True)
class _Target:
    """A message an edit names: who sent it, when, and whether it may be edited."""

    sender: str
    ts: int
    editable: bool  # an original (not an edit), not deleted


def _edit_refusal(m: NewMessage, targets: dict[tuple[str, int], _Target]) -> str | None:
    """Why ``m`` may not edit the message it names."""
    assert m.edits is not None
    target = targets.get((m.room_id, m.edits))
    if target is None or not target.editable:
        return "edit_missing"
    if target.sender != m.sender or target.ts < m.edits_since:
        return "edit_forbidden"
    return None


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one pass of ``append_messages`` decided, in batch order."""

    results: list[AppendResult]
    rows: list[TimelineItem]  # to insert
    last_seqs: dict[str, int]  # room -> new last_seq, for rooms that got messages
    referenced: dict[str, int]  # attachment id -> ts of the first message naming it


def _attachment_refusal(
    m: NewMessage, attachments: dict[str, tuple[str, str | None, str]]
) -> str | None:
    """Why ``m`` may not reference its attachments (id -> uploader, room, state)."""
    for attachment_id in m.attachments:
        found = attachments.get(attachment_id)
        if found is None or found[2] != "ready":
            return "attachment_missing"
        if found[0] != m.sender or found[1] != m.room_id:
            return "attachment_forbidden"
    return None


def _plan_batch(
    batch: Sequence[NewMessage],
    rooms: dict[str, tuple[str, int]],
    members: set[tuple[str, str]],
    originals: dict[tuple[str, str], TimelineItem],
    attachments: dict[str, tuple[str, str | None, str]],
    targets: dict[tuple[str, int], _Target],
) -> _Plan:
    """Decide each message's fate in batch order (the checks of ``append_messages``,
    as :mod:`storage.base` states them), given the locked ``rooms`` (id -> status,
    last_seq), the (room, user) ``members`` among the senders, the already stored
    ``originals`` by (device, cid), the locked ``attachments`` the batch names
    (id -> uploader, room, state) and the messages its edits name, by (room, seq)."""
    next_seq = {room_id: last for room_id, (_, last) in rooms.items()}
    stored = dict(originals)
    # Plus this batch's messages, which a later edit of the batch may name: tracked only
    # when the batch holds an edit, so a batch of plain sends does no more than before.
    track = any(m.edits is not None for m in batch)
    targets = dict(targets)
    results: list[AppendResult] = []
    rows: list[TimelineItem] = []
    referenced: dict[str, int] = {}
    for m in batch:
        prior = stored.get((m.device, m.cid))
        if prior is not None:
            if prior.room_id != m.room_id:
                results.append(AppendResult(None, refused="cid_reused"))
            else:
                results.append(AppendResult(prior, duplicate=True))
            continue
        if m.room_id not in rooms or (m.room_id, m.sender) not in members:
            results.append(AppendResult(None, refused="not_member"))
            continue
        if rooms[m.room_id][0] != "open":
            results.append(AppendResult(None, refused="closed"))
            continue
        refusal = _attachment_refusal(m, attachments) if m.attachments else None
        if refusal is None and m.edits is not None:
            refusal = _edit_refusal(m, targets)
        if refusal is not None:
            results.append(AppendResult(None, refused=refusal))
            continue
        for attachment_id in m.attachments:
            referenced.setdefault(attachment_id, m.ts)
        seq = next_seq[m.room_id] + 1
        next_seq[m.room_id] = seq
        item = TimelineItem(
            m.room_id, seq, "msg", m.ts, m.sender, m.device, m.cid, m.body, edits=m.edits
        )
        stored[(m.device, m.cid)] = item
        if track:
            targets[(m.room_id, seq)] = _Target(m.sender, m.ts, m.edits is None)
        rows.append(item)
        results.append(AppendResult(item))
    last_seqs = {r: seq for r, seq in next_seq.items() if seq != rooms[r][1]}
    return _Plan(results, rows, last_seqs, referenced)


async def _originals(c: Tx, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], TimelineItem]:
    """The stored messages among ``keys`` (device, cid), by key."""
    rows = await c.fetch(_SQL_ITEMS_BY_CID, [k[0] for k in keys], [k[1] for k in keys])
    return {(r[5], r[6]): _item(r) for r in rows}


# -- the store


def _session_user(row: Row) -> tuple[Session, User | None]:
    """A row of :data:`_SQL_SESSION_USER` (or the rooms' form): the session, its user."""
    return Session(*row[:_USER_AT]), None if row[_USER_AT] is None else _user(
        row[_USER_AT:_ROOM_AT]
    )


def _rooms_of(rows: Sequence[Row], user_id: str) -> list[tuple[Room, Membership]]:
    return [(Room(*r[:8]), _membership((r[0], user_id, *r[8:]))) for r in rows]


class SqlStore(
    SqlAccounts,
    SqlDevices,
    SqlAudit,
    SqlBackup,
    SqlDirectory,
    SqlGuests,
    SqlOutbox,
    SqlPush,
    SqlRoles,
    SqlVerification,
    SqlBase,
):
    """The store on either engine; use :func:`storage.open_store` to construct."""

    # -- accounts

    async def create_user(self, new: NewUser, now: int) -> User:
        user = new.to_user(new_id(), now)
        await self.db.run(
            "create_user", lambda c: c.execute(_SQL_INSERT_USER, *astuple(user)), "write"
        )
        return user

    async def user_by_id(self, user_id: str) -> User | None:
        row = await self.db.run(
            "user_by_id", lambda c: c.fetchrow(_SQL_USER_BY_ID, user_id), "read"
        )
        return None if row is None else _user(row)

    async def user_by_email(self, email: str) -> User | None:
        row = await self.db.run(
            "user_by_email", lambda c: c.fetchrow(_SQL_USER_BY_EMAIL, email), "read"
        )
        return None if row is None else _user(row)

    async def existing_user_ids(self, user_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(user_ids))
        rows = await self.db.run(
            "existing_user_ids", lambda c: c.fetch(_SQL_EXISTING_USERS, ids), "read"
        )
        return {r[0] for r in rows}

    async def set_verified(self, user_id: str, verified: bool) -> None:
        await self.db.run(
            "set_verified", lambda c: c.execute(_SQL_SET_VERIFIED, user_id, verified), "write"
        )

    async def create_device(self, user_id: str, name: str, now: int) -> Device:
        device = Device(new_id(), user_id, name, now)
        await self.db.run(
            "create_device",
            lambda c: c.execute(_SQL_INSERT_DEVICE, device.id, user_id, name, now),
            "write",
        )
        return device

    async def device(self, device_id: str) -> Device | None:
        row = await self.db.run("device", lambda c: c.fetchrow(_SQL_DEVICE, device_id), "read")
        return None if row is None else Device(*row)

    async def devices_of(self, user_id: str) -> list[Device]:
        rows = await self.db.run("devices_of", lambda c: c.fetch(_SQL_DEVICES_OF, user_id), "read")
        return [Device(*r) for r in rows]

    async def create_session(self, session: Session) -> None:
        await self.db.run(
            "create_session",
            lambda c: c.execute(
                _SQL_INSERT_SESSION,
                session.token_hash,
                session.user_id,
                session.device_id,
                session.created_at,
                session.expires_at,
            ),
            "write",
        )

    async def session(self, token_hash: bytes) -> Session | None:
        row = await self.db.run("session", lambda c: c.fetchrow(_SQL_SESSION, token_hash), "read")
        return None if row is None else Session(*row)

    async def session_user(self, token_hash: bytes) -> tuple[Session, User | None] | None:
        row = await self.db.run(
            "session_user", lambda c: c.fetchrow(_SQL_SESSION_USER, token_hash), "read"
        )
        return None if row is None else _session_user(row)

    async def session_user_rooms(
        self, token_hash: bytes
    ) -> tuple[Session, User | None, list[str]] | None:
        # One statement (a hello's first read): each one cost as much as its result.
        rows = await self.db.run(
            "session_user_rooms", lambda c: c.fetch(_SQL_SESSION_USER_ROOMS, token_hash), "read"
        )
        if not rows:
            return None
        session, user = _session_user(rows[0])
        room_ids = [] if user is None else [r[_ROOM_AT] for r in rows if r[_ROOM_AT] is not None]
        return session, user, room_ids

    async def delete_session(self, token_hash: bytes) -> None:
        await self.db.run(
            "delete_session", lambda c: c.execute(_SQL_DELETE_SESSION, token_hash), "write"
        )

    # -- key directory

    async def put_device_keys(
        self, user_id: str, device_id: str, bundle: bytes, now: int, signature: bytes | None = None
    ) -> None:
        status = await self.db.run(
            "put_device_keys",
            lambda c: c.execute(_SQL_PUT_DEVICE_KEYS, device_id, user_id, bundle, now, signature),
            "write",
        )
        if status == 0:
            raise NoSuchUser(f"no device {device_id} of user {user_id}")

    async def device_keys(self, user_ids: Sequence[str]) -> list[DeviceKeyBundle]:
        ids = list(dict.fromkeys(user_ids))
        rows = await self.db.run("device_keys", lambda c: c.fetch(_SQL_DEVICE_KEYS, ids), "read")
        # Sorted here: the database's collation need not order ids as bytes do.
        found = (
            DeviceKeyBundle(r[0], r[1], bytes(r[2]), r[3], None if r[4] is None else bytes(r[4]))
            for r in rows
        )
        return sorted(found, key=lambda k: (k.user_id, k.device_id))

    async def count_decryption_failure(
        self, room_id: str, device_id: str, reason: str, now: int
    ) -> int:
        count = await self.db.run(
            "count_decryption_failure",
            lambda c: c.fetchval(_SQL_COUNT_FAILURE, room_id, device_id, reason, now),
            "write",
        )
        return int(count)

    async def decryption_failures(self, room_id: str) -> dict[tuple[str, str], int]:
        rows = await self.db.run(
            "decryption_failures", lambda c: c.fetch(_SQL_FAILURES, room_id), "read"
        )
        return {(r[0], r[1]): int(r[2]) for r in rows}

    async def decryption_health(self, since: int, worst: int = 10) -> DecryptionHealth:
        async def q(c: Tx) -> DecryptionHealth:
            by_reason = {r[0]: int(r[1]) for r in await c.fetch(_SQL_FAILURES_BY_REASON, since)}
            top = [
                (r[0], r[1], int(r[2])) for r in await c.fetch(_SQL_FAILURES_WORST, since, worst)
            ]
            messages = int(await c.fetchval(_SQL_MESSAGES_SINCE, since))
            return DecryptionHealth(since, sum(by_reason.values()), messages, by_reason, top)

        return await self.db.run("decryption_health", q, "snapshot")

    # -- rooms

    @staticmethod
    async def _lock_room(c: Tx, room_id: str) -> bool:
        """Lock the room's row until commit; whether the room exists."""
        return await c.fetchrow(_SQL_LOCK_ROOM, room_id) is not None

    async def create_room(
        self,
        kind: str,
        creator: str,
        members: Sequence[str],
        name: bytes | None,
        header: bytes | None,
        now: int,
    ) -> tuple[Room, TimelineItem | None]:
        others = [m for m in dict.fromkeys(members) if m != creator]
        direct_key = "|".join(sorted((creator, *others))) if kind == "direct" else None
        owner_role = "member" if kind == "direct" else "owner"

        async def tx(c: Tx) -> tuple[Room, TimelineItem | None]:
            if direct_key is not None:
                row = await c.fetchrow(_SQL_ROOM_BY_DIRECT_KEY, direct_key)
                if row is not None:
                    return _room(row), None
            room_id = new_id()
            created = await c.fetchval(
                _SQL_INSERT_ROOM, room_id, kind, name, header, creator, now, direct_key
            )
            if created is None:
                # Another node created the pair's room since our read; the insert waited
                # for its commit, so this statement sees it.
                row = await c.fetchrow(_SQL_ROOM_BY_DIRECT_KEY, direct_key)
                if row is None:
                    raise RoomBeingCreated(f"direct room {direct_key!r} is being created")
                return _room(row), None
            item = await event(c, room_id, "member.joined", creator, now, users=[creator, *others])
            roles = [(creator, owner_role)] + [(u, "member") for u in others]
            await c.insert_rows(
                "memberships", _MEMBER_COLS, [(room_id, u, r, item.seq) for u, r in roles]
            )
            return Room(room_id, kind, name, "open", header, creator, now, item.seq), item

        return await self.db.run("create_room", tx, "transaction")

    async def room(self, room_id: str) -> Room | None:
        row = await self.db.run("room", lambda c: c.fetchrow(_SQL_ROOM, room_id), "read")
        return None if row is None else _room(row)

    async def room_members(self, room_id: str) -> RoomMembers | None:
        async def q(c: Tx) -> RoomMembers | None:
            row = await c.fetchrow(_SQL_ROOM, room_id)
            if row is None:
                return None
            room = _room(row)
            roles = {r[0]: r[1] for r in await c.fetch(_SQL_ROLES, room_id)}
            return RoomMembers(room, roles, room.last_seq)

        return await self.db.run("room_members", q, "snapshot")

    async def membership(self, room_id: str, user_id: str) -> Membership | None:
        row = await self.db.run(
            "membership", lambda c: c.fetchrow(_SQL_MEMBERSHIP, room_id, user_id), "read"
        )
        return None if row is None else _membership(row)

    async def rooms_of(self, user_id: str) -> list[tuple[Room, Membership]]:
        rows = await self.db.run("rooms_of", lambda c: c.fetch(_SQL_ROOMS_OF, user_id), "read")
        return _rooms_of(rows, user_id)

    async def set_room_settings(
        self,
        room_id: str,
        user_id: str,
        *,
        notify: str | None = None,
        archived: bool | None = None,
        pinned: bool | None = None,
        unread: bool | None = None,
    ) -> Membership | None:
        row = await self.db.run(
            "set_room_settings",
            lambda c: c.fetchrow(
                _SQL_SET_ROOM_SETTINGS,
                room_id,
                user_id,
                notify,
                _flag(archived),
                _flag(pinned),
                _flag(unread),
            ),
            "write",
        )
        return None if row is None else _membership(row)

    async def quiet_members(self, room_id: str) -> dict[str, str]:
        rows = await self.db.run(
            "quiet_members", lambda c: c.fetch(_SQL_QUIET_MEMBERS, room_id), "read"
        )
        return {r[0]: r[1] for r in rows}

    async def share_room(self, user_a: str, user_b: str) -> bool:
        found = await self.db.run(
            "share_room", lambda c: c.fetchval(_SQL_SHARE_ROOM, user_a, user_b), "read"
        )
        return bool(found)

    async def add_members(
        self, room_id: str, users: Sequence[str], by: str, now: int
    ) -> TimelineItem | None:
        """As :meth:`Store.add_members`; raise :class:`NotFound` if there is no such room."""

        async def tx(c: Tx) -> TimelineItem | None:
            if not await self._lock_room(c, room_id):
                raise NoSuchRoom(f"no room {room_id!r}")
            present = {r[0] for r in await c.fetch(_SQL_ROLES, room_id)}
            new = [u for u in dict.fromkeys(users) if u not in present]
            if not new:
                return None
            item = await event(c, room_id, "member.joined", by, now, users=new)
            await c.insert_rows(
                "memberships", _MEMBER_COLS, [(room_id, u, "member", item.seq) for u in new]
            )
            return item

        return await self.db.run("add_members", tx, "transaction")

    async def remove_member(
        self, room_id: str, user_id: str, by: str, reason: str, now: int
    ) -> TimelineItem | None:
        async def tx(c: Tx) -> TimelineItem | None:
            if not await self._lock_room(c, room_id):
                return None
            if await c.execute(_SQL_DELETE_MEMBER, room_id, user_id) == 0:
                return None
            return await event(c, room_id, "member.left", by, now, user=user_id, reason=reason)

        return await self.db.run("remove_member", tx, "transaction")

    async def update_room(
        self,
        room_id: str,
        by: str,
        now: int,
        name: bytes | None = None,
        header: bytes | None = None,
        status: str | None = None,
    ) -> TimelineItem:
        """As :meth:`Store.update_room`; raise :class:`NotFound` if there is no such room."""

        async def tx(c: Tx) -> TimelineItem:
            if await c.execute(_SQL_UPDATE_ROOM, room_id, name, header, status) == 0:
                raise NoSuchRoom(f"no room {room_id!r}")
            return await event(
                c, room_id, "room.updated", by, now, name=name, header=header, status=status
            )

        return await self.db.run("update_room", tx, "transaction")

    async def set_role(
        self, room_id: str, user_id: str, role: str, by: str, now: int
    ) -> TimelineItem | None:
        async def tx(c: Tx) -> TimelineItem | None:
            if not await self._lock_room(c, room_id):
                return None
            if await c.fetchrow(_SQL_MEMBERSHIP, room_id, user_id) is None:
                return None
            if role == "owner":
                await c.execute(_SQL_DEMOTE_OWNER, room_id)
            await c.execute(_SQL_SET_ROLE, room_id, user_id, role)
            return await event(c, room_id, "room.updated", by, now, user=user_id, role=role)

        return await self.db.run("set_role", tx, "transaction")

    # -- timeline

    async def append_messages(self, batch: Sequence[NewMessage]) -> list[AppendResult]:
        if not batch:
            return []
        room_ids = sorted({m.room_id for m in batch})
        pairs = list(dict.fromkeys((m.room_id, m.sender) for m in batch))
        keys = list(dict.fromkeys((m.device, m.cid) for m in batch))
        attachment_ids = sorted({a for m in batch for a in m.attachments})
        edited = list(dict.fromkeys((m.room_id, m.edits) for m in batch if m.edits is not None))

        async def tx(c: Tx) -> list[AppendResult]:
            rooms = {r[0]: (r[1], r[2]) for r in await c.fetch(_SQL_LOCK_ROOMS, room_ids)}
            members = {
                (r[0], r[1])
                for r in await c.fetch(
                    _SQL_MEMBER_PAIRS, [p[0] for p in pairs], [p[1] for p in pairs]
                )
            }
            attachments = (
                {
                    r[0]: (r[1], r[2], r[3])
                    for r in await c.fetch(_SQL_LOCK_ATTACHMENTS, attachment_ids)
                }
                if attachment_ids
                else {}
            )
            # Read under the room locks: a deletion of a target waits for this commit,
            # or this batch sees the tombstone.
            targets = (
                {
                    (r[0], r[1]): _Target(r[2], r[3], r[4] is None and r[5] is None)
                    for r in await c.fetch(
                        _SQL_EDIT_TARGETS, [e[0] for e in edited], [e[1] for e in edited]
                    )
                }
                if edited
                else {}
            )
            # Originals of (device, cid) are looked up only when needed: a batch of new
            # messages (nearly every batch) inserts at once, and the unique index says
            # whether any was a retry. The lookup comes first when the plan refused a
            # message: a retry whose sender has left the room since (or whose room
            # closed) still gets its original back.
            originals: dict[tuple[str, str], TimelineItem] | None = None
            while True:
                plan = _plan_batch(batch, rooms, members, originals or {}, attachments, targets)
                if originals is None and any(r.refused for r in plan.results):
                    originals = await _originals(c, keys)
                    continue
                if not plan.rows:
                    return plan.results
                rows = [
                    (i.room_id, i.seq, "msg", i.ts, i.sender, i.device, i.cid, i.body, i.edits)
                    for i in plan.rows
                ]
                inserted = await c.insert_rows(
                    "timeline",
                    _MESSAGE_COLS,
                    rows,
                    "ON CONFLICT (device, cid) WHERE cid IS NOT NULL DO NOTHING",
                )
                if inserted == len(rows):
                    break
                # A (device, cid) of the batch is stored already: a retry, or (after the
                # lookup) the same cid committed meanwhile in another room by another
                # node (the insert waited for it). Take this plan's rows back out and
                # plan again with the originals. The rows are this transaction's own, at
                # seqs above the locked rooms' last_seq, so nothing else is touched.
                # (Rather than a savepoint around every insert: two more round trips
                # per batch, for what only a retry needs.)
                await c.execute(
                    _SQL_DELETE_PLANNED,
                    [i.room_id for i in plan.rows],
                    [i.seq for i in plan.rows],
                )
                if originals is not None:
                    log.info("append_messages: concurrent cid reuse, planning the batch again")
                originals = await _originals(c, keys)
            await c.execute(_SQL_SET_LAST_SEQS, list(plan.last_seqs), list(plan.last_seqs.values()))
            if plan.referenced:
                await c.execute(
                    _SQL_REFERENCE_ATTACHMENTS,
                    list(plan.referenced),
                    list(plan.referenced.values()),
                )
            return plan.results

        return await self.db.run("append_messages", tx, "transaction")

    async def timeline(self, room_id: str, after: int, limit: int) -> list[TimelineItem]:
        rows = await self.db.run(
            "timeline", lambda c: c.fetch(_SQL_TIMELINE, room_id, after, limit), "read"
        )
        return [_item(r) for r in rows]

    async def delete_message(
        self, room_id: str, seq: int, by: str, now: int, author_since: int
    ) -> DeleteResult:
        """As :meth:`TimelineStore.delete_message`: everything decided under the room's
        lock, so a concurrent edit or role change is either before or after it."""

        async def tx(c: Tx) -> DeleteResult:
            room = await c.fetchrow(_SQL_LOCK_ROOM_STATE, room_id)
            me = None if room is None else await c.fetchrow(_SQL_MEMBERSHIP, room_id, by)
            if room is None or me is None:
                return DeleteResult(None, "not_member")
            if room[1] != "open":
                return DeleteResult(None, "closed")
            target = await c.fetchrow(_SQL_MESSAGE_AT, room_id, seq)
            if (
                target is None
                or target[0] != "msg"
                or target[3] is not None
                or target[4] is not None
            ):
                return DeleteResult(None, "missing")
            author = target[1] == by and target[2] >= author_since
            moderator = room[0] != "direct" and me[2] in ("owner", "admin")
            if not (author or moderator):
                return DeleteResult(None, "forbidden")
            await c.execute(_SQL_TOMBSTONE, room_id, seq, by, now)
            return DeleteResult(await event(c, room_id, "msg.deleted", by, now, target=seq))

        result = await self.db.run("delete_message", tx, "transaction")
        if result.item is not None:
            await self.db.scrub()
        return result

    async def set_reads(self, marks: Sequence[ReadMark]) -> list[ReadResult]:
        if not marks:
            return []
        if any(m.seq not in _BIGINT for m in marks):
            raise BadValue("a read marker beyond 64 bits")
        keys = sorted({(m.room_id, m.user_id) for m in marks})

        async def tx(c: Tx) -> list[ReadResult]:
            rows = await c.fetch(_SQL_LOCK_READ_MARKERS, [k[0] for k in keys], [k[1] for k in keys])
            stored = {(r[0], r[1]): int(r[2]) for r in rows}
            last_seq = {r[0]: int(r[3]) for r in rows}
            markers = dict(stored)
            results = []
            for m in marks:  # in batch order, as if one by one
                key = (m.room_id, m.user_id)
                before = markers.get(key)
                if before is None:  # not a member
                    results.append(ReadResult(0, False))
                    continue
                marker = markers[key] = max(before, min(m.seq, last_seq[m.room_id]))
                results.append(ReadResult(marker, marker > before))
            raised = [(k, v) for k, v in markers.items() if v > stored[k]]
            if raised:
                await c.execute(
                    _SQL_RAISE_READ_MARKERS,
                    [k[0] for k, _ in raised],
                    [k[1] for k, _ in raised],
                    [v for _, v in raised],
                )
            return results

        return await self.db.run("set_reads", tx, "transaction")

    # -- to-device queue

    async def push_to_device(
        self, device_id: str, sender_user: str, sender_device: str, body: bytes, now: int
    ) -> int:
        tid = await self.db.run(
            "push_to_device",
            lambda c: c.fetchval(
                _SQL_PUSH_TO_DEVICE, device_id, sender_user, sender_device, now, body
            ),
            "write",
        )
        return int(tid)

    async def rooms_and_to_device(
        self, user_id: str, device_id: str, limit: int
    ) -> tuple[list[tuple[Room, Membership]], list[ToDeviceItem]]:
        async def q(c: Tx) -> tuple[list[tuple[Room, Membership]], list[ToDeviceItem]]:
            rooms = await c.fetch(_SQL_ROOMS_OF, user_id)
            queued = await c.fetch(_SQL_TO_DEVICE_PENDING, device_id, 0, limit)
            return _rooms_of(rooms, user_id), [ToDeviceItem(*r) for r in queued]

        return await self.db.run("rooms_and_to_device", q, "read")

    async def to_device_pending(self, device_id: str, after: int, limit: int) -> list[ToDeviceItem]:
        rows = await self.db.run(
            "to_device_pending",
            lambda c: c.fetch(_SQL_TO_DEVICE_PENDING, device_id, after, limit),
            "read",
        )
        return [ToDeviceItem(*r) for r in rows]

    async def ack_to_device(self, device_id: str, tids: Sequence[int]) -> int:
        status = await self.db.run(
            "ack_to_device",
            lambda c: c.execute(_SQL_ACK_TO_DEVICE, device_id, list(tids)),
            "write",
        )
        return status

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
        await self.db.run(
            "create_attachment",
            lambda c: c.execute(_SQL_INSERT_ATTACHMENT, *astuple(attachment)),
            "write",
        )
        return attachment

    async def complete_attachment(
        self, attachment_id: str, size: int, sha256: str
    ) -> Attachment | None:
        row = await self.db.run(
            "complete_attachment",
            lambda c: c.fetchrow(_SQL_COMPLETE_ATTACHMENT, attachment_id, size, sha256),
            "write",
        )
        return None if row is None else _attachment(row)

    async def attachment(self, attachment_id: str) -> Attachment | None:
        row = await self.db.run(
            "attachment", lambda c: c.fetchrow(_SQL_ATTACHMENT, attachment_id), "read"
        )
        return None if row is None else _attachment(row)

    async def claim_attachment_deletion(
        self,
        attachment_id: str,
        *,
        uploader: str | None = None,
        unreferenced_before: int | None = None,
    ) -> Attachment | None:
        row = await self.db.run(
            "claim_attachment_deletion",
            lambda c: c.fetchrow(
                _SQL_CLAIM_ATTACHMENT, attachment_id, uploader, unreferenced_before
            ),
            "write",
        )
        return None if row is None else _attachment(row)

    async def delete_attachment(self, attachment_id: str) -> bool:
        status = await self.db.run(
            "delete_attachment",
            lambda c: c.execute(_SQL_DELETE_ATTACHMENT, attachment_id),
            "write",
        )
        return status > 0

    async def unreferenced_attachments(self, before: int, limit: int) -> list[Attachment]:
        rows = await self.db.run(
            "unreferenced_attachments",
            lambda c: c.fetch(_SQL_UNREFERENCED_ATTACHMENTS, before, limit),
            "read",
        )
        return [_attachment(r) for r in rows]
