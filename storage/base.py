"""The store interface: every method is one named transaction.

Guarantees every adapter gives (checked by ``tests/storage``, run against each adapter):

- Each method is atomic: it commits wholly or not at all, and a method that returns has
  committed durably.
- Per room, ``seq`` starts at 1 and grows by exactly 1 for each timeline item (message
  or room event), with no gap and no reuse, however many writers there are.
- ``(device, cid)`` is unique across all messages: appending it again returns the
  original item with ``duplicate=True`` and stores nothing.
- ``append_messages`` stores a message only if its sender is a member of the room and
  the room is open, checked inside the transaction that assigns the seq.
- An edit (``NewMessage.edits``) is stored only if the message it names is its
  sender's, an original, not deleted and within the window, checked in the same
  transaction; ``delete_message`` drops the ciphertext of a message and of its edits
  in the transaction that appends its ``msg.deleted`` event, so no edit of a deleted
  message is ever stored after it.
- A room of kind ``direct`` exists at most once per pair of users.
- An attachment is referenced (``NewMessage.attachments``) only in the transaction that
  stores the message, and only while "ready": once a deleter has claimed it
  (``claim_attachment_deletion``) no message can reference it, and once a message has
  referenced it the orphan sweep's claim fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .accounts import AccountStore
from .audit import AuditStore
from .backup import BackupStore
from .devices import DeviceStore
from .directory import DirectoryStore
from .guests import GuestStore
from .outbox import OutboxStore
from .push import PushStore
from .retention import RetentionStore
from .roles import RoleStore
from .types import (
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
from .verification import VerificationStore

__all__ = [
    "AttachmentStore",
    "KeyStore",
    "RoomStore",
    "Store",
    "TimelineStore",
    "ToDeviceStore",
    "UserStore",
]


class UserStore(Protocol):
    """Accounts (users), devices and sessions."""

    async def create_user(self, new: NewUser, now: int) -> User:
        """Raise :class:`~storage.errors.Conflict` if the e-mail is taken."""

    async def user_by_id(self, user_id: str) -> User | None: ...

    async def user_by_email(self, email: str) -> User | None: ...

    async def existing_user_ids(self, user_ids: Sequence[str]) -> set[str]: ...

    async def set_verified(self, user_id: str, verified: bool) -> None: ...

    async def create_device(self, user_id: str, name: str, now: int) -> Device: ...

    async def device(self, device_id: str) -> Device | None: ...

    async def devices_of(self, user_id: str) -> list[Device]: ...

    async def create_session(self, session: Session) -> None: ...

    async def session(self, token_hash: bytes) -> Session | None: ...

    async def session_user(self, token_hash: bytes) -> tuple[Session, User | None] | None:
        """The session and its user (``None`` if the user is gone), in one read: what
        authenticating a request takes."""

    async def session_user_rooms(
        self, token_hash: bytes
    ) -> tuple[Session, User | None, list[str]] | None:
        """:meth:`session_user` and the ids of the user's rooms, in one read: what a
        WebSocket hello takes (its first read; see :meth:`ToDeviceStore.rooms_and_to_device`)."""

    async def delete_session(self, token_hash: bytes) -> None: ...


class KeyStore(Protocol):
    """The key directory and decryption-failure reports."""

    async def put_device_keys(
        self, user_id: str, device_id: str, bundle: bytes, now: int, signature: bytes | None = None
    ) -> None:
        """Store (or replace) the key bundle of ``user_id``'s device ``device_id`` with
        its identity ``signature`` (verified by the caller). Without one, a stored
        signature stays if the bundle is the same and goes if it changed. Raise
        :class:`~storage.errors.NotFound` if that device does not exist, is revoked or
        is another user's."""

    async def device_keys(self, user_ids: Sequence[str]) -> list[DeviceKeyBundle]:
        """The stored bundles of these users' devices, ordered by user id then device id."""

    async def count_decryption_failure(
        self, room_id: str, device_id: str, reason: str, now: int
    ) -> int:
        """Add one to the failures reported for messages of ``device_id`` in ``room_id``
        with ``reason``; return the new count."""

    async def decryption_failures(self, room_id: str) -> dict[tuple[str, str], int]:
        """The counts of a room, by ``(sender device, reason)``."""

    async def decryption_health(self, since: int, worst: int = 10) -> DecryptionHealth:
        """Failures last reported at or after ``since`` (ms) and messages stored since."""


class RoomStore(Protocol):
    """Rooms and their members."""

    async def create_room(
        self,
        kind: str,
        creator: str,
        members: Sequence[str],
        name: bytes | None,
        header: bytes | None,
        now: int,
    ) -> tuple[Room, TimelineItem | None]:
        """Create a room with ``creator`` as owner and ``members`` as members.

        For ``direct`` rooms an existing room of the pair is returned instead, with
        ``None`` as the item. Otherwise the item is the ``member.joined`` event at seq 1.
        """

    async def room(self, room_id: str) -> Room | None: ...

    async def room_members(self, room_id: str) -> RoomMembers | None: ...

    async def membership(self, room_id: str, user_id: str) -> Membership | None: ...

    async def rooms_of(self, user_id: str) -> list[tuple[Room, Membership]]: ...

    async def share_room(self, user_a: str, user_b: str) -> bool:
        """Whether the two users are members of at least one common room."""

    async def add_members(
        self, room_id: str, users: Sequence[str], by: str, now: int
    ) -> TimelineItem | None:
        """Add the users not yet members; ``None`` if every one already was."""

    async def remove_member(
        self, room_id: str, user_id: str, by: str, reason: str, now: int
    ) -> TimelineItem | None:
        """Remove a member; ``None`` if they were not one."""

    async def update_room(
        self,
        room_id: str,
        by: str,
        now: int,
        name: bytes | None = None,
        header: bytes | None = None,
        status: str | None = None,
    ) -> TimelineItem: ...

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
        """Change a member's own settings of a room (``None``: unchanged); the
        membership after the change, or ``None`` if they are not a member."""

    async def quiet_members(self, room_id: str) -> dict[str, str]:
        """Members whose notifications of the room are not "all": user -> "mentions"
        or "none"."""

    async def set_role(
        self, room_id: str, user_id: str, role: str, by: str, now: int
    ) -> TimelineItem | None:
        """Change a member's role; ``None`` if they are not a member. Setting "owner"
        hands ownership over: the previous owner becomes "admin" in the same
        transaction."""


class TimelineStore(Protocol):
    """Rooms' timelines and read markers."""

    async def append_messages(self, batch: Sequence[NewMessage]) -> list[AppendResult]:
        """Store a batch in one transaction (group commit); results in batch order."""

    async def timeline(self, room_id: str, after: int, limit: int) -> list[TimelineItem]:
        """Items with ``seq > after``, ascending, at most ``limit``."""

    async def delete_message(
        self, room_id: str, seq: int, by: str, now: int, author_since: int
    ) -> DeleteResult:
        """Delete the message at ``seq`` for everyone: its ciphertext and its edits' are
        dropped (the rows stay as tombstones naming ``by`` and ``now``) and a
        ``msg.deleted`` event naming it is appended, in one transaction. Allowed to a
        member of an open room who is its author (if it was sent at ``author_since`` or
        later) or, in a group or patient case, an owner or admin."""

    async def set_reads(self, marks: Sequence[ReadMark]) -> list[ReadResult]:
        """Raise each read marker to its ``seq``, capped at the room's last seq (a
        marker never goes down), in one transaction (group commit), as if one by one
        in batch order; return what each mark did: the marker after it (0 for a
        non-member) and whether it raised it."""


class ToDeviceStore(Protocol):
    """The to-device queue."""

    async def push_to_device(
        self, device_id: str, sender_user: str, sender_device: str, body: bytes, now: int
    ) -> int:
        """Queue a payload for a device; return its ``tid`` (increasing per store)."""

    async def to_device_pending(
        self, device_id: str, after: int, limit: int
    ) -> list[ToDeviceItem]: ...

    async def rooms_and_to_device(
        self, user_id: str, device_id: str, limit: int
    ) -> tuple[list[tuple[Room, Membership]], list[ToDeviceItem]]:
        """``rooms_of(user_id)`` and ``to_device_pending(device_id, 0, limit)`` in one
        read: what a welcome takes (its rooms, read once subscribed, and the first page
        of the device's queue)."""

    async def ack_to_device(self, device_id: str, tids: Sequence[int]) -> int:
        """Delete the device's items with these ``tid``s; return how many."""


class AttachmentStore(Protocol):
    """Attachments' metadata (the bytes live in a storage.blobs.BlobStore)."""

    async def create_attachment(self, new: NewAttachment) -> Attachment:
        """Record an upload about to start, in state "uploading", with a fresh id."""

    async def complete_attachment(
        self, attachment_id: str, size: int, sha256: str
    ) -> Attachment | None:
        """Mark an "uploading" attachment "ready" with its size and hash; ``None`` (and
        no change) if it is not "uploading" any more (claimed for deletion meanwhile)."""

    async def attachment(self, attachment_id: str) -> Attachment | None: ...

    async def claim_attachment_deletion(
        self,
        attachment_id: str,
        *,
        uploader: str | None = None,
        unreferenced_before: int | None = None,
    ) -> Attachment | None:
        """Set the state to "deleting" if the attachment exists and, when given, was
        uploaded by ``uploader`` and is unreferenced and created before
        ``unreferenced_before``; return it, or ``None`` if nothing was claimed. A
        claimed attachment can no longer be referenced (and counts as unreferenced
        from then on: the orphan sweep finishes a deletion nobody else did); delete its
        blob, then call :meth:`delete_attachment`. Claiming one already "deleting"
        succeeds again, so a deletion that failed half-way can be retried."""

    async def delete_attachment(self, attachment_id: str) -> bool:
        """Delete the row; whether there was one."""

    async def unreferenced_attachments(self, before: int, limit: int) -> list[Attachment]:
        """Attachments never referenced and created before ``before`` (ms), in any
        state, oldest first, at most ``limit``: the orphan sweep's candidates."""


class Store(
    AccountStore,
    AttachmentStore,
    AuditStore,
    BackupStore,
    DeviceStore,
    DirectoryStore,
    GuestStore,
    KeyStore,
    OutboxStore,
    PushStore,
    RetentionStore,
    RoleStore,
    RoomStore,
    TimelineStore,
    ToDeviceStore,
    UserStore,
    VerificationStore,
    Protocol,
):
    """Every port: what the composition root opens. Consumers take the narrow ports
    they use (``UserStore``, ``OutboxStore``...), so a test or a new adapter sees at
    a glance what each needs."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`~storage.errors.Unavailable` if the database is unreachable."""
