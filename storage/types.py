"""Records the store reads and writes. Plain frozen dataclasses; no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AppendResult",
    "DecryptionHealth",
    "DeleteResult",
    "Attachment",
    "Device",
    "DeviceKeyBundle",
    "Membership",
    "NewAttachment",
    "NewMessage",
    "NewUser",
    "ReadMark",
    "ReadResult",
    "Room",
    "RoomMembers",
    "Session",
    "TimelineItem",
    "ToDeviceItem",
    "User",
]


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str  # normalised (trimmed, lower-case) by the caller
    password_hash: str
    first_name: str
    last_name: str
    postcode: str
    city: str
    specialty: str
    practice_mode: str  # "liberal" | "salarie"
    rpps: str | None = None
    email_confirmed: bool = False  # a regulator link proves the address (issue 7)
    verified: bool = False
    profession: str = "practitioner"  # | "regulator"

    def to_user(self, user_id: str, now: int) -> User:
        """The account as stored on creation (verified only when ``verified`` says so)."""
        return User(
            user_id,
            self.email,
            self.password_hash,
            self.first_name,
            self.last_name,
            self.postcode,
            self.city,
            self.specialty,
            self.practice_mode,
            self.rpps,
            self.verified,
            now,
            self.email_confirmed,
            self.profession,
        )


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    password_hash: str
    first_name: str
    last_name: str
    postcode: str
    city: str
    specialty: str
    practice_mode: str
    rpps: str | None
    verified: bool
    created_at: int
    email_confirmed: bool = False
    profession: str = "practitioner"  # | "regulator" (SAS)


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    user_id: str
    name: str
    created_at: int
    last_seen_at: int | None = None  # the last hello of one of its sessions (ms)


@dataclass(frozen=True, slots=True)
class DecryptionHealth:
    """What operators watch: decryption failures reported by clients, against the
    messages stored since ``since`` (the failure rate is their ratio). Failures are
    kept as counters per (room, sender device, reason): a counter reported again
    since ``since`` counts whole, so the rate errs on the side of alarm."""

    since: int
    failures: int
    messages: int
    by_reason: dict[str, int]
    worst: list[tuple[str, str, int]]  # (room, sender device, failures), most first

    @property
    def rate(self) -> float:
        return self.failures / self.messages if self.messages else 0.0


@dataclass(frozen=True, slots=True)
class DeviceKeyBundle:
    """A device's published key bundle: signed bytes the server verified on upload but
    that clients verify again (protocol/crypto/keys.py)."""

    user_id: str
    device_id: str
    bundle: bytes
    updated_at: int
    signature: bytes | None = None  # its user's identity signature (cross-signing), verified


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: bytes
    user_id: str
    device_id: str
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    kind: str  # "direct" | "group" | "patient_case"
    name: bytes | None  # encrypted by clients (SPEC.md §11.4)
    status: str  # "open" | "closed"
    header: bytes | None
    created_by: str
    created_at: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class Membership:
    room_id: str
    user_id: str
    role: str  # "owner" | "admin" | "member"
    joined_seq: int
    read_seq: int
    # The member's own settings of the room (room.settings), synced to its devices.
    notify: str = "all"  # "all" | "mentions" | "none"
    archived: bool = False
    pinned: bool = False
    unread: bool = False  # marked unread by the member


@dataclass(frozen=True, slots=True)
class RoomMembers:
    """A room's members with their roles, as of timeline position ``seq``."""

    room: Room
    roles: dict[str, str]
    seq: int


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One entry of a room's timeline: a message (kind "msg") or a room event.

    Messages carry ``sender``/``device``/``cid``/``body``; events carry ``meta``
    (users, by, role, name, status, header, reason: whatever the kind needs). An edit
    carries ``edits`` (the seq of the message it replaces); a deleted message (or an
    edit of one) is a tombstone: ``body`` None, ``deleted_by``/``deleted_at`` set.
    """

    room_id: str
    seq: int
    kind: str
    ts: int
    sender: str | None = None
    device: str | None = None
    cid: str | None = None
    body: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    edits: int | None = None
    deleted_by: str | None = None
    deleted_at: int | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """``attachments``: ids the message refers to; it is stored only if each one is
    ready, was uploaded by ``sender`` to ``room_id``, and they are then marked
    referenced in the same transaction.

    ``edits``: the seq of a message of ``sender`` in the room that this one edits; it
    is stored only if that message is an original (not an edit), not deleted, and
    was sent at ``edits_since`` or later (the edit window)."""

    room_id: str
    sender: str
    device: str
    cid: str
    body: bytes
    ts: int
    attachments: tuple[str, ...] = ()
    edits: int | None = None
    edits_since: int = 0


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Outcome of one append: the stored item, or why nothing was stored.

    ``duplicate`` is true when ``(device, cid)`` was already stored: ``item`` is then the
    original. ``refused`` is "not_member", "closed", "cid_reused" (same cid, another
    room), "attachment_missing" (an attachment that does not exist or is not ready) or
    "attachment_forbidden" (one uploaded by someone else or to another room),
    "edit_missing" (the edited message does not exist, is an event or an edit, or was
    deleted) or "edit_forbidden" (it is someone else's, or older than the edit window)
    when nothing was stored.
    """

    item: TimelineItem | None
    duplicate: bool = False
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class ReadMark:
    """A read receipt: ``user_id`` has read ``room_id`` up to ``seq``."""

    room_id: str
    user_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What one :class:`ReadMark` did: the marker after it (0 for a non-member), and
    whether it raised the marker (only a raised one is announced to the room)."""

    upto: int
    raised: bool


@dataclass(frozen=True, slots=True)
class ToDeviceItem:
    tid: int
    device_id: str
    sender_user: str
    sender_device: str
    ts: int
    body: bytes


@dataclass(frozen=True, slots=True)
class NewAttachment:
    """An upload about to start. ``kind``: "chat" (end-to-end encrypted by the client)
    or "document" (read by the server, encrypted at rest under ``key_id``)."""

    uploader: str
    kind: str
    content_type: str
    created_at: int
    room_id: str | None = None
    name: str | None = None
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """An attachment's metadata; its bytes are the blob whose key is ``id``.

    ``state``: "uploading", "ready" or "deleting". ``size`` and ``sha256`` (hex) are
    those of the bytes clients upload and download: the ciphertext of a chat file, the
    plaintext of a document. ``referenced_at``: when a message first named it.
    """

    id: str
    uploader: str
    room_id: str | None
    kind: str
    content_type: str
    name: str | None
    size: int
    sha256: str | None
    key_id: str | None
    state: str
    created_at: int
    referenced_at: int | None


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """Outcome of :meth:`TimelineStore.delete_message`: the ``msg.deleted`` event
    appended, or why nothing changed: "not_member", "closed", "missing" (no such
    message, an event, an edit, or already deleted) or "forbidden" (neither its author
    within the window nor a moderator)."""

    item: TimelineItem | None
    refused: str | None = None
