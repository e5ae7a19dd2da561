"""End-to-end encryption over the transport client: :class:`EncryptedClient`.

The transport (:class:`~clients.python.client.Client`) is unchanged: it delivers
ordered, exactly-once opaque bodies. This layer adds, with :mod:`protocol.crypto`:

- Device keys in a local key file (created 0600 on first use), their signed bundle
  uploaded with ``keys.upload`` on every connect; other devices' bundles fetched with
  ``keys.query`` and verified here (the server is not trusted with them).
- ``send_text``: one encryption per message with this device's outbound sender key for
  the room. Before each send the member list is read (``room.get``); the key is shared
  by to-device (Box) with every member device that does not have it yet, and replaced
  by a fresh one as soon as any device that had it is no longer a member (a member
  left or was removed, seen here or in a ``member.left`` event): a removed member
  cannot read what follows.
- ``recv``: decrypted messages (:class:`Decrypted`), room events as they are, and
  :class:`Undecryptable` for a message that failed to verify or decrypt (tampered, bad
  signature, replayed: never shown) or whose key did not arrive within ``key_wait``
  seconds. A message whose key has not arrived yet is held, and delivered decrypted as
  soon as the key comes (so it may come after later messages). To-device key shares
  are consumed here and never returned.
- Failures are reported (``keys.report``): a key still missing half-way through
  ``key_wait`` makes the server ask the sender device to share it again (which it does
  only with a device it had shared that key with, still a member), and refused
  messages are counted per room and sender device.
- Chat files: ``send_file`` encrypts and uploads a file (:mod:`.attachments`), then
  sends one encrypted message whose plaintext carries its
  :class:`~protocol.crypto.attachment.AttachmentRef` (key, SHA-256, size, type, name)
  and names the upload in ``att``; a :class:`Decrypted` message lists the references
  it carries in ``files``, and ``fetch_file`` downloads, decrypts and checks one
  (:class:`~clients.python.errors.AttachmentCorrupt` if anything does not match).
- Edits and deletion for everyone: ``edit_text`` sends a new encrypted message that
  names the original both in its plaintext (``edits``) and in ``send.edits`` (so the
  server lets only the author edit and deletes the edits with the original); a
  :class:`Decrypted` edit has ``edits`` set, and one whose two references differ is
  :class:`Undecryptable` (a server moving an edit onto another message). ``delete``
  sends ``msg.delete``; the ``msg.deleted`` event comes through ``recv`` as it is, and
  a deleted message read by ``sync`` comes as a :class:`Deleted` tombstone.
- Search in one's messages: with ``search_file``, every message ``recv`` returns is
  indexed in that file (:mod:`.search`, encrypted at rest under a key derived from the
  key file; edits replace the text, deletions remove it) and ``search(query)`` finds
  them, accents and case ignored, by word prefixes; the server sees none of it.
- Patient-case headers are encrypted with the same sender key (``set_header``,
  ``decrypt_header``).
- Cross-signing (SPEC.md §11.1): the user's identity key lives in ``identity_file``
  (beside the key file, 0600) on the devices that hold it. At connect, a user without
  an identity key gets one from this device (its first), which signs its own bundle;
  a device without the secret stays unverified until a device that has it signs it
  (``sign_device``, called by the approval of a new device; ``adopt_identity`` stores
  a secret received then). ``device_verified(user, device)`` says whether a device's
  bundle carries its user's identity signature.
- Safety numbers: ``safety_number(user)``, over the two users' identity keys (over
  device keys for a user without one), so adding a device does not change it; when
  the identity key of a user already seen changes (or, without one, their device
  keys), ``recv`` returns a :class:`KeysChanged` with the old and new numbers.
- Revoked devices: on a ``device.revoked`` event, the room gets a new sender key and
  that user's devices are read again, so the revoked device gets nothing sent after.
- Key forwarding to promoted guests: a ``guest.invited`` event (an address invited by
  e-mail) makes this device start a new sender key, as ``member.left`` does. On
  ``member.promoted`` (that guest has just become a member; ``upto`` is the seq of its
  ``guest.invited`` event), this device shares its current sender key of the room
  *from its first index* with every device of the new member, if that key was made
  after the invitation was seen, so the messages sent since the invitation become
  readable, and nothing sent before it. A promotion naming no ``guest.invited`` event
  seen here is ignored. The device also answers that member's key requests for that
  key later (a device that had no published keys yet asks once it sees the
  messages). If no member is online at promotion time, nothing is shared then: each
  member's client sees the ``member.promoted`` event when it comes back (it is a
  timeline event, synced like messages) and shares its keys at that moment; meanwhile
  the new member's messages wait (held, then reported and requested again, see
  above).

- Adding a device (SPEC.md §11.7): a new device calls :meth:`request_link`, which asks
  the user's other devices for approval and returns the code to show; an existing device
  gets a :class:`LinkRequest` from ``recv`` with the same code, and :meth:`approve` (or
  :meth:`refuse`) answers it: the new device gets every sender key this one holds (the
  key as first received, so the whole history reads), the backup key if there is one,
  and from then on each key this device receives. The new device gets a
  :class:`LinkAnswered`. While it waits, its held messages are neither reported nor
  given up.
- Key backup (:mod:`.backup`): :meth:`set_up_backup` creates one under a new recovery
  phrase (and gives its key to the linked devices, which keep it up to date too),
  :meth:`restore_backup` imports its keys; once either is done (or the backup key came
  from a linked device), every new key is added to it as it arrives.
- Approving signs the new device with the user's identity key (cross-signing) and
  gives it the identity secret (``adopt_identity``), so it approves the next ones.

Sender keys received (as first received) are kept in ``sessions_file`` when given, so a
restarted client reads the history again; otherwise in memory only. The outbound key
is not kept: a restarted client starts a new one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgpack

from protocol.crypto.attachment import MAX_FILE_NAME, AttachmentRef
from protocol.crypto.backup import sender_key_from_wire, sender_key_to_wire
from protocol.crypto.envelope import parse_header, wrap_header
from protocol.crypto.errors import BadVersion, CryptoError, Tampered, Truncated, UnknownSession
from protocol.crypto.identity import (
    IdentityKeys,
    IdentityRecord,
    device_verified,
    parse_device_signature,
    parse_identity,
    sign_device,
)
from protocol.crypto.keys import DeviceKeys, KeyBundle, parse_bundle
from protocol.crypto.linking import link_code, room_keys_from_payload, room_keys_payloads
from protocol.crypto.safety import safety_number
from protocol.crypto.sender_keys import InboundSession, OutboundSession, SenderKey, parse_message
from protocol.crypto.share import (
    KEY_REQUEST_VERSION,
    open_sealed,
    open_sender_key,
    parse_key_request,
    seal,
    share_sender_key,
)
from protocol.errors import ErrorCode
from protocol.frames import Event, Msg, RoomInfo, ToDeviceMsg
from protocol.limits import MAX_ATTACHMENTS_PER_MESSAGE, MAX_NAME_CHARS

from .attachments import Source, check_file, download_file, upload_file
from .backup import (
    BackupKey,
    create_backup,
    download_backup,
    open_backup,
    upload_identity,
    upload_keys,
)
from .client import Client
from .errors import AttachmentRefused, ConfrereError, ConnectionLost, ServerError
from .rest import Account
from .search import MessageIndex, SearchHit, index_key

__all__ = [
    "Content",
    "Decrypted",
    "Deleted",
    "Reply",
    "EncryptedClient",
    "EncryptedIncoming",
    "KeysChanged",
    "LinkAnswered",
    "LinkRequest",
    "Undecryptable",
    "decode_content",
    "encode_content",
    "load_identity",
    "load_or_create_keys",
    "save_identity",
]

log = logging.getLogger("confrere.e2ee")

CONTENT_VERSION = 1  # of a message's plaintext map (SPEC.md §11.2)
_KEYS_TTL = 30.0  # seconds a user's device list is trusted before it is asked again


@dataclass(frozen=True, slots=True)
class Decrypted:
    """A message that verified and decrypted."""

    room: str
    seq: int
    sender: str
    device: str
    ts: int
    text: str
    files: tuple[AttachmentRef, ...] = ()  # attached chat files: see ``fetch_file``
    edits: int | None = None  # an edit: the seq of the message whose text this replaces
    reply: Reply | None = None  # the message this one answers
    mentions: tuple[str, ...] = ()  # user ids of the members it mentions
    forwarded: bool = False  # sent on from another conversation (``forward``)


@dataclass(frozen=True, slots=True)
class Deleted:
    """A message deleted for everyone (or an edit of one), as ``sync`` returns it: its
    ciphertext is gone; ``by`` deleted it at ``at``."""

    room: str
    seq: int
    sender: str
    ts: int
    by: str
    at: int
    edits: int | None = None


@dataclass(frozen=True, slots=True)
class Undecryptable:
    """A message that cannot be shown; ``reason`` says why (safe to display)."""

    room: str
    seq: int
    sender: str
    device: str
    ts: int
    reason: str


@dataclass(frozen=True, slots=True)
class KeysChanged:
    """A user's device signing keys changed since this client last saw them, so the
    safety number with them went from ``previous`` to ``number``. A new device does
    that; a device whose key was *replaced* (``replaced``: device ids) is what an
    attack through the key directory looks like: compare safety numbers out of band."""

    user: str
    previous: str
    number: str
    replaced: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """Another device of this user asks to be approved: show ``code`` and compare it
    with the one on the new device's screen, then :meth:`EncryptedClient.approve` or
    :meth:`EncryptedClient.refuse`."""

    device: str
    code: str


@dataclass(frozen=True, slots=True)
class LinkAnswered:
    """The user's device ``device`` answered this device's :meth:`~EncryptedClient.request_link`."""

    device: str
    approved: bool


EncryptedIncoming = (
    Decrypted | Deleted | Undecryptable | KeysChanged | LinkRequest | LinkAnswered | Event
)

P = TypeVar("P")


def _valid(items: Iterable[bytes], parse: Callable[[bytes], P], what: str) -> list[P]:
    """``items`` parsed; one the server sent malformed is logged and left out."""
    parsed = []
    for data in items:
        try:
            parsed.append(parse(data))
        except CryptoError as exc:
            log.warning("server returned an invalid %s: %s", what, exc)
    return parsed


SessionKey = tuple[str, str, bytes]  # room, sender device, session id


@dataclass
class _Outbound:
    session: OutboundSession
    initial: SenderKey  # as first shared: what a key request gets
    # The room's last seq this client had seen when the key was made: every guest
    # invitation up to it was seen before, so a guest invited at or before it may get it.
    after_seq: int = 0
    recipients: set[tuple[str, str]] = field(default_factory=set)


def load_identity(path: Path) -> IdentityKeys | None:
    """The user's identity secret from ``path``, or None if this device has none."""
    try:
        return IdentityKeys.from_bytes(path.read_bytes())
    except FileNotFoundError:
        return None


def save_identity(path: Path, identity: IdentityKeys) -> None:
    """Write the identity secret (mode 0600), replacing any previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(identity.to_bytes())


def load_or_create_keys(path: Path) -> DeviceKeys:
    """This device's keys from ``path``, created (mode 0600) if the file is missing."""
    try:
        return DeviceKeys.from_bytes(path.read_bytes())
    except FileNotFoundError:
        pass
    keys = DeviceKeys.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(keys.to_bytes())
    return keys


MAX_QUOTE_CHARS = 200  # of the excerpt a reply quotes (SPEC.md §11.2)
MAX_MENTIONS = 50  # members one message mentions


@dataclass(frozen=True, slots=True)
class Reply:
    """What a reply says of the message it answers: its seq, its sender, and an excerpt
    of its text (shown if the original cannot be, e.g. sent before one joined)."""

    seq: int
    sender: str
    text: str

    @classmethod
    def to(cls, original: Decrypted) -> Reply:
        return cls(original.seq, original.sender, original.text[:MAX_QUOTE_CHARS])


def encode_content(
    text: str,
    files: tuple[AttachmentRef, ...] = (),
    *,
    edits: int | None = None,
    reply: Reply | None = None,
    mentions: Sequence[str] = (),
    forwarded: bool = False,
) -> bytes:
    """A message's plaintext: ``{v: 1, type: "text", text, files?: [AttachmentRef],
    edits?: int, reply?: {seq, sender, text}, mentions?: [user id], forwarded?: true}``
    (SPEC.md §11.2: ``edits``, the seq of the message an edit replaces; ``reply``, the
    message this one answers; ``mentions``, the members it mentions, whose names are
    in ``text``; ``forwarded``, sent on from another conversation)."""
    content: dict[str, Any] = {"v": CONTENT_VERSION, "type": "text", "text": text}
    if files:
        content["files"] = [ref.to_wire() for ref in files]
    if edits is not None:
        content["edits"] = edits
    if reply is not None:
        content["reply"] = {"seq": reply.seq, "sender": reply.sender, "text": reply.text}
    if mentions:
        content["mentions"] = list(dict.fromkeys(mentions))
    if forwarded:
        content["forwarded"] = True
    packed: bytes = msgpack.packb(content, use_bin_type=True)
    return packed


@dataclass(frozen=True, slots=True)
class Content:
    """A message's plaintext, decoded."""

    text: str
    files: tuple[AttachmentRef, ...] = ()
    edits: int | None = None
    reply: Reply | None = None
    mentions: tuple[str, ...] = ()
    forwarded: bool = False


def _seq(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def _id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64


def _reply(wire: object) -> Reply | None:
    if wire is None:
        return None
    if not isinstance(wire, dict):
        raise Truncated("bad 'reply'")
    seq, sender, text = wire.get("seq"), wire.get("sender"), wire.get("text")
    if not (_seq(seq) and _id(sender) and isinstance(text, str) and len(text) <= 1000):
        raise Truncated("bad 'reply'")
    assert isinstance(seq, int) and isinstance(sender, str)
    return Reply(seq, sender, text)


def decode_content(plaintext: bytes) -> Content:
    """The text, file references and edited seq of a message's plaintext (``v`` may be
    absent: messages written before it existed); raises ``CryptoError`` if it is not
    one."""
    try:
        content = msgpack.unpackb(plaintext, raw=False)
    except (ValueError, msgpack.UnpackException, TypeError):
        raise Truncated("not msgpack") from None
    if not isinstance(content, dict):
        raise Truncated("not a text message")
    if content.get("v", CONTENT_VERSION) != CONTENT_VERSION:
        raise BadVersion(f"message content version {content.get('v')!r} is unknown")
    text, files = content.get("text"), content.get("files", [])
    if not isinstance(text, str):
        raise Truncated("not a text message")
    if not isinstance(files, list) or len(files) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise Truncated("bad 'files'")
    edits = content.get("edits")
    if edits is not None and not _seq(edits):
        raise Truncated("bad 'edits'")
    mentions = content.get("mentions", [])
    if not isinstance(mentions, list) or len(mentions) > MAX_MENTIONS:
        raise Truncated("bad 'mentions'")
    if not all(_id(m) for m in mentions):
        raise Truncated("bad 'mentions'")
    forwarded = content.get("forwarded", False)
    if not isinstance(forwarded, bool):
        raise Truncated("bad 'forwarded'")
    return Content(
        text,
        tuple(AttachmentRef.from_wire(wire) for wire in files),
        edits,
        _reply(content.get("reply")),
        tuple(mentions),
        forwarded,
    )


def _reason(exc: CryptoError) -> str:
    return f"{type(exc).__name__}: {exc}"


# Undecryptable.reason starts with the exception's name; keys.report takes a code.
_REPORT_CODES = {
    "UnknownSession": "unknown_session",
    "BadSignature": "bad_signature",
    "Tampered": "tampered",
    "Truncated": "tampered",
    "Replayed": "replayed",
    "TooFarAhead": "too_far_ahead",
    "BadVersion": "bad_version",
}


class EncryptedClient:
    """A device's end-to-end encrypted session; see the module docstring."""

    def __init__(
        self,
        account: Account,
        key_file: Path,
        *,
        identity_file: Path | None = None,
        key_wait: float = 10.0,
        search_file: Path | None = None,
        client: Client | None = None,
        sessions_file: Path | None = None,
        **client_options: Any,
    ) -> None:
        self.client = client or Client(account, **client_options)
        self.account = account
        self.keys = load_or_create_keys(key_file)
        # The search index of the messages read (search.py), if a file is given for it.
        self.index = (
            MessageIndex(search_file, index_key(bytes(self.keys.box))) if search_file else None
        )
        self.identity_file = identity_file or key_file.with_suffix(".identity")
        self.identity = load_identity(self.identity_file)
        self.key_wait = key_wait
        self.bundle = self.keys.bundle(account.user_id, account.device_id)
        self._devices: dict[str, dict[str, KeyBundle]] = {}
        self._identities: dict[str, IdentityRecord] = {}  # user -> verified record
        self._verified: set[tuple[str, str]] = set()  # (user, device) signed by the identity
        self._devices_at: dict[str, float] = {}
        self._outbound: dict[str, _Outbound] = {}
        self._inbound: dict[SessionKey, InboundSession] = {}
        self._held: dict[SessionKey, list[tuple[float, Msg]]] = {}
        self._ready: collections.deque[EncryptedIncoming] = collections.deque()
        self._locks: dict[str, asyncio.Lock] = {}
        self._headers: dict[bytes, bytes] = {}
        self.rejected: list[Undecryptable] = []  # every message refused, for reporting
        self.key_changes: list[KeysChanged] = []
        self._requested: set[SessionKey] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # room -> promoted guest -> the seq of its invitation (only keys made after it
        # are forwarded), for promotions that named an invitation event seen here.
        self._promoted: dict[str, dict[str, int]] = {}
        self._invitations: dict[str, set[int]] = {}  # room -> seqs of guest.invited seen
        self._seen_seq: dict[str, int] = {}  # room -> last timeline seq seen
        # Own devices this one was approved by or approved: they exchange every key.
        self._linked: set[str] = set()
        self._link_requests: dict[str, KeyBundle] = {}  # device -> its bundle, asking
        self.awaiting_link = False  # request_link() sent, no answer yet
        self._backup: BackupKey | None = None
        self._sessions_file = sessions_file
        self._load_sessions()

    @property
    def user_id(self) -> str:
        return self.client.user_id

    @property
    def device_id(self) -> str:
        return self.client.device_id

    # -- lifecycle

    async def connect(self) -> None:
        """Connect, then publish this device's bundle (again: it is idempotent), signed
        by the user's identity if this device holds it (see the module doc)."""
        await self.client.connect()
        await self.publish_keys()

    async def publish_keys(self) -> None:
        """Upload this device's bundle. The user's first device creates the identity
        key; a device holding the user's identity signs its own bundle with it."""
        directory = await self.client.query_key_directory([self.user_id])
        stored = self._own_identity(directory.identities)
        bundle = self.bundle.to_bytes()
        if stored is None and self.identity is None:
            identity = IdentityKeys.generate()
            save_identity(self.identity_file, identity)
            self.identity = identity
        if self.identity is None or (stored is not None and stored.public != self.identity.public):
            if stored is not None and self.identity is not None:
                log.warning("this device's identity key is no longer the user's: unverified")
            await self.client.upload_keys(bundle)
            return
        signature = sign_device(self.identity, self.bundle).to_bytes()
        record = None if stored is not None else self.identity.record(self.user_id).to_bytes()
        try:
            await self.client.upload_keys(bundle, identity=record, signature=signature)
        except ServerError as exc:
            if exc.code is not ErrorCode.CONFLICT:
                raise
            # Another device of the user published its identity key between our query
            # and our upload: that one is the user's; this device waits to be approved.
            log.warning("another device created the user's identity key first")
            self.identity_file.unlink(missing_ok=True)
            self.identity = None
            await self.client.upload_keys(bundle)

    def _own_identity(self, records: Sequence[bytes]) -> IdentityRecord | None:
        for data in records:
            try:
                record = parse_identity(data)
            except CryptoError as exc:
                log.warning("server returned an invalid identity record: %s", exc)
                continue
            if record.user_id == self.user_id:
                return record
        return None

    async def adopt_identity(self, identity: IdentityKeys) -> None:
        """Keep the user's identity secret received from another device (the approval
        of this device), and sign this device's bundle with it."""
        save_identity(self.identity_file, identity)
        self.identity = identity
        await self.publish_keys()

    async def sign_device(self, device: str) -> None:
        """Sign another device of this user with the identity key (``keys.sign``): what
        approving a new device does once the user compared the codes. Raises
        :class:`UnknownSession` if this device does not hold the identity or that
        device has published no keys."""
        if self.identity is None:
            raise UnknownSession("this device does not hold the user's identity key")
        bundle = (await self.devices([self.user_id], refresh=True)).get(device)
        if bundle is None or bundle.user_id != self.user_id:
            raise UnknownSession(f"device {device} of this user has published no keys")
        await self.client.sign_device(device, sign_device(self.identity, bundle).to_bytes())
        self._verified.add((self.user_id, device))

    def device_verified(self, user: str, device: str) -> bool:
        """Whether that device's bundle carries a valid signature of its user's identity
        key, as last read from the directory (``devices``)."""
        return (user, device) in self._verified

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.client.close()

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def __aenter__(self) -> EncryptedClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- kept keys (sessions file), export and import

    def _load_sessions(self) -> None:
        if self._sessions_file is None:
            return
        try:
            saved = msgpack.unpackb(self._sessions_file.read_bytes(), raw=False)
        except FileNotFoundError:
            return
        for wire in saved.get("inbound", []):
            key = sender_key_from_wire(wire)
            self._inbound[(key.room_id, key.device_id, key.session_id)] = InboundSession(key)
        self._linked = set(saved.get("linked", []))
        backup = saved.get("backup")
        if backup:
            self._backup = BackupKey(backup["version"], backup["key"])

    def _save_sessions(self) -> None:
        if self._sessions_file is None:
            return
        snapshot = {
            "inbound": [sender_key_to_wire(k) for k in self.export_keys()],
            "linked": sorted(self._linked),
            "backup": {"version": self._backup.version, "key": self._backup.key}
            if self._backup
            else None,
        }
        tmp = self._sessions_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(msgpack.packb(snapshot, use_bin_type=True))
        os.replace(tmp, self._sessions_file)

    def export_keys(self) -> list[SenderKey]:
        """Every sender key this device holds, as first received: what reads the history."""
        return [session.key for session in self._inbound.values()]

    def import_keys(self, keys: Sequence[SenderKey]) -> int:
        """Add sender keys (from an own device or the backup); messages waiting for them
        are decrypted. Returns how many were new."""
        fresh = [k for k in keys if (k.room_id, k.device_id, k.session_id) not in self._inbound]
        for key in fresh:
            self._add_inbound(key)
        if fresh:
            self._save_sessions()
            self._background(self._back_up(fresh))
        return len(fresh)

    def _add_inbound(self, key: SenderKey) -> None:
        ref = (key.room_id, key.device_id, key.session_id)
        self._inbound[ref] = InboundSession(key)
        for _, msg in self._held.pop(ref, []):
            self._on_msg(msg)

    async def _back_up(self, keys: Sequence[SenderKey]) -> None:
        if self._backup is None or not keys:
            return
        try:
            await upload_keys(self.account, self._backup, keys)
        except ServerError as exc:
            if exc.code in (ErrorCode.CONFLICT, ErrorCode.NOT_FOUND):
                # Replaced by a backup made on a device not linked with this one (or
                # deleted): stop writing what nobody could read.
                self._backup = None
                self._save_sessions()
            log.info("could not back up keys: %s", exc)
        except ConfrereError as exc:  # offline: the next key tries again
            log.info("could not back up keys: %s", exc)

    # -- key backup

    async def set_up_backup(self) -> str:
        """Create a new backup of every key held (replacing any previous one) and keep
        it up to date; return the recovery phrase, to show once."""
        phrase, self._backup = await create_backup(self.account)
        self._save_sessions()
        await self._back_up_everything()
        await self._share_backup_key()
        return phrase

    async def _share_backup_key(self) -> None:
        """The linked devices keep the backup up to date too: they get its key."""
        assert self._backup is not None
        for device in sorted(self._linked):
            bundle = await self._bundle(self.user_id, device)
            if bundle is None:  # revoked since
                continue
            payload = self._typed("backup_key", device)
            payload["backup"] = {"version": self._backup.version, "key": self._backup.key}
            try:
                await self.client.to_device(
                    self.user_id, device, seal(self.keys, bundle.box_public, payload)
                )
            except ConfrereError as exc:
                log.info("could not give the backup key to %s: %s", device, exc)

    async def _back_up_everything(self) -> None:
        assert self._backup is not None
        await upload_keys(self.account, self._backup, self.export_keys())
        if self.identity is not None:
            await upload_identity(self.account, self._backup, self.identity.to_bytes())

    async def restore_backup(self, phrase: str) -> int:
        """Import the keys of the account's backup (:class:`~.backup.WrongPhrase` if
        ``phrase`` does not open it) and the identity secret it holds (this device is
        then verified), then keep it up to date; returns how many keys were new."""
        backup = await open_backup(self.account, phrase)
        keys, identity = await download_backup(self.account, backup)
        self._backup = backup
        self._stop_waiting()
        count = self.import_keys(keys)
        self._save_sessions()
        if identity is not None and self.identity is None:
            await self.adopt_identity(IdentityKeys.from_bytes(identity))  # verified again
        await self._back_up_everything()
        return count

    # -- adding a device

    async def request_link(self) -> str:
        """Ask this user's other devices to approve this one; return the code to show
        (the same on their screen). Held messages wait, unreported, for the answer."""
        self.awaiting_link = True
        own = await self.devices([self.user_id], refresh=True)
        for device, bundle in own.items():
            if device == self.device_id:
                continue
            body = seal(self.keys, bundle.box_public, self._typed("link_request", device))
            try:
                await self.client.to_device(self.user_id, device, body)
            except ConfrereError as exc:
                log.info("could not ask %s for approval: %s", device, exc)
        return link_code(self.bundle)

    def _typed(self, kind: str, device: str) -> dict[str, Any]:
        return {"type": kind, "from": self.device_id, "to": device}

    def _stop_waiting(self) -> None:
        """The link was answered (or given up): held messages get their usual wait."""
        self.awaiting_link = False
        deadline = time.monotonic() + self.key_wait
        self._held = {ref: [(deadline, m) for _, m in items] for ref, items in self._held.items()}
        for ref in self._held:
            if ref not in self._requested and ref[1] != self.device_id:
                self._requested.add(ref)
                self._background(self._request_key_later(ref))

    async def approve(self, request: LinkRequest) -> int:
        """Approve the new device of ``request``: it gets the backup key and every
        sender key held here, now and as they arrive; this device's identity key (if it
        holds it) signs it, so it is verified to everyone. Returns how many keys it got."""
        bundle = self._link_requests.pop(request.device)
        payload = self._typed("link_accept", request.device)
        if self._backup is not None:
            payload["backup"] = {"version": self._backup.version, "key": self._backup.key}
        if self.identity is not None:
            # Cross-signing: the new device is signed by the user's identity, and gets
            # the identity secret to approve the next ones itself.
            await self.sign_device(request.device)
            payload["identity"] = self.identity.to_bytes()
        await self.client.to_device(
            self.user_id, request.device, seal(self.keys, bundle.box_public, payload)
        )
        self._linked.add(request.device)
        self._save_sessions()
        keys = self.export_keys()
        await self._send_keys(request.device, bundle, keys)
        return len(keys)

    async def refuse(self, request: LinkRequest) -> None:
        bundle = self._link_requests.pop(request.device)
        body = seal(self.keys, bundle.box_public, self._typed("link_refused", request.device))
        await self.client.to_device(self.user_id, request.device, body)

    async def _send_keys(self, device: str, bundle: KeyBundle, keys: Sequence[SenderKey]) -> None:
        for payload in room_keys_payloads(list(keys), self.device_id, device):
            await self.client.to_device(
                self.user_id, device, seal(self.keys, bundle.box_public, payload)
            )

    async def _forward_to_linked(self, key: SenderKey) -> None:
        for device in sorted(self._linked):
            bundle = await self._bundle(self.user_id, device)
            if bundle is None:  # revoked since
                continue
            try:
                await self._send_keys(device, bundle, [key])
            except ConfrereError as exc:
                log.info("could not forward a key to %s: %s", device, exc)

    async def _on_own_device(self, item: ToDeviceMsg, payload: dict[str, Any]) -> None:
        """Link requests and answers, and keys, from this user's other devices."""
        kind = payload.get("type")
        if kind == "link_request":
            if self.awaiting_link:  # waiting itself: it has nothing to give
                return
            bundle = await self._bundle(self.user_id, item.device)
            if bundle is not None:
                self._link_requests[item.device] = bundle
                self._ready.append(LinkRequest(item.device, link_code(bundle)))
        elif kind in ("link_accept", "link_refused") and self.awaiting_link:
            approved = kind == "link_accept"
            if approved:
                self._linked.add(item.device)
                backup = payload.get("backup")
                if isinstance(backup, dict) and isinstance(backup.get("key"), bytes):
                    self._backup = BackupKey(str(backup.get("version")), backup["key"])
                self._save_sessions()
                identity = payload.get("identity")
                if isinstance(identity, bytes):
                    await self.adopt_identity(IdentityKeys.from_bytes(identity))
            self._stop_waiting()
            self._ready.append(LinkAnswered(item.device, approved))
        elif kind == "backup_key" and item.device in self._linked:
            backup = payload.get("backup")
            if isinstance(backup, dict) and isinstance(backup.get("key"), bytes):
                self._backup = BackupKey(str(backup.get("version")), backup["key"])
                self._save_sessions()
                await self._back_up_everything()
        elif kind == "room_keys" and item.device in self._linked:
            self.import_keys(room_keys_from_payload(payload))

    # -- key directory

    async def devices(self, users: list[str], *, refresh: bool = False) -> dict[str, KeyBundle]:
        """Verified bundles of these users' devices, ``{device id: bundle}``; asked again
        when older than 30 s, or with ``refresh``."""
        now = time.monotonic()
        stale = [
            u for u in users if refresh or now - self._devices_at.get(u, -_KEYS_TTL) >= _KEYS_TTL
        ]
        if stale:
            directory = await self.client.query_key_directory(stale)
            found: dict[str, dict[str, KeyBundle]] = {u: {} for u in stale}
            for bundle in _valid(directory.keys, parse_bundle, "key bundle"):
                if bundle.user_id in found:
                    found[bundle.user_id][bundle.device_id] = bundle
            identities = {
                record.user_id: record
                for record in _valid(directory.identities, parse_identity, "identity record")
                if record.user_id in found
            }
            signatures = {
                (sig.user_id, sig.device_id): sig
                for sig in _valid(directory.signatures, parse_device_signature, "device signature")
            }
            for u, devs in found.items():
                self._check_key_change(u, identities.get(u), devs)
                self._devices[u] = devs
                self._devices_at[u] = now
                if u in identities:
                    self._identities[u] = identities[u]
                else:
                    self._identities.pop(u, None)
                self._verified -= {(u, d) for (v, d) in self._verified if v == u}
                for d, bundle in devs.items():
                    if device_verified(identities.get(u), bundle, signatures.get((u, d))):
                        self._verified.add((u, d))
        return {d: b for u in users for d, b in self._devices.get(u, {}).items()}

    def _safety_keys(
        self, user: str, identity: IdentityRecord | None, devices: dict[str, KeyBundle]
    ) -> list[bytes]:
        """What a user counts with in safety numbers: their identity key, or (a user
        without one) their devices' signing keys."""
        if identity is not None:
            return [identity.public]
        keys = {b.sign_public for b in devices.values()}
        if user == self.user_id:
            keys.add(self.keys.sign_public)
        return sorted(keys)

    def _own_safety_keys(self) -> list[bytes]:
        own = self._identities.get(self.user_id)
        if own is None and self.identity is not None:
            return [self.identity.public]
        return self._safety_keys(self.user_id, own, self._devices.get(self.user_id, {}))

    def _check_key_change(
        self, user: str, identity: IdentityRecord | None, new: dict[str, KeyBundle]
    ) -> None:
        """Report a change of a user's identity key (or, for a user without one, of
        their device keys) as a :class:`KeysChanged` item. A device added and signed
        by the same identity changes nothing."""
        old = self._devices.get(user)
        if user == self.user_id or not old or not new:
            return  # first sighting, or no longer visible: nothing to compare
        before = self._safety_keys(user, self._identities.get(user), old)
        after = self._safety_keys(user, identity, new)
        if before == after:
            return
        mine = self._own_safety_keys()
        old_keys = {d: b.sign_public for d, b in old.items()}
        change = KeysChanged(
            user,
            safety_number(self.user_id, mine, user, before),
            safety_number(self.user_id, mine, user, after),
            tuple(
                sorted(d for d in old_keys.keys() & new.keys() if old_keys[d] != new[d].sign_public)
            ),
        )
        log.warning("keys of %s changed (replaced devices: %s)", user, change.replaced)
        self.key_changes.append(change)
        self._ready.append(change)

    async def safety_number(self, user: str) -> str:
        """The 60-digit safety number of this user and ``user``, over the two identity
        keys the directory gives now; compare it out of band (aloud, QR code)."""
        await self.devices([self.user_id, user], refresh=True)
        theirs = self._devices.get(user, {})
        if not theirs and user not in self._identities:
            raise UnknownSession(f"no key known for user {user}")
        return safety_number(
            self.user_id,
            self._own_safety_keys(),
            user,
            self._safety_keys(user, self._identities.get(user), theirs),
        )

    async def _bundle(self, user: str, device: str) -> KeyBundle | None:
        bundle = self._devices.get(user, {}).get(device)
        if bundle is None:
            bundle = (await self.devices([user], refresh=True)).get(device)
        return bundle if bundle is not None and bundle.user_id == user else None

    # -- sending

    def _lock(self, room: str) -> asyncio.Lock:
        return self._locks.setdefault(room, asyncio.Lock())

    def rotate(self, room: str) -> None:
        """Use a fresh sender key for the next message of ``room``."""
        self._outbound.pop(room, None)

    async def _encrypt(self, room: str, plaintext: bytes) -> bytes:
        info = await self.client.room(room)
        members = [m.user for m in info.members or ()]
        previous = self._outbound.get(room)
        refresh = previous is None or not {u for u, _ in previous.recipients} <= set(members)
        bundles = await self.devices(members, refresh=refresh)
        targets = {
            (b.user_id, d): b
            for d, b in bundles.items()
            if b.user_id in members and d != self.device_id
        }
        out = previous
        if out is None or not out.recipients <= set(targets):
            session = OutboundSession(room, self.device_id, self.keys)
            out = _Outbound(session, session.sender_key(), after_seq=self._seen_seq.get(room, 0))
            self._outbound[room] = out
            self._inbound[(room, self.device_id, out.initial.session_id)] = InboundSession(
                out.initial
            )
            self._save_sessions()
            self._background(self._back_up([out.initial]))
        new = [t for t in targets if t not in out.recipients]
        if new:
            key = out.session.sender_key()

            async def share(user: str, device: str) -> None:
                body = share_sender_key(self.keys, key, device, targets[user, device].box_public)
                try:
                    await self.client.to_device(user, device, body)
                except ServerError as exc:
                    log.warning("could not share a key with %s/%s: %s", user, device, exc)

            await asyncio.gather(*(share(u, d) for u, d in new))
            out.recipients.update(new)
        return out.session.encrypt(plaintext)

    async def send_text(
        self,
        room: str,
        text: str,
        *,
        reply_to: Decrypted | None = None,
        mentions: Sequence[str] = (),
    ) -> int:
        """Encrypt ``text`` for the room's current members and send it; returns its seq.
        ``reply_to``: the message this one answers (quoted, inside the ciphertext);
        ``mentions``: user ids of members named in ``text`` (inside the ciphertext, and
        in clear in ``send.mentions`` so that members who muted the room still get a
        push for it)."""
        reply = None if reply_to is None else Reply.to(reply_to)
        content = encode_content(text, reply=reply, mentions=mentions)
        async with self._lock(room):
            body = await self._encrypt(room, content)
        return await self.client.send(room, body, mentions=mentions)

    async def edit_text(self, room: str, seq: int, text: str) -> int:
        """Replace the text of this user's message at ``seq`` (within 48 hours of
        sending it): a new encrypted message naming it; returns the edit's seq."""
        async with self._lock(room):
            body = await self._encrypt(room, encode_content(text, edits=seq))
        return await self.client.send(room, body, edits=seq)

    async def delete(self, room: str, seq: int) -> int:
        """Delete the message at ``seq`` for everyone (its author within 48 hours, or a
        group's or case's owner or admin); returns the ``msg.deleted`` event's seq."""
        return await self.client.delete_message(room, seq)

    async def send_file(
        self,
        room: str,
        source: Source,
        *,
        filename: str | None = None,
        text: str | None = None,
    ) -> int:
        """Encrypt and upload a PDF, JPEG or PNG file (a path or its bytes), then send
        one encrypted message carrying its reference (key, SHA-256, size, type,
        ``filename``: by default a path's base name) and ``text`` as caption; returns
        the message's seq. Neither the file name nor the caption reaches the server in
        clear. Raises :class:`~clients.python.errors.AttachmentRefused` before sending
        anything if the file may not be attached or ``filename`` is not 1 to 255
        characters."""
        return await self.send_files(room, [(source, filename)], text=text)

    async def send_files(
        self,
        room: str,
        files: Sequence[tuple[Source, str | None]],
        *,
        text: str | None = None,
    ) -> int:
        """Several files in one message (1 to ``MAX_ATTACHMENTS_PER_MESSAGE``), each
        ``(source, filename)`` as for :meth:`send_file`: all uploaded, then one message
        carries their references; returns its seq."""
        if not 0 < len(files) <= MAX_ATTACHMENTS_PER_MESSAGE:
            raise AttachmentRefused(f"1 to {MAX_ATTACHMENTS_PER_MESSAGE} files per message")
        named: list[tuple[Source, str | None]] = []
        for source, filename in files:
            if filename is None and not isinstance(source, bytes):
                filename = Path(source).name or None
            if filename is not None and not 0 < len(filename) <= MAX_FILE_NAME:
                raise AttachmentRefused(f"a file name is 1 to {MAX_FILE_NAME} characters")
            await check_file(source)  # every file refused before any is uploaded
            named.append((source, filename))
        refs = [
            await upload_file(self.client.account, room, source, name=filename)
            for source, filename in named
        ]
        async with self._lock(room):
            body = await self._encrypt(room, encode_content(text or "", tuple(refs)))
        return await self.client.send(room, body, att=[ref.id for ref in refs])

    async def forward(self, message: Decrypted, room: str) -> int:
        """Send ``message`` on into another ``room`` (a conversation or a patient case
        of this user), marked forwarded: its text encrypted anew for that room's
        members, and each of its files downloaded, checked, encrypted under a new key
        and uploaded to ``room`` (the server sees a new upload, never that it is the
        same file). Returns the new message's seq."""
        refs = []
        for ref in message.files:
            data = await self.fetch_file(ref)
            refs.append(await upload_file(self.client.account, room, data, name=ref.name))
        content = encode_content(message.text, tuple(refs), forwarded=True)
        async with self._lock(room):
            body = await self._encrypt(room, content)
        return await self.client.send(room, body, att=[r.id for r in refs])

    async def fetch_file(self, ref: AttachmentRef) -> bytes:
        """Download, decrypt and check a file a message refers to (type by its first
        bytes, size, SHA-256) and return its bytes. Raises
        :class:`~clients.python.errors.AttachmentCorrupt` if it does not decrypt or is
        not the announced file: nothing of it is returned. (To write a large file to
        disk as it arrives: :func:`~clients.python.attachments.download_file`.)"""
        data = await download_file(self.client.account, ref)
        assert isinstance(data, bytes)
        return data

    async def set_header(self, room: str, header: bytes) -> int:
        """Replace a patient case's header with ``header`` encrypted for the members."""
        async with self._lock(room):
            sealed = await self._encrypt(room, header)
        return await self.client.update_room(room, header=wrap_header(self.device_id, sealed))

    async def set_name(self, room: str, name: str) -> int:
        """Rename a group or patient case: ``name`` (1 to 200 characters) encrypted for
        the members like a header (SPEC.md §11.4); the server never reads it."""
        if not 0 < len(name) <= MAX_NAME_CHARS:
            raise ValueError(f"a room name has 1 to {MAX_NAME_CHARS} characters")
        async with self._lock(room):
            sealed = await self._encrypt(room, name.encode())
        return await self.client.update_room(room, name=wrap_header(self.device_id, sealed))

    def decrypt_name(self, room: str, blob: bytes) -> str:
        """A room's name (``RoomInfo.name``, ``room.updated``), as :meth:`decrypt_header`."""
        return self.decrypt_header(room, blob).decode("utf-8", "replace")

    def decrypt_header(self, room: str, blob: bytes) -> bytes:
        """The plaintext of an encrypted header (``RoomInfo.header``, ``room.updated``);
        raises :class:`~protocol.crypto.errors.CryptoError` (``UnknownSession`` while
        its key has not arrived)."""
        cached = self._headers.get(blob)
        if cached is not None:
            return cached
        device, sealed = parse_header(blob)
        session = self._inbound.get((room, device, parse_message(sealed).session_id))
        if session is None:
            raise UnknownSession("the header's key has not arrived")
        _, plaintext = session.decrypt(room, device, sealed)
        self._headers[blob] = plaintext
        return plaintext

    async def create_room(
        self, kind: str, members: list[str], *, name: str | None = None, header: bytes | None = None
    ) -> RoomInfo:
        """Create a room; its ``name`` and a patient case's ``header`` are set encrypted
        right after (they are bound to the room's id)."""
        info = await self.client.create_room(kind, members)
        if name is not None:
            await self.set_name(info.id, name)
        if header is not None:
            await self.set_header(info.id, header)
        return info

    async def invite(
        self, room: str, users: Sequence[str] = (), *, emails: Sequence[str] = ()
    ) -> int:
        """As :meth:`Client.invite`; promoted guests get this device's keys on
        ``member.promoted`` (see the module doc). Inviting starts a new sender key (for
        a guest: the ``guest.invited`` event, seen here before it arrives), with which
        the room's name and case header are encrypted again, so that the new members
        read them (SPEC.md §11.4) and nothing sent before."""
        seq = await self.client.invite(room, users, emails=emails)
        async with self._lock(room):
            self._saw(room, seq)
            self.rotate(room)
        info = await self.client.room(room)
        for blob, reseal in ((info.name, self._reseal_name), (info.header, self.set_header)):
            if blob is None:
                continue
            try:
                plaintext = self.decrypt_header(room, blob)
            except CryptoError:  # its key never reached this device: nothing to re-encrypt
                continue
            await reseal(room, plaintext)
        return seq

    async def _reseal_name(self, room: str, name: bytes) -> int:
        return await self.set_name(room, name.decode("utf-8", "replace"))

    def _saw(self, room: str, seq: int) -> None:
        if seq > self._seen_seq.get(room, 0):
            self._seen_seq[room] = seq

    def _saw_invitation(self, room: str, seq: int) -> None:
        """A guest was invited at ``seq``: nothing sent before may reach it, so the
        next message uses a new sender key."""
        self._invitations.setdefault(room, set()).add(seq)
        self._saw(room, seq)
        out = self._outbound.get(room)
        if out is not None and out.after_seq < seq:  # not made since (by our own invite)
            self.rotate(room)

    async def remove(self, room: str, user: str) -> int:
        seq = await self.client.remove(room, user)
        self.rotate(room)
        return seq

    async def leave(self, room: str) -> int:
        seq = await self.client.leave(room)
        self.rotate(room)
        return seq

    # -- receiving

    def try_decrypt(self, msg: Msg) -> Decrypted | Undecryptable:
        """Decrypt one message with the keys held now (no waiting, nothing held)."""
        assert msg.body is not None  # tombstones never get here
        try:
            header = parse_message(msg.body)
            session = self._inbound.get((msg.room, msg.device, header.session_id))
            if session is None:
                raise UnknownSession("no key for this message")
            _, plaintext = session.decrypt(msg.room, msg.device, msg.body)
            content = decode_content(plaintext)
            # The server's reference (which it enforces) and the signed one must agree:
            # otherwise a server could move an edit onto another message of its author.
            if content.edits != msg.edits:
                raise Tampered("the edited message is not the one the server names")
        except CryptoError as exc:
            return Undecryptable(msg.room, msg.seq, msg.sender, msg.device, msg.ts, _reason(exc))
        return Decrypted(
            msg.room,
            msg.seq,
            msg.sender,
            msg.device,
            msg.ts,
            content.text,
            content.files,
            content.edits,
            content.reply,
            content.mentions,
            content.forwarded,
        )

    def _reject(self, item: Undecryptable) -> None:
        log.warning(
            "message %s/%d from %s refused: %s", item.room, item.seq, item.device, item.reason
        )
        self.rejected.append(item)
        self._ready.append(item)
        code = _REPORT_CODES.get(item.reason.split(":", 1)[0], "other")
        if code != "unknown_session":  # those were reported when the message was held
            self._background(self._report(item.room, item.device, code, None))

    async def _report(self, room: str, device: str, code: str, session: bytes | None) -> None:
        try:
            await self.client.report_decryption_failure(room, device, code, session)
        except ConfrereError as exc:
            log.info("could not report a decryption failure: %s", exc)

    async def _request_key_later(self, ref: SessionKey) -> None:
        """Still no key half-way through ``key_wait``: report it, which has the server
        queue a key request for the sender device."""
        await asyncio.sleep(self.key_wait / 2)
        if self.awaiting_link:  # the history's keys are on their way: ask after the answer
            self._requested.discard(ref)
            return
        if ref in self._held:
            await self._report(ref[0], ref[1], "unknown_session", ref[2])

    def _on_msg(self, msg: Msg) -> None:
        if msg.body is None:  # deleted for everyone: nothing left to decrypt
            assert msg.deleted_by is not None and msg.deleted_at is not None
            self._ready.append(
                Deleted(
                    msg.room,
                    msg.seq,
                    msg.sender,
                    msg.ts,
                    msg.deleted_by,
                    msg.deleted_at,
                    msg.edits,
                )
            )
            return
        try:
            sid = parse_message(msg.body).session_id
        except CryptoError as exc:
            self._reject(
                Undecryptable(msg.room, msg.seq, msg.sender, msg.device, msg.ts, _reason(exc))
            )
            return
        key = (msg.room, msg.device, sid)
        if key not in self._inbound:
            self._held.setdefault(key, []).append((time.monotonic() + self.key_wait, msg))
            if key not in self._requested and msg.device != self.device_id:
                self._requested.add(key)
                self._background(self._request_key_later(key))
            return
        result = self.try_decrypt(msg)
        if isinstance(result, Undecryptable):
            self._reject(result)
        else:
            self._ready.append(result)

    async def _on_key_request(self, item: ToDeviceMsg) -> None:
        """Share the room's current sender key again, from its first index, with the
        requesting device, if it is one we had shared it with and still a member's."""
        try:
            room, sid = parse_key_request(item.body)
        except CryptoError:
            return
        out = self._outbound.get(room)
        if out is None or (sid is not None and sid != out.initial.session_id):
            return  # a key we no longer use: its successor is shared on our next send
        invited_at = self._promoted.get(room, {}).get(item.user)
        promoted = invited_at is not None and out.after_seq >= invited_at
        if (item.user, item.device) not in out.recipients and not promoted:
            return
        bundle = await self._bundle(item.user, item.device)
        info = await self.client.room(room)
        if bundle is None or item.user not in {m.user for m in info.members or ()}:
            return
        body = share_sender_key(self.keys, out.initial, item.device, bundle.box_public)
        try:
            await self.client.to_device(item.user, item.device, body)
        except ConfrereError as exc:  # the requester asks again if it still needs it
            log.info("could not answer a key request: %s", exc)

    async def _on_to_device(self, item: ToDeviceMsg) -> None:
        if item.body[:1] == bytes([KEY_REQUEST_VERSION]):
            await self._on_key_request(item)
            return
        bundle = await self._bundle(item.user, item.device)
        if bundle is None:
            log.warning("to-device payload from unknown device %s/%s", item.user, item.device)
            return
        try:
            payload = open_sealed(self.keys, self.device_id, bundle, item.body)
            if item.user == self.user_id and payload.get("type") != "sender_key":
                await self._on_own_device(item, payload)
                return
            if payload.get("type") != "sender_key":
                log.info("ignoring to-device payload of type %.40s", payload.get("type"))
                return
            key = open_sender_key(payload, bundle)
        except CryptoError as exc:
            log.warning("to-device payload from %s refused: %s", item.device, _reason(exc))
            return
        ref = (key.room_id, key.device_id, key.session_id)
        if ref not in self._inbound:
            self._add_inbound(key)
            self._save_sessions()
            await self._back_up([key])
            await self._forward_to_linked(key)

    def _on_event(self, event: Event) -> None:
        if event.kind == "device.revoked" and event.user is not None:
            # Nothing sent from now on may reach that device: a new key, and that
            # user's devices read again (the revoked one is gone from the directory).
            self.rotate(event.room)
            self._devices_at.pop(event.user, None)
        elif event.kind == "member.left" and event.user is not None:
            self.rotate(event.room)
            self._promoted.get(event.room, {}).pop(event.user, None)
        elif event.kind == "guest.invited" and event.seq > 0:
            self._saw_invitation(event.room, event.seq)
        elif event.kind == "member.promoted" and event.user not in (None, self.user_id):
            assert event.user is not None
            # Only a promotion naming an earlier invitation seen here (a server cannot
            # make one up for an account of its own without a visible invitation).
            if event.upto is not None and event.upto in self._invitations.get(event.room, ()):
                self._promoted.setdefault(event.room, {})[event.user] = event.upto
                self._background(self.forward_keys(event.room, event.user))
            else:
                log.warning("member.promoted in %s without a seen invitation: ignored", event.room)
        self._saw(event.room, event.seq)
        self._ready.append(event)

    async def forward_keys(self, room: str, user: str) -> int:
        """Share this device's current sender key of ``room``, from its first index,
        with every device ``user`` has published (a promoted guest: see the module
        doc); return how many devices got it. Nothing to share if this device has not
        sent in the room since it started, if that key was made before the guest's
        invitation (it may have encrypted earlier messages), if the promotion named no
        invitation seen here, or if ``user`` is no longer a member (an old event
        replayed by a sync)."""
        async with self._lock(room):
            out = self._outbound.get(room)
            invited_at = self._promoted.get(room, {}).get(user)
            if out is None or invited_at is None or out.after_seq < invited_at:
                return 0
            try:
                info = await self.client.room(room)
                # Still a member, and no member.left of theirs seen since the promotion.
                if user not in {m.user for m in info.members or ()}:
                    return 0
                bundles = await self.devices([user], refresh=True)
            except ConfrereError as exc:  # no longer a member ourselves, or offline
                log.info("cannot forward keys of room %s: %s", room, exc)
                return 0
            shared = 0
            for device, bundle in bundles.items():
                if bundle.user_id != user:
                    continue
                body = share_sender_key(self.keys, out.initial, device, bundle.box_public)
                try:
                    await self.client.to_device(user, device, body)
                except ConfrereError as exc:  # the member asks again when it needs it
                    log.info("could not forward a key to %s/%s: %s", user, device, exc)
                    continue
                out.recipients.add((user, device))
                shared += 1
            return shared

    def _expire_held(self) -> float | None:
        """Surface held messages whose key is late; return the next deadline."""
        if self.awaiting_link:
            return None
        now = time.monotonic()
        nearest: float | None = None
        for ref in list(self._held):
            waiting = []
            for deadline, msg in self._held[ref]:
                if deadline <= now:
                    reason = "UnknownSession: the message's key never arrived"
                    self._reject(
                        Undecryptable(msg.room, msg.seq, msg.sender, msg.device, msg.ts, reason)
                    )
                else:
                    waiting.append((deadline, msg))
                    nearest = deadline if nearest is None else min(nearest, deadline)
            if waiting:
                self._held[ref] = waiting
            else:
                del self._held[ref]
        return nearest

    async def recv(self) -> EncryptedIncoming:
        """The next decrypted message, undecryptable message or room event."""
        while True:
            nearest = self._expire_held()
            if self._ready:
                ready = self._ready.popleft()
                if self.index is not None:
                    self._index(ready)
                return ready
            timeout = None if nearest is None else max(0.0, nearest - time.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    item = await self.client.recv()
            except TimeoutError:
                continue
            if isinstance(item, Msg):
                self._saw(item.room, item.seq)
                self._on_msg(item)
            elif isinstance(item, ToDeviceMsg):
                try:
                    await self._on_to_device(item)
                except (ServerError, ConnectionLost) as exc:  # dropped: it cannot be retried
                    log.warning("to-device payload from %s dropped: %s", item.device, exc)
            else:
                self._on_event(item)

    def _index(self, item: EncryptedIncoming) -> None:
        assert self.index is not None
        if isinstance(item, Decrypted):
            names = " ".join(f.name for f in item.files if f.name)
            text = f"{item.text} {names}".strip()
            self.index.add(item.room, item.seq, item.sender, item.ts, text, item.edits)
        elif isinstance(item, Deleted):
            self.index.remove(item.room, item.edits if item.edits is not None else item.seq)
        elif isinstance(item, Event) and item.kind == "msg.deleted" and item.target is not None:
            self.index.remove(item.room, item.target)

    def search(self, query: str) -> list[SearchHit]:
        """This device's messages matching ``query`` (search.py: accents and case
        ignored, word prefixes), newest first; searched here, never by the server."""
        if self.index is None:
            raise ValueError("no search index: give EncryptedClient a search_file")
        return self.index.search(query)

    def held(self) -> int:
        """How many messages wait for their key."""
        return sum(len(v) for v in self._held.values())
