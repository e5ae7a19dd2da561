"""Frame types of protocol v1: small frozen dataclasses, each parsing and serialising itself.

Client frames (``t`` values): hello, send, sync, read, typing, to_device, to_device.ack,
msg.delete, room.create, room.get, room.settings, room.invite, room.uninvite, room.leave,
room.remove, room.update, room.role, keys.upload, keys.query, keys.report, ping.
Server frames: welcome, ack, msg, batch, event, to_device, error, pong.

Invariants: every client frame carries a request ``id``; every reply carries ``re`` equal
to it. ``parse`` never raises anything but :class:`~protocol.errors.BadFrame`, and
``to_wire`` returns only msgpack-native values (str, int, bool, bytes, list, dict).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from .crypto.envelope import header_problem, message_problem
from .crypto.share import to_device_problem
from .errors import BadFrame, ErrorCode
from .fields import FieldReader
from .limits import (
    MAX_ACK_TIDS,
    MAX_ATTACHMENTS_PER_MESSAGE,
    MAX_BODY,
    MAX_BUNDLE,
    MAX_CID,
    MAX_EMAIL,
    MAX_EMAILS_PER_INVITE,
    MAX_HEADER,
    MAX_IDENTITY,
    MAX_MEMBERS_PER_REQUEST,
    MAX_MENTIONS,
    MAX_NAME,
    MAX_SYNC_LIMIT,
    MAX_TOKEN,
)

__all__ = [
    "CLIENT_FRAMES",
    "E2E_HEADER",
    "E2E_NAME",
    "E2E_TO_DEVICE",
    "E2E_MESSAGE",
    "ROLES",
    "REPORT_REASONS",
    "ROOM_KINDS",
    "SERVER_FRAMES",
    "Ack",
    "Batch",
    "ClientFrame",
    "Error",
    "Event",
    "Hello",
    "Invitation",
    "KeysQuery",
    "KeysReport",
    "KeysSign",
    "KeysUpload",
    "Member",
    "Msg",
    "MsgDelete",
    "Ping",
    "Pong",
    "Read",
    "ReadMarker",
    "RoomCreate",
    "RoomGet",
    "RoomInfo",
    "RoomInvite",
    "RoomLeave",
    "RoomRemove",
    "RoomRole",
    "RoomSettings",
    "RoomUninvite",
    "RoomUpdate",
    "Send",
    "ServerFrame",
    "Sync",
    "ToDevice",
    "ToDeviceAck",
    "ToDeviceMsg",
    "Typing",
    "Welcome",
]

ROOM_KINDS = ("direct", "group", "patient_case")
# What the server accepts where the protocol promises ciphertext (SPEC.md §11): the shape
# of a room message (send.body) and of a case header, checked without any key.
E2E_MESSAGE = ("an end-to-end room message (SPEC.md §11.2)", message_problem)
E2E_HEADER = ("an end-to-end case header (SPEC.md §11.4)", header_problem)
E2E_NAME = ("an end-to-end room name (SPEC.md §11.4)", header_problem)
E2E_TO_DEVICE = ("a sealed to-device payload (SPEC.md §11.3)", to_device_problem)
ROLES = ("owner", "admin", "member")
NOTIFY_LEVELS = ("all", "mentions", "none")  # a member's notifications of a room
ROOM_STATUSES = ("open", "closed")
MAX_SEQ = 2**63 - 1
MAX_TS = 2**63 - 1


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    """Drop absent optional fields so frames stay small on the wire."""
    return {k: v for k, v in d.items() if v is not None}


# ---------------------------------------------------------------- client -> server


@dataclass(frozen=True, slots=True)
class Hello:
    """First frame of every connection: authenticates it with a session token."""

    T: ClassVar[str] = "hello"
    id: int
    token: str
    device: str

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> Hello:
        return cls(id, r.str_("token", MAX_TOKEN), r.str_("device"))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "token": self.token, "device": self.device}


@dataclass(frozen=True, slots=True)
class Send:
    """Append an opaque ciphertext to a room; ``cid`` makes retries idempotent.

    ``att``: ids of attachments the sender uploaded to this room and that the message
    refers to (their keys and hashes travel inside ``body``); absent when empty.
    ``edits``: the seq of the sender's own message this one replaces (an edit); the
    server sees the reference so that only the author edits and a deletion takes the
    edits' ciphertext too (SPEC.md §4.2). ``mentions``: the members the message
    mentions, for the push decision of members who muted the room (neither stored nor
    relayed)."""

    T: ClassVar[str] = "send"
    id: int
    room: str
    cid: str
    body: bytes
    att: tuple[str, ...] | None = None
    edits: int | None = None
    mentions: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> Send:
        return cls(
            id,
            r.str_("room"),
            r.str_("cid", MAX_CID),
            r.bytes_("body", MAX_BODY, shape=E2E_MESSAGE),
            r.str_list("att", MAX_ATTACHMENTS_PER_MESSAGE, required=False) or None,
            r.int_("edits", 1, MAX_SEQ, required=False),
            r.str_list("mentions", MAX_MENTIONS, required=False) or None,
        )

    def to_wire(self) -> dict[str, Any]:
        wire = {"t": self.T, "id": self.id, "room": self.room, "cid": self.cid, "body": self.body}
        if self.att:
            wire["att"] = list(self.att)
        if self.edits is not None:
            wire["edits"] = self.edits
        if self.mentions:
            wire["mentions"] = list(self.mentions)
        return wire


@dataclass(frozen=True, slots=True)
class MsgDelete:
    """Delete a message for everyone: the server drops its ciphertext (and its edits'),
    keeps a tombstone and appends a ``msg.deleted`` event (SPEC.md §4.20)."""

    T: ClassVar[str] = "msg.delete"
    id: int
    room: str
    seq: int

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> MsgDelete:
        return cls(id, r.str_("room"), r.int_("seq", 1, MAX_SEQ))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "room": self.room, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Sync:
    """Ask for the room's timeline items with ``seq > after``, oldest first."""

    T: ClassVar[str] = "sync"
    id: int
    room: str
    after: int
    limit: int = 100

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> Sync:
        return cls(
            id,
            r.str_("room"),
            r.int_("after", 0, MAX_SEQ),
            r.int_("limit", 1, MAX_SYNC_LIMIT, default=100),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "id": self.id,
            "room": self.room,
            "after": self.after,
            "limit": self.limit,
        }


@dataclass(frozen=True, slots=True)
class Read:
    """Read receipt: the caller has read the room up to ``seq``."""

    T: ClassVar[str] = "read"
    id: int
    room: str
    seq: int

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> Read:
        return cls(id, r.str_("room"), r.int_("seq", 1, MAX_SEQ))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "room": self.room, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Typing:
    """Ephemeral typing notice; never stored."""

    T: ClassVar[str] = "typing"
    id: int
    room: str
    on: bool

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> Typing:
        return cls(id, r.str_("room"), r.bool_("on"))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "room": self.room, "on": self.on}


@dataclass(frozen=True, slots=True)
class ToDevice:
    """Queue an opaque payload for one device of one user until that device acks it."""

    T: ClassVar[str] = "to_device"
    id: int
    user: str
    device: str
    body: bytes

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> ToDevice:
        return cls(
            id, r.str_("user"), r.str_("device"), r.bytes_("body", MAX_BODY, shape=E2E_TO_DEVICE)
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "id": self.id,
            "user": self.user,
            "device": self.device,
            "body": self.body,
        }


@dataclass(frozen=True, slots=True)
class ToDeviceAck:
    """The device has processed these to-device messages: the server deletes them.

    Explicit ids rather than "everything up to": a replayed old message and a live new
    one may arrive in either order, and acking one must not drop the other."""

    T: ClassVar[str] = "to_device.ack"
    id: int
    tids: tuple[int, ...]

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> ToDeviceAck:
        return cls(id, r.int_list("tids", MAX_ACK_TIDS))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "tids": list(self.tids)}


@dataclass(frozen=True, slots=True)
class RoomCreate:
    """Create a room. ``direct`` takes exactly one other member and is unique per pair.
    A name and a case header are set afterwards by room.update: they are encrypted with
    the room's sender keys, which bind the room's id (SPEC.md §11.4)."""

    T: ClassVar[str] = "room.create"
    id: int
    kind: str
    members: tuple[str, ...]

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomCreate:
        return cls(
            id,
            r.choice("kind", ROOM_KINDS),
            r.str_list("members", MAX_MEMBERS_PER_REQUEST),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "kind": self.kind, "members": list(self.members)}


@dataclass(frozen=True, slots=True)
class RoomGet:
    """Ask for a room's description and member list."""

    T: ClassVar[str] = "room.get"
    id: int
    room: str

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomGet:
        return cls(id, r.str_("room"))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "room": self.room}


@dataclass(frozen=True, slots=True)
class RoomInvite:
    """Add users to a group or patient-case room (owner or admin only), and invite
    e-mail addresses of practitioners who may have no account yet (guests)."""

    T: ClassVar[str] = "room.invite"
    id: int
    room: str
    users: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomInvite:
        room = r.str_("room")
        users = r.str_list("users", MAX_MEMBERS_PER_REQUEST, required=False)
        emails = r.str_list("emails", MAX_EMAILS_PER_INVITE, required=False, max_len=MAX_EMAIL)
        if users is None and emails is None:
            raise BadFrame("room.invite: missing field 'users' (or 'emails')", id)
        return cls(id, room, users or (), emails or ())

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"t": self.T, "id": self.id, "room": self.room}
        if self.users or not self.emails:
            wire["users"] = list(self.users)
        if self.emails:
            wire["emails"] = list(self.emails)
        return wire


@dataclass(frozen=True, slots=True)
class RoomUninvite:
    """Revoke the pending invitation of an e-mail address (owner or admin only)."""

    T: ClassVar[str] = "room.uninvite"
    id: int
    room: str
    email: str

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomUninvite:
        return cls(id, r.str_("room"), r.str_("email", MAX_EMAIL))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "room": self.room, "email": self.email}


@dataclass(frozen=True, slots=True)
class RoomLeave:
    """The caller leaves a group or patient-case room."""

    T: ClassVar[str] = "room.leave"
    id: int
    room: str

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomLeave:
        return cls(id, r.str_("room"))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "room": self.room}


@dataclass(frozen=True, slots=True)
class RoomRemove:
    """Remove a member (owner or admin only; nobody removes the owner)."""

    T: ClassVar[str] = "room.remove"
    id: int
    room: str
    user: str

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomRemove:
        return cls(id, r.str_("room"), r.str_("user"))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "room": self.room, "user": self.user}


@dataclass(frozen=True, slots=True)
class RoomUpdate:
    """Rename a room, replace a case header, or open/close a patient case. The name and
    the header are encrypted (SPEC.md §11.4)."""

    T: ClassVar[str] = "room.update"
    id: int
    room: str
    name: bytes | None = None
    header: bytes | None = None
    status: str | None = None

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomUpdate:
        return cls(
            id,
            r.str_("room"),
            r.bytes_("name", MAX_NAME, required=False, shape=E2E_NAME),
            r.bytes_("header", MAX_HEADER, required=False, shape=E2E_HEADER),
            r.choice("status", ROOM_STATUSES, required=False),
        )

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "t": self.T,
                "id": self.id,
                "room": self.room,
                "name": self.name,
                "header": self.header,
                "status": self.status,
            }
        )


@dataclass(frozen=True, slots=True)
class RoomRole:
    """Make a member an admin or a plain member again, or hand ownership over (the
    previous owner becomes an admin). Owner only."""

    T: ClassVar[str] = "room.role"
    id: int
    room: str
    user: str
    role: str

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomRole:
        return cls(id, r.str_("room"), r.str_("user"), r.choice("role", ROLES))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "room": self.room, "user": self.user, "role": self.role}


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """The caller's own settings of a room, synced across its devices: notifications
    (all, mentions only, none), archived, pinned, marked unread (SPEC.md §4.21)."""

    T: ClassVar[str] = "room.settings"
    id: int
    room: str
    notify: str | None = None
    archived: bool | None = None
    pinned: bool | None = None
    unread: bool | None = None

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> RoomSettings:
        frame = cls(
            id,
            r.str_("room"),
            r.choice("notify", NOTIFY_LEVELS, required=False),
            r.bool_("archived", required=False),
            r.bool_("pinned", required=False),
            r.bool_("unread", required=False),
        )
        if (frame.notify, frame.archived, frame.pinned, frame.unread) == (None,) * 4:
            raise BadFrame("room.settings: nothing to change", id)
        return frame

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "t": self.T,
                "id": self.id,
                "room": self.room,
                "notify": self.notify,
                "archived": self.archived,
                "pinned": self.pinned,
                "unread": self.unread,
            }
        )


@dataclass(frozen=True, slots=True)
class KeysUpload:
    """Publish the calling device's signed key bundle (protocol/crypto/keys.py), with
    its user's identity record and that identity's signature of the bundle
    (cross-signing, protocol/crypto/identity.py) when the device holds the identity."""

    T: ClassVar[str] = "keys.upload"
    id: int
    bundle: bytes
    identity: bytes | None = None
    signature: bytes | None = None
    reset: bool = False

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> KeysUpload:
        return cls(
            id,
            r.bytes_("bundle", MAX_BUNDLE),
            r.bytes_("identity", MAX_IDENTITY, required=False),
            r.bytes_("signature", MAX_IDENTITY, required=False),
            bool(r.bool_("reset", required=False)),
        )

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "t": self.T,
                "id": self.id,
                "bundle": self.bundle,
                "identity": self.identity,
                "signature": self.signature,
                "reset": self.reset or None,
            }
        )


@dataclass(frozen=True, slots=True)
class KeysSign:
    """Store the user's identity signature of another device of the same user (the
    approval of a new device, protocol/crypto/identity.py ``sign_device``)."""

    T: ClassVar[str] = "keys.sign"
    id: int
    device: str
    signature: bytes

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> KeysSign:
        return cls(id, r.str_("device"), r.bytes_("signature", MAX_IDENTITY))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "device": self.device, "signature": self.signature}


@dataclass(frozen=True, slots=True)
class KeysQuery:
    """Ask for the key bundles of the devices of ``users``; answered by an ack with
    ``keys``."""

    T: ClassVar[str] = "keys.query"
    id: int
    users: tuple[str, ...]

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> KeysQuery:
        return cls(id, r.str_list("users", MAX_MEMBERS_PER_REQUEST))

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id, "users": list(self.users)}


REPORT_REASONS = (
    "unknown_session",
    "bad_signature",
    "tampered",
    "replayed",
    "too_far_ahead",
    "bad_version",
    "other",
)


@dataclass(frozen=True, slots=True)
class KeysReport:
    """A message of ``device`` in ``room`` could not be decrypted. The server counts it
    and, for ``unknown_session``, asks that device to share its key again."""

    T: ClassVar[str] = "keys.report"
    id: int
    room: str
    device: str
    reason: str
    session: bytes | None = None

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> KeysReport:
        return cls(
            id,
            r.str_("room"),
            r.str_("device"),
            r.choice("reason", REPORT_REASONS),
            r.bytes_("session", 16, required=False),
        )

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "t": self.T,
                "id": self.id,
                "room": self.room,
                "device": self.device,
                "reason": self.reason,
                "session": self.session,
            }
        )


@dataclass(frozen=True, slots=True)
class Ping:
    """Application-level liveness check; answered by ``pong``."""

    T: ClassVar[str] = "ping"
    id: int

    @classmethod
    def parse(cls, r: FieldReader, id: int) -> Ping:
        return cls(id)

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "id": self.id}


ClientFrame = (
    Hello
    | Send
    | Sync
    | Read
    | Typing
    | ToDevice
    | ToDeviceAck
    | MsgDelete
    | RoomCreate
    | RoomGet
    | RoomInvite
    | RoomUninvite
    | RoomLeave
    | RoomRemove
    | RoomUpdate
    | RoomRole
    | RoomSettings
    | KeysUpload
    | KeysSign
    | KeysQuery
    | KeysReport
    | Ping
)
CLIENT_FRAMES: dict[str, Any] = {
    cls.T: cls
    for cls in (
        Hello,
        Send,
        Sync,
        Read,
        Typing,
        ToDevice,
        ToDeviceAck,
        MsgDelete,
        RoomCreate,
        RoomGet,
        RoomInvite,
        RoomUninvite,
        RoomLeave,
        RoomRemove,
        RoomUpdate,
        RoomRole,
        RoomSettings,
        KeysUpload,
        KeysSign,
        KeysQuery,
        KeysReport,
        Ping,
    )
}


# ---------------------------------------------------------------- server -> client


@dataclass(frozen=True, slots=True)
class Member:
    """A room member; ``online``: has a live connection on some node (room.get only)."""

    user: str
    role: str
    online: bool | None = None

    def to_wire(self) -> dict[str, Any]:
        return _compact({"user": self.user, "role": self.role, "online": self.online})

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Member:
        r = FieldReader(d, "member", None, frame=False)
        member = cls(r.str_("user"), r.choice("role", ROLES), r.bool_("online", required=False))
        r.done(strict=False)
        return member


@dataclass(frozen=True, slots=True)
class Invitation:
    """A pending invitation of an e-mail address (a guest), as room.get shows it."""

    email: str
    by: str
    at: int
    expires_at: int

    def to_wire(self) -> dict[str, Any]:
        return {"email": self.email, "by": self.by, "at": self.at, "expires_at": self.expires_at}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Invitation:
        r = FieldReader(d, "invitation", None, frame=False)
        invitation = cls(
            r.str_("email", MAX_EMAIL),
            r.str_("by"),
            r.int_("at", 0, MAX_TS),
            r.int_("expires_at", 0, MAX_TS),
        )
        r.done(strict=False)
        return invitation


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """A room as one member sees it. ``members`` and ``invited`` (pending invitations
    by e-mail) are filled by room.create/room.get only."""

    id: str
    kind: str
    status: str
    role: str
    last_seq: int
    read_seq: int
    name: bytes | None = None  # encrypted (SPEC.md §11.4)
    header: bytes | None = None
    members: tuple[Member, ...] | None = None
    invited: tuple[Invitation, ...] | None = None
    # The caller's own settings (room.settings); on the wire only when not the default.
    notify: str = "all"
    archived: bool = False
    pinned: bool = False
    unread: bool = False

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "id": self.id,
                "kind": self.kind,
                "status": self.status,
                "role": self.role,
                "last_seq": self.last_seq,
                "read_seq": self.read_seq,
                "name": self.name,
                "header": self.header,
                "members": None if self.members is None else [m.to_wire() for m in self.members],
                "invited": None if self.invited is None else [i.to_wire() for i in self.invited],
                "notify": None if self.notify == "all" else self.notify,
                "archived": self.archived or None,
                "pinned": self.pinned or None,
                "unread": self.unread or None,
            }
        )

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> RoomInfo:
        r = FieldReader(d, "room", None, frame=False)
        info = cls(
            id=r.str_("id"),
            kind=r.choice("kind", ROOM_KINDS),
            status=r.choice("status", ROOM_STATUSES),
            role=r.choice("role", ROLES),
            last_seq=r.int_("last_seq", 0, MAX_SEQ),
            read_seq=r.int_("read_seq", 0, MAX_SEQ),
            name=r.bytes_("name", MAX_NAME, required=False),
            header=r.bytes_("header", MAX_HEADER, required=False),
            members=None,
            notify=r.choice("notify", NOTIFY_LEVELS, required=False) or "all",
            archived=bool(r.bool_("archived", required=False)),
            pinned=bool(r.bool_("pinned", required=False)),
            unread=bool(r.bool_("unread", required=False)),
        )
        members = r.map_list("members", required=False)
        invited = r.map_list("invited", required=False)
        r.done(strict=False)
        if invited is not None:
            info = replace(info, invited=tuple(Invitation.from_wire(i) for i in invited))
        if members is None:
            return info
        return replace(info, members=tuple(Member.from_wire(m) for m in members))


@dataclass(frozen=True, slots=True)
class Welcome:
    """Reply to a valid hello: who you are and the rooms you are in."""

    T: ClassVar[str] = "welcome"
    re: int
    user: str
    device: str
    verified: bool
    rooms: tuple[RoomInfo, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "re": self.re,
            "user": self.user,
            "device": self.device,
            "verified": self.verified,
            "rooms": [r.to_wire() for r in self.rooms],
        }

    @classmethod
    def parse(cls, r: FieldReader, re: int) -> Welcome:
        return cls(
            re,
            r.str_("user"),
            r.str_("device"),
            r.bool_("verified"),
            tuple(RoomInfo.from_wire(m) for m in r.map_list("rooms")),
        )


@dataclass(frozen=True, slots=True)
class Ack:
    """Success reply. Which optional fields are set depends on the request (SPEC.md)."""

    T: ClassVar[str] = "ack"
    re: int
    seq: int | None = None
    ts: int | None = None
    tid: int | None = None
    room: RoomInfo | None = None
    keys: tuple[bytes, ...] | None = None  # keys.query: signed bundles, one per device
    identities: tuple[bytes, ...] | None = None  # keys.query: users' identity records
    signatures: tuple[bytes, ...] | None = None  # keys.query: device signatures

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "t": self.T,
                "re": self.re,
                "seq": self.seq,
                "ts": self.ts,
                "tid": self.tid,
                "room": None if self.room is None else self.room.to_wire(),
                "keys": None if self.keys is None else list(self.keys),
                "identities": None if self.identities is None else list(self.identities),
                "signatures": None if self.signatures is None else list(self.signatures),
            }
        )

    @classmethod
    def parse(cls, r: FieldReader, re: int) -> Ack:
        room = r.map_("room", required=False)
        return cls(
            re,
            r.int_("seq", 0, MAX_SEQ, required=False),
            r.int_("ts", 0, MAX_TS, required=False),
            r.int_("tid", 0, MAX_SEQ, required=False),
            None if room is None else RoomInfo.from_wire(room),
            r.bytes_list("keys", 100_000, MAX_BUNDLE, required=False),
            r.bytes_list("identities", 100_000, MAX_IDENTITY, required=False),
            r.bytes_list("signatures", 100_000, MAX_IDENTITY, required=False),
        )


@dataclass(frozen=True, slots=True)
class Msg:
    """One message of a room's timeline, as stored: ciphertext plus routing metadata.

    ``edits``: the seq of the message this one edits. A deleted message (or an edit of
    one) is a tombstone: no ``body``, ``deleted_by`` and ``deleted_at`` set."""

    T: ClassVar[str] = "msg"
    room: str
    seq: int
    sender: str
    device: str
    cid: str
    ts: int
    body: bytes | None
    edits: int | None = None
    deleted_by: str | None = None
    deleted_at: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "t": self.T,
                "room": self.room,
                "seq": self.seq,
                "sender": self.sender,
                "device": self.device,
                "cid": self.cid,
                "ts": self.ts,
                "body": self.body,
                "edits": self.edits,
                "deleted_by": self.deleted_by,
                "deleted_at": self.deleted_at,
            }
        )

    @classmethod
    def parse(cls, r: FieldReader, re: int | None = None) -> Msg:
        msg = cls(
            r.str_("room"),
            r.int_("seq", 1, MAX_SEQ),
            r.str_("sender"),
            r.str_("device"),
            r.str_("cid", MAX_CID),
            r.int_("ts", 0, MAX_TS),
            r.bytes_("body", MAX_BODY, required=False),
            r.int_("edits", 1, MAX_SEQ, required=False),
            r.str_("deleted_by", required=False),
            r.int_("deleted_at", 0, MAX_TS, required=False),
        )
        if (msg.body is None) != (msg.deleted_at is not None):
            raise BadFrame("msg: exactly one of 'body' and 'deleted_at' is present", re)
        return msg


EVENT_KINDS = (
    "member.joined",
    "member.left",
    "member.promoted",
    "guest.invited",
    "receipts",
    "typing",
    "room.updated",
    "device.revoked",
    "msg.deleted",
    # Not a room event: sent to the caller's other devices by room.settings.
    "room.settings",
    # Not a room event: sent to the devices of a practitioner whose agenda got a
    # booking; ``room`` carries the appointment id, ``reason`` "referral" or "sas".
    "appointment.booked",
)


@dataclass(frozen=True, slots=True)
class ReadMarker:
    """One member's read marker, as a ``receipts`` event carries it."""

    user: str
    upto: int

    def to_wire(self) -> dict[str, Any]:
        return {"user": self.user, "upto": self.upto}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> ReadMarker:
        r = FieldReader(d, "read marker", None, frame=False)
        marker = cls(r.str_("user"), r.int_("upto", 0, MAX_SEQ))
        r.done(strict=False)
        return marker


@dataclass(frozen=True, slots=True)
class Event:
    """A room event. Timeline events (member.*, room.updated) have ``seq >= 1`` and are
    returned by sync; ephemeral ones (receipts, typing) have ``seq == 0``."""

    T: ClassVar[str] = "event"
    kind: str
    room: str
    seq: int = 0
    ts: int = 0
    user: str | None = None
    users: tuple[str, ...] | None = None
    by: str | None = None
    role: str | None = None
    upto: int | None = None
    on: bool | None = None
    name: bytes | None = None  # encrypted (SPEC.md §11.4)
    status: str | None = None
    header: bytes | None = None
    reason: str | None = None
    device: str | None = None  # device.revoked
    target: int | None = None  # msg.deleted: the seq of the deleted message
    # room.settings: the user's settings of the room after the change
    notify: str | None = None
    archived: bool | None = None
    pinned: bool | None = None
    unread: bool | None = None
    reads: tuple[ReadMarker, ...] | None = None  # receipts: the markers that moved

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "t": self.T,
                "kind": self.kind,
                "room": self.room,
                "seq": self.seq,
                "ts": self.ts,
                "user": self.user,
                "users": None if self.users is None else list(self.users),
                "by": self.by,
                "role": self.role,
                "upto": self.upto,
                "on": self.on,
                "name": self.name,
                "status": self.status,
                "header": self.header,
                "reason": self.reason,
                "device": self.device,
                "target": self.target,
                "notify": self.notify,
                "archived": self.archived,
                "pinned": self.pinned,
                "unread": self.unread,
                "reads": None if self.reads is None else [m.to_wire() for m in self.reads],
            }
        )

    @classmethod
    def parse(cls, r: FieldReader, re: int | None = None) -> Event:
        event = cls(
            kind=r.choice("kind", EVENT_KINDS),
            room=r.str_("room"),
            seq=r.int_("seq", 0, MAX_SEQ, default=0),
            ts=r.int_("ts", 0, MAX_TS, default=0),
            user=r.str_("user", required=False),
            users=r.str_list("users", 100_000, required=False),
            by=r.str_("by", required=False),
            role=r.choice("role", ROLES, required=False),
            upto=r.int_("upto", 0, MAX_SEQ, required=False),
            on=r.bool_("on", required=False),
            name=r.bytes_("name", MAX_NAME, required=False),
            status=r.choice("status", ROOM_STATUSES, required=False),
            header=r.bytes_("header", MAX_HEADER, required=False),
            reason=r.str_("reason", required=False),
            device=r.str_("device", required=False),
            target=r.int_("target", 1, MAX_SEQ, required=False),
            notify=r.choice("notify", NOTIFY_LEVELS, required=False),
            archived=r.bool_("archived", required=False),
            pinned=r.bool_("pinned", required=False),
            unread=r.bool_("unread", required=False),
        )
        reads = r.map_list("reads", required=False)
        if reads is None:
            return event
        return replace(event, reads=tuple(ReadMarker.from_wire(m) for m in reads))


@dataclass(frozen=True, slots=True)
class Batch:
    """Reply to sync: timeline items (msg and timeline events) in seq order."""

    T: ClassVar[str] = "batch"
    re: int
    room: str
    items: tuple[Msg | Event, ...]
    more: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "re": self.re,
            "room": self.room,
            "items": [i.to_wire() for i in self.items],
            "more": self.more,
        }

    @classmethod
    def parse(cls, r: FieldReader, re: int) -> Batch:
        room = r.str_("room")
        items: list[Msg | Event] = []
        for m in r.map_list("items"):
            kind = m.get("t")
            sub = FieldReader(m, str(kind), re)
            item: Msg | Event = Msg.parse(sub) if kind == Msg.T else Event.parse(sub)
            sub.done(strict=False)
            items.append(item)
        return cls(re, room, tuple(items), r.bool_("more"))


@dataclass(frozen=True, slots=True)
class ToDeviceMsg:
    """A queued to-device payload; the device acks it with ``to_device.ack``."""

    T: ClassVar[str] = "to_device"
    tid: int
    user: str
    device: str
    ts: int
    body: bytes

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "tid": self.tid,
            "user": self.user,
            "device": self.device,
            "ts": self.ts,
            "body": self.body,
        }

    @classmethod
    def parse(cls, r: FieldReader, re: int | None = None) -> ToDeviceMsg:
        return cls(
            r.int_("tid", 1, MAX_SEQ),
            r.str_("user"),
            r.str_("device"),
            r.int_("ts", 0, MAX_TS),
            r.bytes_("body", MAX_BODY),
        )


@dataclass(frozen=True, slots=True)
class Error:
    """Failure reply (``re`` set) or unsolicited error (``re`` absent)."""

    T: ClassVar[str] = "error"
    code: ErrorCode
    message: str
    re: int | None = None
    retry_after: float | None = None

    def to_wire(self) -> dict[str, Any]:
        return _compact(
            {
                "t": self.T,
                "re": self.re,
                "code": self.code.value,
                "message": self.message,
                "retry_after": self.retry_after,
            }
        )

    @classmethod
    def parse(cls, r: FieldReader, re: int | None) -> Error:
        code = r.str_("code")
        try:
            error_code = ErrorCode(code)
        except ValueError:
            error_code = ErrorCode.INTERNAL
        message = r.str_("message", 10_000)
        retry = r._pop("retry_after", False)
        return cls(
            error_code,
            message,
            re,
            float(retry)
            if isinstance(retry, int | float) and not isinstance(retry, bool)
            else None,
        )


@dataclass(frozen=True, slots=True)
class Pong:
    T: ClassVar[str] = "pong"
    re: int

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "re": self.re}

    @classmethod
    def parse(cls, r: FieldReader, re: int) -> Pong:
        return cls(re)


ServerFrame = Welcome | Ack | Msg | Batch | Event | ToDeviceMsg | Error | Pong
SERVER_FRAMES: dict[str, Any] = {
    cls.T: cls for cls in (Welcome, Ack, Msg, Batch, Event, ToDeviceMsg, Error, Pong)
}
REPLY_FRAMES = frozenset({Welcome.T, Ack.T, Batch.T, Pong.T})
